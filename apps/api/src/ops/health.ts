import { statSync } from 'node:fs'
import { type Db, loadMigrations, sql, sqlitePath } from '@stdops/db'
import type { Engine } from '@stdops/engine'
import type { Lifecycle } from './lifecycle'

/**
 * What /readyz answers: whether this process should be sent work. Ready when the database answers
 * within `timeoutMs`, every migration this build ships is applied, the process is not stopping,
 * and, in a process that runs a worker, its claim loop is running and has gone round recently.
 * Each check is one cheap statement or a stat: a probe every second costs nothing.
 */
export interface Readiness {
  ready: boolean
  /** One entry per check: `ok`, or what is wrong. */
  checks: Record<string, string>
}

export interface ReadinessDeps {
  db: Db
  engine: Pick<Engine, 'mode'> & { readonly loopAt?: number | null }
  lifecycle: Pick<Lifecycle, 'stopping'>
  now: () => number
}

interface FileId {
  dev: number
  ino: number
}

function fileId(path: string): FileId | null {
  try {
    const st = statSync(path)
    return { dev: st.dev, ino: st.ino }
  } catch {
    return null
  }
}

const withTimeout = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
  new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms)
    timer.unref()
    p.then(
      (v) => {
        clearTimeout(timer)
        resolve(v)
      },
      (err: unknown) => {
        clearTimeout(timer)
        reject(err)
      },
    )
  })

const messageOf = (err: unknown) => (err instanceof Error ? err.message : String(err)).split('\n')[0]!

export function createReadinessCheck(
  deps: ReadinessDeps,
  opts: { timeoutMs?: number; workerStaleMs?: number } = {},
): () => Promise<Readiness> {
  const timeoutMs = opts.timeoutMs ?? 2000
  const workerStaleMs = opts.workerStaleMs ?? 10_000
  const shipped = loadMigrations(deps.db.provider).map((m) => m.name)
  // SQLite is a file this process holds open: were it deleted or replaced, this process would
  // carry on with the old file while a restart opened another. Not ready, then.
  const path = deps.db.provider === 'sqlite' ? sqlitePath(deps.db.url) : null
  const opened = path && path !== ':memory:' ? fileId(path) : null

  const database = async (): Promise<{ database: string; migrations: string }> => {
    if (path && opened) {
      const now = fileId(path)
      if (!now) return { database: `database file ${path} is missing`, migrations: 'unknown' }
      if (now.dev !== opened.dev || now.ino !== opened.ino)
        return {
          database: `database file ${path} was replaced since this process opened it`,
          migrations: 'unknown',
        }
    }
    let applied: Set<string>
    try {
      const rows = await withTimeout(
        deps.db.query<{ migration_name: string }>(
          sql`SELECT migration_name FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL`,
        ),
        timeoutMs,
        'the database',
      )
      applied = new Set(rows.map((r) => r.migration_name))
    } catch (err) {
      return { database: `unreachable: ${messageOf(err)}`, migrations: 'unknown' }
    }
    const pending = shipped.filter((name) => !applied.has(name))
    return { database: 'ok', migrations: pending.length === 0 ? 'ok' : `pending: ${pending.join(', ')}` }
  }

  const worker = (): string | null => {
    const { mode } = deps.engine
    if (mode === 'idle') return null // this process runs no worker
    if (mode !== 'running') return `the worker is ${mode}`
    const at = deps.engine.loopAt
    if (at !== undefined && at !== null && deps.now() - at > workerStaleMs)
      return `the worker loop last went round ${Math.round((deps.now() - at) / 1000)} s ago`
    return 'ok'
  }

  return async () => {
    const checks: Record<string, string> = {}
    if (deps.lifecycle.stopping) checks.process = 'stopping'
    Object.assign(checks, await database())
    const w = worker()
    if (w !== null) checks.worker = w
    return { ready: Object.values(checks).every((v) => v === 'ok'), checks }
  }
}
