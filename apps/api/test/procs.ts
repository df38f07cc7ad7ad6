import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createServer as createNetServer } from 'node:net'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createDb, type MigratableDb, type sql } from '@stdops/db'
import { testDatabaseBaseUrl } from '@stdops/db/testing'
import * as admin from '../src/services/admin'
import type { Identity } from './harness'

/**
 * Real server processes for the multi-process, crash and restart tests: `stdops-server serve`,
 * `serve --no-worker` and `worker`, spawned as `node apps/api/bin/stdops-server.mjs <cmd>` over one
 * database, with the helpers those tests share (a slow local HTTP server, identities made straight in
 * the database, the admin command line).
 */

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..')
export const SERVER_BIN = join(REPO, 'apps/api/bin/stdops-server.mjs')
/** The test-only preload that gives a server process an injected clock and fault points (see the file). */
export const TEST_HOOKS = join(REPO, 'apps/api/test/support/test-hooks.mjs')

/** One key for every process of a test file (and for the test's own admin calls). */
export const TEST_SECRET_KEY = `reliability-${randomBytes(8).toString('hex')}`

/** True when the test databases are PostgreSQL ones (TEST_DATABASE_URL, as createTestDatabaseUrl decides). */
export const isPostgres = () => testDatabaseBaseUrl() !== undefined

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export type ServerCommand = 'serve' | 'api' | 'worker'

export interface Child {
  name: string
  command: ServerCommand
  proc: ChildProcess
  pid: number
  /** Every line the process wrote (stdout and stderr), for diagnostics. */
  lines: string[]
  /** The API's address (serve, api). */
  url?: string
  /** The engine's worker id (serve, worker): node_histories.worker and fenced_results.worker hold it. */
  workerId?: string
  /** Settles when the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>
  readonly alive: boolean
}

const live = new Set<Child>()
let exitHookInstalled = false

/** Children never outlive the test process, whatever way it ends. */
function installExitHook() {
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.on('exit', () => {
    for (const c of live) {
      try {
        c.proc.kill('SIGKILL')
      } catch {}
    }
  })
}

/** The test process's environment without what would leak into a child (its own DATABASE_URL, vitest's loader). */
function childEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const base: NodeJS.ProcessEnv = { ...process.env }
  for (const k of Object.keys(base)) {
    if (k === 'NODE_OPTIONS' || k.startsWith('VITEST') || k.startsWith('STDOPS_') || k === 'DATABASE_URL')
      delete base[k]
  }
  return { ...base, ...env }
}

export function serverEnv(dbUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    DATABASE_URL: dbUrl,
    PORT: '0',
    HOST: '127.0.0.1',
    STDOPS_SECRET_KEY: TEST_SECRET_KEY,
    // info, not warn: the readiness lines ("stdops serving" with the address, "worker running" with
    // the worker id) are info lines. Requests are not logged (disableRequestLogging).
    LOG_LEVEL: 'info',
    LOG_FORMAT: 'json',
    STDOPS_DEMO: '0',
    ...extra,
  }
}

/**
 * Spawns `stdops-server <command>` and resolves once it is ready: listening (serve, api) and its
 * worker running (serve, worker). Fails with the process's output when it exits or is not ready in time.
 */
export async function startProcess(
  command: ServerCommand,
  env: Record<string, string>,
  opts: { name?: string; readyTimeoutMs?: number; testHooks?: boolean } = {},
): Promise<Child> {
  const args = command === 'serve' ? ['serve'] : command === 'api' ? ['serve', '--no-worker'] : ['worker']
  const preload = opts.testHooks ? ['--import', TEST_HOOKS] : []
  return startCommand(command, [process.execPath, ...preload, SERVER_BIN, ...args], childEnv(env), opts)
}

/**
 * Spawns exactly `argv` (a program and its arguments) in `cwd` with exactly `env`, as a process
 * manager would, and resolves once it is ready as `command` is (see startProcess).
 */
export async function startCommand(
  command: ServerCommand,
  argv: string[],
  env: NodeJS.ProcessEnv,
  opts: { name?: string; readyTimeoutMs?: number; cwd?: string } = {},
): Promise<Child> {
  installExitHook()
  const [program, ...args] = argv
  if (!program) throw new Error('startCommand: empty argv')
  const proc = spawn(program, args, {
    cwd: opts.cwd ?? REPO,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  if (proc.pid === undefined) throw new Error(`could not spawn ${command}`)
  const lines: string[] = []
  let exitInfo: { code: number | null; signal: NodeJS.Signals | null; at: number } | null = null
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((res) => {
    proc.on('exit', (code, signal) => {
      exitInfo = { code, signal, at: Date.now() }
      live.delete(child)
      res(exitInfo)
    })
  })
  const child: Child = {
    name: opts.name ?? `${command}#${proc.pid}`,
    command,
    proc,
    pid: proc.pid,
    lines,
    exited,
    get alive() {
      return exitInfo === null
    },
  }
  live.add(child)

  const wantUrl = command !== 'worker'
  const wantWorker = command !== 'api'
  const ready = new Promise<void>((res, rej) => {
    const check = () => {
      if ((!wantUrl || child.url) && (!wantWorker || child.workerId)) res()
    }
    const onLine = (line: string) => {
      lines.push(line)
      if (lines.length > 5000) lines.splice(0, 1000)
      if (!line.startsWith('{')) return
      try {
        const entry = JSON.parse(line) as { msg?: string; address?: string; workerId?: string }
        if (entry.msg === 'stdops serving' && entry.address) child.url = entry.address
        if (entry.msg === 'worker running' && entry.workerId) child.workerId = entry.workerId
        check()
      } catch {}
    }
    const reader = (stream: NodeJS.ReadableStream | null) => {
      let buf = ''
      stream?.setEncoding('utf8')
      stream?.on('data', (chunk: string) => {
        buf += chunk
        for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
          onLine(buf.slice(0, i))
          buf = buf.slice(i + 1)
        }
      })
    }
    reader(proc.stdout)
    reader(proc.stderr)
    void exited.then((e) =>
      rej(
        new Error(
          `${child.name} exited (code ${e.code}, signal ${e.signal}) before it was ready:\n${lines.slice(-30).join('\n')}`,
        ),
      ),
    )
  })
  const timeoutMs = opts.readyTimeoutMs ?? 45_000
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([
      ready,
      new Promise((_, rej) => {
        timer = setTimeout(
          () =>
            rej(new Error(`${child.name} not ready within ${timeoutMs} ms:\n${lines.slice(-30).join('\n')}`)),
          timeoutMs,
        )
      }),
    ])
  } catch (err) {
    proc.kill('SIGKILL')
    throw err
  } finally {
    clearTimeout(timer)
  }
  return child
}

/** Sends `signal` and waits for the exit; SIGKILL after `timeoutMs`. */
export async function stopProcess(child: Child, signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 30_000) {
  if (!child.alive) return child.exited
  child.proc.kill(signal)
  const timer = setTimeout(() => child.proc.kill('SIGKILL'), timeoutMs)
  try {
    return await child.exited
  } finally {
    clearTimeout(timer)
  }
}

/** Kills every child still running (afterAll): SIGKILL, so nothing lingers on a failed test. */
export async function killAll() {
  const waiting = [...live].map((c) => {
    try {
      c.proc.kill('SIGKILL')
    } catch {}
    return c.exited
  })
  await Promise.all(waiting)
}

/** Runs the server's command line to completion (admin commands). */
export function runServerCli(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res, rej) => {
    const proc = spawn(process.execPath, [SERVER_BIN, ...args], {
      cwd: REPO,
      env: childEnv({ LOG_LEVEL: 'warn', STDOPS_DEMO: '0', ...env }),
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    proc.stdout.setEncoding('utf8').on('data', (c: string) => {
      stdout += c
    })
    proc.stderr.setEncoding('utf8').on('data', (c: string) => {
      stderr += c
    })
    proc.on('error', rej)
    proc.on('exit', (code) => res({ code, stdout, stderr }))
  })
}

/** A free TCP port on 127.0.0.1 (closed again: the caller binds it soon after). */
export async function freePort(): Promise<number> {
  const srv = createNetServer()
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()))
  const { port } = srv.address() as AddressInfo
  await new Promise<void>((r) => srv.close(() => r()))
  return port
}

export interface SlowServer {
  url: string
  /** Requests received, by the `n` query parameter. */
  hits: Map<string, number>
  /** Arrival times (epoch ms), by `n`. */
  arrivals: Map<string, number[]>
  total(): number
  close(): Promise<void>
}

/**
 * A local HTTP server that answers `GET /?n=<id>&ms=<delay>[&first=<delay>]` with `{"ok":true}` after
 * `ms` milliseconds (`first` for the first call of `n`): the target of bk_http_request nodes that run
 * for a while, counting every call.
 */
export async function startSlowServer(): Promise<SlowServer> {
  const hits = new Map<string, number>()
  const arrivals = new Map<string, number[]>()
  const server: HttpServer = createHttpServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x')
    const n = u.searchParams.get('n') ?? ''
    const seen = hits.get(n) ?? 0
    // `first`: the delay of the first call of `n` (so that it is surely still running when a test acts), `ms` of the others
    const ms = Number((seen === 0 ? u.searchParams.get('first') : null) ?? u.searchParams.get('ms') ?? '1000')
    hits.set(n, seen + 1)
    arrivals.set(n, [...(arrivals.get(n) ?? []), Date.now()])
    req.resume()
    const timer = setTimeout(() => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ ok: true, n }))
    }, ms)
    res.on('close', () => clearTimeout(timer))
  })
  server.keepAliveTimeout = 1000
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}/`,
    hits,
    arrivals,
    total: () => [...hits.values()].reduce((a, b) => a + b, 0),
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((r) => server.close(() => r()))
    },
  }
}

/**
 * Opens the test database from the test process (migrating it first, so the children find it ready)
 * and makes an app, a user with a token and an admin role in a new project, with the key every
 * process shares.
 */
export async function openAndBootstrap(dbUrl: string): Promise<{ db: MigratableDb; id: Identity }> {
  const db = createDb(dbUrl, { poolSize: 4 })
  await db.migrate()
  const deps = { db, secretKey: TEST_SECRET_KEY, now: Date.now }
  const n = randomBytes(4).toString('hex')
  const id: Identity = {
    appCode: `rel_app_${n}`,
    appSecret: `rel-secret-${n}-0123456789abcdef`,
    username: `rel_user_${n}`,
    token: `rel-token-${n}-0123456789abcdef`,
    projectId: 0,
    bkBizId: 500000 + Math.floor(Math.random() * 1e6),
  }
  await admin.addApp(deps, id.appCode, { secret: id.appSecret })
  await admin.addUser(deps, id.username, { token: id.token })
  id.projectId = (await admin.addProject(deps, `reliability ${n}`, id.bkBizId)).id
  await admin.grant(deps, id.username, id.projectId, 'admin')
  return { db, id }
}

/** Rows of a query as plain numbers where the driver returns BIGINT/COUNT as strings. */
export async function count(db: MigratableDb, query: ReturnType<typeof sql>): Promise<number> {
  const [row] = await db.query<{ n: number | string }>(query)
  return Number(row?.n ?? 0)
}
