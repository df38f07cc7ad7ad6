import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { TaskState } from '@stdops/core'
import { type Db, sql } from '@stdops/db'
import { createTestDatabase, type TestDatabase } from '@stdops/db/testing'
import {
  createEngine,
  createOutboundClient,
  type Engine,
  type EngineDeps,
  type OutboundClient,
} from '../src/index'

/**
 * The engine tests' components call HTTP servers of their own on 127.0.0.1, which the outbound
 * client refuses unless allowed: the harness's engines allow it (the SSRF tests build their own).
 */
export const LOCAL_ALLOW = ['127.0.0.1']

import { TEST_COMPONENTS } from '../src/testing'

export const PROVIDER = process.env.TEST_DATABASE_URL?.startsWith('postgres') ? 'postgresql' : 'sqlite'

export interface Harness {
  t: TestDatabase
  db: Db
  engines: Engine[]
  /** A started engine with the test components (stopped by close()). */
  engine(opts?: Partial<EngineDeps>): Promise<Engine>
  close(): Promise<void>
}

export async function createHarness(): Promise<Harness> {
  const t = await createTestDatabase()
  const engines: Engine[] = []
  const clients: OutboundClient[] = []
  await t.db.execute(sql`INSERT INTO projects (name, bk_biz_id, created_at) VALUES ('p', 1, ${Date.now()})`)
  return {
    t,
    db: t.db,
    engines,
    async engine(opts = {}) {
      const outbound = opts.outbound ? null : createOutboundClient({ allow: LOCAL_ALLOW })
      const engine = createEngine({
        db: t.db,
        components: TEST_COMPONENTS,
        pollMs: 50,
        ...(outbound ? { outbound } : {}),
        ...opts,
      })
      engines.push(engine)
      if (outbound) clients.push(outbound)
      await engine.startWorker()
      return engine
    },
    async close() {
      await Promise.all(engines.map((e) => e.stop({ drainMs: 2000 })))
      await Promise.all(clients.map((c) => c.close()))
      await t.drop()
    },
  }
}

export async function insertTask(
  db: Db,
  tree: unknown,
  opts: { callbackUrl?: string; callbackVersion?: 'v1' | 'v2'; name?: string; projectId?: number } = {},
): Promise<number> {
  const constants = (tree as { constants?: unknown }).constants ?? {}
  const [row] = await db.query<{ id: number }>(sql`INSERT INTO tasks
      (project_id, name, creator, state, version, event_seq, pipeline_tree, constants, outputs, callback_url, callback_version, created_at)
    VALUES (${opts.projectId ?? 1}, ${opts.name ?? 'task'}, 'tester', 'CREATED', 0, 0, ${JSON.stringify(tree)}, ${JSON.stringify(constants)}, '{}',
            ${opts.callbackUrl ?? null}, ${opts.callbackVersion ?? 'v1'}, ${Date.now()})
    RETURNING id`)
  return Number(row!.id)
}

/** The operator the engine tests' operations are recorded under (project 1, see createHarness). */
export const TESTER = { operator: 'tester', source: 'app', projectId: 1 } as const

/**
 * A task operation through the engine's protocol, exactly as the API performs it. Returns the
 * time it took effect (read once the task row was the operation's: later than any node start
 * committed before it).
 */
export async function operate(
  engine: Engine,
  taskId: number,
  action: 'start' | 'pause' | 'resume' | 'revoke',
) {
  return (await engine.operateTask({ ...TESTER, taskId, action })).at
}

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | null | false>,
  timeoutMs = 10_000,
  intervalMs = 20,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (value !== undefined && value !== null && value !== false) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, intervalMs))
  }
}

export interface TaskRow {
  state: TaskState
  version: number
  event_seq: number
  constants: string
  outputs: string
  callback_status: string | null
  callback_attempts: number
  callback_error: string | null
  finished_at: number | null
}

export async function task(db: Db, taskId: number): Promise<TaskRow> {
  const [row] =
    await db.query<TaskRow>(sql`SELECT state, version, event_seq, constants, outputs, callback_status,
    callback_attempts, callback_error, finished_at FROM tasks WHERE id = ${taskId}`)
  return {
    ...row!,
    version: Number(row!.version),
    event_seq: Number(row!.event_seq),
    callback_attempts: Number(row!.callback_attempts),
  }
}

export function waitForState(db: Db, taskId: number, state: TaskState, timeoutMs = 10_000) {
  return waitFor(
    `task ${taskId} ${state}`,
    async () => ((await task(db, taskId)).state === state ? true : null),
    timeoutMs,
  )
}

export interface NodeStateRow {
  node_id: string
  state: string
  loop: number
  attempt: number
  error: string | null
  error_ignored: boolean
  outputs: unknown
  inputs: unknown
  started_at: number | null
  finished_at: number | null
}

export async function nodes(db: Db, taskId: number): Promise<Map<string, NodeStateRow>> {
  const rows = await db.query<Record<string, unknown>>(
    sql`SELECT node_id, state, loop, attempt, error, error_ignored, outputs, inputs, started_at, finished_at FROM node_states WHERE task_id = ${taskId}`,
  )
  return new Map(
    rows.map((r) => [
      r.node_id as string,
      {
        node_id: r.node_id as string,
        state: r.state as string,
        loop: Number(r.loop),
        attempt: Number(r.attempt),
        error: r.error as string | null,
        error_ignored: Boolean(r.error_ignored),
        outputs: r.outputs === null ? null : JSON.parse(r.outputs as string),
        inputs: r.inputs === null ? null : JSON.parse(r.inputs as string),
        started_at: r.started_at === null ? null : Number(r.started_at),
        finished_at: r.finished_at === null ? null : Number(r.finished_at),
      },
    ]),
  )
}

/** node id → state, for the nodes that have a row. */
export async function states(db: Db, taskId: number): Promise<Record<string, string>> {
  return Object.fromEntries([...(await nodes(db, taskId))].map(([id, n]) => [id, n.state]))
}

export async function events(db: Db, taskId: number) {
  const rows = await db.query<{ seq: number; type: string; node_id: string | null; state: string }>(
    sql`SELECT seq, type, node_id, state FROM task_events WHERE task_id = ${taskId} ORDER BY seq`,
  )
  return rows.map((r) => ({ ...r, seq: Number(r.seq) }))
}

export async function jobs(db: Db, taskId: number) {
  return db.query<{
    id: number
    node_id: string
    kind: string
    due_at: number
    lease_owner: string | null
    lease_until: number | null
    attempts: number
  }>(
    sql`SELECT id, node_id, kind, due_at, lease_owner, lease_until, attempts FROM jobs WHERE task_id = ${taskId} ORDER BY id`,
  )
}

/**
 * A local HTTP server on `host` (default 127.0.0.1); `handler` answers, `calls` records each
 * request's method, url, headers and body, `connections` counts the TCP connections it accepted.
 */
export async function httpServer(
  handler: (req: IncomingMessage, res: ServerResponse, body: string) => void | Promise<void>,
  host = '127.0.0.1',
) {
  const calls: { method: string; url: string; body: string; headers: IncomingMessage['headers'] }[] = []
  const counter = { connections: 0 }
  const server: Server = createServer((req, res) => {
    let body = ''
    req.on('data', (c) => {
      body += c
    })
    req.on('end', () => {
      calls.push({ method: req.method ?? '', url: req.url ?? '', body, headers: req.headers })
      void handler(req, res, body)
    })
  })
  server.on('connection', () => {
    counter.connections += 1
  })
  await new Promise<void>((r) => server.listen(0, host, r))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://${host}:${port}`,
    port,
    calls,
    get connections() {
      return counter.connections
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections()
        server.close(() => r())
      }),
  }
}

/** Events numbered 1..n without a gap. */
export function gapFree(seqs: number[]) {
  return seqs.every((s, i) => s === i + 1)
}
