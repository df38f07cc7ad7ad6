/**
 * Section 2, the engine: tasks of `width` no-op nodes, linear and as one wide fork, many at once;
 * nodes per second from the first task's start to the last task's FINISHED (both as the database
 * recorded them), with 1 and 2 worker processes.
 */
import { linearTree, parallelTree } from '@stdops/core/testing'
import { BACKLOG_JOBS, explainClaim, insertBacklog, removeBacklog } from './backlog'
import type { Config } from './config'
import { freshDatabase, type Kind, openReader, type Reader } from './lib/db'
import { type Child, startStdopsApi, startStdopsWorker } from './lib/proc'
import { fmt, nowMs, sleep } from './lib/stats'
import { bootstrap, LegacyClient, mapLimit } from './lib/stdops'

export type Shape = 'linear' | 'fork'

export interface EngineRow {
  db: Kind
  processes: number
  shape: Shape
  tasks: number
  nodes: number
  seconds: number | null
  nodesPerSec: number | null
  /** PostgreSQL: of the database's active connections sampled during the run, the share waiting on a lock. */
  lockWaitShare?: number
  /** Measured with this many waiting jobs (held and future) in the database (backlog.ts). */
  backlog?: number
  /** With the backlog in place: the worker's claim, EXPLAINed. */
  claimPlan?: string[]
  note?: string
}

export const ENGINE_HEAD = [
  'db',
  'worker processes',
  'shape',
  'tasks × nodes',
  'seconds',
  'nodes/s',
  'lock waits',
]

export function engineLine(r: EngineRow): string[] {
  return [
    r.db,
    String(r.processes),
    r.backlog ? `${r.shape}, ${fmt(r.backlog)} waiting jobs` : r.shape,
    r.tasks === 0 ? 'n/a' : `${r.tasks} × ${r.nodes / r.tasks}`,
    r.seconds === null ? 'n/a' : r.seconds.toFixed(2),
    r.nodesPerSec === null ? `n/a${r.note ? ` (${r.note})` : ''}` : fmt(r.nodesPerSec),
    r.lockWaitShare === undefined ? '' : `${(100 * r.lockWaitShare).toFixed(0)}%`,
  ]
}

const treeFor = (shape: Shape, width: number) =>
  shape === 'linear' ? linearTree(width, 'bench_noop') : parallelTree(width, 'bench_noop')

async function measure(
  legacy: LegacyClient,
  reader: Reader,
  templateId: number,
  shape: Shape,
  tasks: number,
  width: number,
  timeoutMs: number,
  pg: boolean,
): Promise<{ seconds: number | null; lockWaitShare?: number; note?: string }> {
  const tree = treeFor(shape, width)
  const ids = await mapLimit(Array.from({ length: tasks }), 4, (_, i) =>
    legacy.createTask(templateId, `engine ${shape} ${i}`, tree),
  )
  const list = ids.join(', ')
  const started = nowMs()
  await Promise.all(ids.map((id) => legacy.start(id)))
  let active = 0
  let waiting = 0
  for (;;) {
    if (pg) {
      const [a] = await reader.query<{ active: number; lock: number }>(
        `SELECT COUNT(*) FILTER (WHERE state = 'active' AND pid <> pg_backend_pid()) AS active,
                COUNT(*) FILTER (WHERE state = 'active' AND wait_event_type = 'Lock') AS lock
         FROM pg_stat_activity WHERE datname = current_database()`,
      )
      active += Number(a?.active ?? 0)
      waiting += Number(a?.lock ?? 0)
    }
    const [row] = await reader.query<{ finished: number; failed: number }>(
      `SELECT (SELECT COUNT(*) FROM tasks WHERE id IN (${list}) AND state = 'FINISHED') AS finished,
              (SELECT COUNT(*) FROM node_states WHERE task_id IN (${list}) AND state = 'FAILED') AS failed`,
    )
    if (Number(row?.failed) > 0) {
      const [f] = await reader.query<{ error: string }>(
        `SELECT error FROM node_states WHERE task_id IN (${list}) AND state = 'FAILED' LIMIT 1`,
      )
      return { seconds: null, note: `a node failed: ${f?.error ?? '?'}` }
    }
    if (Number(row?.finished) === tasks) break
    if (nowMs() - started > timeoutMs)
      return {
        seconds: null,
        note: `timeout: ${Number(row?.finished)}/${tasks} finished after ${timeoutMs / 1000} s`,
      }
    await sleep(25)
  }
  const [span] = await reader.query<{ s: number; f: number }>(
    `SELECT MIN(started_at) AS s, MAX(finished_at) AS f FROM tasks WHERE id IN (${list})`,
  )
  return {
    seconds: (Number(span!.f) - Number(span!.s)) / 1000,
    ...(pg && active > 0 ? { lockWaitShare: waiting / active } : {}),
  }
}

export async function runEngine(cfg: Config, kind: Kind, log: (s: string) => void): Promise<EngineRow[]> {
  const db = await freshDatabase(kind, 'eng')
  const rows: EngineRow[] = []
  const prof = (name: string) =>
    cfg.profile ? { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${cfg.profileDir}/engine-${kind}-${name}`] } : {}
  try {
    const id = await bootstrap(db.url)
    // SQLite serves one process: the API and the worker share it. PostgreSQL: an API process and
    // 1 or 2 worker processes.
    const api = await startStdopsApi(`stdops(${kind})`, {
      dbUrl: db.url,
      worker: kind === 'sqlite',
      ...prof('serve'),
    })
    const reader = await openReader(db)
    const workers: Child[] = []
    try {
      const legacy = new LegacyClient(api.base, id)
      const templateId = await legacy.createTemplate('bench engine', linearTree(1, 'bench_noop'))
      const timeoutMs = cfg.quick ? 120_000 : 240_000
      for (const processes of kind === 'sqlite' ? [1] : [1, 2]) {
        if (kind === 'postgresql') {
          for (const w of workers.splice(0)) await w.stop()
          const started = await Promise.all(
            Array.from({ length: processes }, (_, i) =>
              startStdopsWorker(`stdops-worker-${i + 1}(${kind})`, {
                dbUrl: db.url,
                ...prof(`worker${processes}-${i + 1}`),
              }),
            ),
          )
          workers.push(...started)
        }
        // Warm-up: small tasks of both shapes (JIT, pools, graph cache paths); not reported.
        await measure(legacy, reader, templateId, 'linear', 2, 20, timeoutMs, false)
        await measure(legacy, reader, templateId, 'fork', 2, 20, timeoutMs, false)
        for (const shape of ['linear', 'fork'] as const) {
          const m = await measure(
            legacy,
            reader,
            templateId,
            shape,
            cfg.engineTasks,
            cfg.engineWidth,
            timeoutMs,
            kind === 'postgresql',
          )
          const nodes = cfg.engineTasks * cfg.engineWidth
          const row: EngineRow = {
            db: kind,
            processes,
            shape,
            tasks: cfg.engineTasks,
            nodes,
            seconds: m.seconds,
            nodesPerSec: m.seconds === null ? null : nodes / m.seconds,
            ...(m.lockWaitShare === undefined ? {} : { lockWaitShare: m.lockWaitShare }),
            ...(m.note ? { note: m.note } : {}),
          }
          rows.push(row)
          log(`| ${engineLine(row).join(' | ')} |`)
        }
        // The same linear tasks again, with 100,000 held and future jobs in the database: a claim
        // must not slow down with them (compared with the linear row just above).
        if (processes === 1) {
          await insertBacklog(reader)
          try {
            const claimPlan = await explainClaim(reader, kind)
            const m = await measure(
              legacy,
              reader,
              templateId,
              'linear',
              cfg.engineTasks,
              cfg.engineWidth,
              timeoutMs,
              kind === 'postgresql',
            )
            const nodes = cfg.engineTasks * cfg.engineWidth
            const row: EngineRow = {
              db: kind,
              processes,
              shape: 'linear',
              tasks: cfg.engineTasks,
              nodes,
              seconds: m.seconds,
              nodesPerSec: m.seconds === null ? null : nodes / m.seconds,
              backlog: BACKLOG_JOBS,
              claimPlan,
              ...(m.lockWaitShare === undefined ? {} : { lockWaitShare: m.lockWaitShare }),
              ...(m.note ? { note: m.note } : {}),
            }
            rows.push(row)
            log(`| ${engineLine(row).join(' | ')} |`)
          } finally {
            await removeBacklog(reader)
          }
        }
      }
      if (kind === 'sqlite') {
        const row: EngineRow = {
          db: kind,
          processes: 2,
          shape: 'linear',
          tasks: 0,
          nodes: 0,
          seconds: null,
          nodesPerSec: null,
          note: 'SQLite serves one process',
        }
        rows.push(row, { ...row, shape: 'fork' })
      }
    } finally {
      for (const w of workers) await w.stop()
      await reader.close()
      await api.child.stop()
    }
  } finally {
    await db.drop()
  }
  return rows
}
