import { EventEmitter } from 'node:events'
import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs'
import { dirname } from 'node:path'
import { PrismaBetterSqlite3 } from '@prisma/adapter-better-sqlite3'
import Database from 'better-sqlite3'
import { PrismaClient } from './generated/sqlite/client'
import { loadMigrations, MIGRATIONS_TABLE_SQL, newMigrationId } from './migrations'
import { Mutex } from './mutex'
import { runCommitted } from './postgres'
import { createPublisher } from './publish'
import type { Sql } from './sql'
import type { Db, Executor, Row } from './types'

/** The pragmas stdops runs SQLite with (the benchmark's floor uses the same). */
export const SQLITE_PRAGMAS = [
  'journal_mode = WAL',
  'synchronous = NORMAL',
  'busy_timeout = 5000',
  'foreign_keys = ON',
] as const

/**
 * How long our connection waits, blocking, for another connection's write lock (SQLite's busy
 * handler sleeps in the calling thread: the event loop with it) before it gives the event loop
 * back and waits asynchronously instead, retrying with a short backoff.
 */
const BUSY_BLOCK_MS = 20
/** How long a statement or transaction waits in all for the write lock before SQLITE_BUSY reaches its caller. */
export const SQLITE_BUSY_WAIT_MS = 30_000

const isBusy = (err: unknown) => {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' && code.startsWith('SQLITE_BUSY')
}

/**
 * Runs `attempt` again while it fails with SQLITE_BUSY (nothing was written: an autocommit
 * statement or a transaction that did not begin, or rolled back), sleeping between tries without
 * blocking the event loop, for up to SQLITE_BUSY_WAIT_MS.
 */
async function whileBusy<T>(attempt: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + SQLITE_BUSY_WAIT_MS
  for (let delay = 5; ; delay = Math.min(delay * 2, 200)) {
    try {
      return await attempt()
    } catch (err) {
      if (!isBusy(err) || Date.now() + delay > deadline) throw err
    }
    await new Promise((resolve) => setTimeout(resolve, delay))
  }
}

export function sqlitePath(url: string): string {
  return url.replace(/^file:/, '').replace(/\?.*$/, '')
}

/**
 * Opens the database file, readable by this user only: the directories it creates are 0700 and
 * the file 0600 (an existing file is narrowed to 0600; SQLite gives its -wal and -shm files the
 * database file's mode). The database holds hashed credentials, sealed secrets and, when
 * STDOPS_SECRET_KEY is not set, the server key itself. Directories that already exist are left as
 * they are (they may be shared, such as /tmp).
 */
export function openSqlite(url: string): Database.Database {
  const path = sqlitePath(url)
  if (path !== ':memory:') {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 })
    closeSync(openSync(path, 'a', 0o600))
    for (const file of [path, `${path}-wal`, `${path}-shm`]) if (existsSync(file)) chmodSync(file, 0o600)
  }
  const conn = new Database(path)
  for (const p of SQLITE_PRAGMAS) conn.pragma(p)
  return conn
}

/** Transactions one shared COMMIT takes at most. */
export const GROUP_COMMIT_MAX_TRANSACTIONS = 64
/** After this long since its BEGIN, a shared transaction takes no more queued transactions: it commits. */
export const GROUP_COMMIT_MAX_MS = 4

export interface SqliteOptions {
  /**
   * Group commit (default on): transactions queued while another runs share one COMMIT, each in
   * its own SAVEPOINT. Off: every transaction has its own BEGIN … COMMIT.
   */
  groupCommit?: boolean
  /** A shared COMMIT's bounds (default GROUP_COMMIT_MAX_TRANSACTIONS and GROUP_COMMIT_MAX_MS). */
  groupCommitLimits?: { transactions: number; ms: number }
}

/** A transaction waiting for its turn on the connection, and, once it ran, how it went. */
interface Queued {
  fn: (tx: Executor) => Promise<unknown>
  resolve: (value: unknown) => void
  reject: (err: unknown) => void
  /** Past this (Date.now()), a batch that cannot begin for SQLITE_BUSY gives this one the error. */
  deadline: number
  outcome?: { ok: true; result: unknown; reports: Array<() => void> } | { ok: false; err: unknown }
}

/**
 * One connection of our own for statements we write (the hot paths), beside Prisma's. SQLite has
 * one writer: every statement and transaction on this connection takes the mutex, so a
 * transaction is never interleaved with another caller's statement.
 *
 * Group commit: transactions queue; at the end of the event loop's turn, or when the running batch
 * is done, the queued transactions run one after the other inside one BEGIN … COMMIT, each in a
 * SAVEPOINT of its own. One that throws is rolled back to its savepoint alone and its caller gets its error;
 * every other caller is answered only once the shared COMMIT succeeded, and all of them get the
 * error when it fails. A COMMIT is what costs (WAL: it appends every page it changed), so sixteen
 * small transactions cost little more than one.
 */
export function createSqliteDb(url: string, opts: SqliteOptions = {}): Db & { migrate(): Promise<string[]> } {
  const groupCommit = opts.groupCommit ?? true
  const limits = opts.groupCommitLimits ?? {
    transactions: GROUP_COMMIT_MAX_TRANSACTIONS,
    ms: GROUP_COMMIT_MAX_MS,
  }
  const conn = openSqlite(url)
  conn.pragma(`busy_timeout = ${BUSY_BLOCK_MS}`)
  const mutex = new Mutex()
  const cache = new Map<string, Database.Statement>()
  const emitter = new EventEmitter()
  emitter.setMaxListeners(0)

  const prepare = (text: string) => {
    let stmt = cache.get(text)
    if (!stmt) {
      stmt = conn.prepare(text)
      if (cache.size > 1000) cache.clear()
      cache.set(text, stmt)
    }
    return stmt
  }
  const run = (q: Sql): { rows: Row[]; changes: number } => {
    const { text, values } = q.compile('sqlite')
    const stmt = prepare(text)
    if (stmt.reader) return { rows: stmt.all(...values) as Row[], changes: 0 }
    return { rows: [], changes: stmt.run(...values).changes }
  }
  const control = {
    begin: conn.prepare('BEGIN IMMEDIATE'),
    commit: conn.prepare('COMMIT'),
    rollback: conn.prepare('ROLLBACK'),
    savepoint: conn.prepare('SAVEPOINT stdops_tx'),
    release: conn.prepare('RELEASE stdops_tx'),
    rollbackTo: conn.prepare('ROLLBACK TO stdops_tx'),
  }
  // What the running transaction deferred to its commit (null: no transaction open).
  let committed: Array<() => void> | null = null
  const publisher = createPublisher(async (channel, payload) => {
    emitter.emit(channel, payload)
  })
  const inTx: Executor = {
    provider: 'sqlite',
    query: async <T = Row>(q: Sql) => run(q).rows as T[],
    execute: async (q: Sql) => {
      const r = run(q)
      return r.changes || r.rows.length
    },
    afterCommit: (fn) => {
      if (committed) committed.push(fn)
      else runCommitted([fn])
    },
    publish: (channel, key) => inTx.afterCommit(() => publisher.add(channel, key)),
  }
  const adapter = new PrismaBetterSqlite3({ url: `file:${sqlitePath(url)}`, timeout: 5000 })
  const prisma = new PrismaClient({ adapter })

  // One transaction, its own BEGIN … COMMIT (group commit off). Waiting for the write lock
  // happens outside the mutex: this process's other callers queue behind the mutex only while a
  // transaction really runs.
  const soloTx = async <T>(fn: (tx: Executor) => Promise<T>): Promise<T> => {
    const done = await whileBusy(() =>
      mutex.run(async () => {
        control.begin.run()
        committed = []
        try {
          const result = await fn(inTx)
          control.commit.run()
          return { result, reports: committed }
        } catch (err) {
          if (conn.inTransaction) control.rollback.run()
          throw err
        } finally {
          committed = null
        }
      }),
    )
    runCommitted(done.reports)
    return done.result
  }

  const queue: Queued[] = []
  let draining = false

  /**
   * Runs queued transactions in one BEGIN … COMMIT, under the mutex: the first in the queue, then
   * whatever is queued when it is done, within the batch's bounds. Every member taken from the
   * queue goes into `batch` with its outcome. Returns SQLITE_BUSY's error when BEGIN met it
   * (nothing was taken from the queue).
   */
  const runBatch = async (batch: Queued[]): Promise<unknown> => {
    try {
      control.begin.run()
    } catch (err) {
      if (isBusy(err)) return err
      throw err
    }
    const started = performance.now()
    let broken: unknown = null
    while (
      queue.length > 0 &&
      batch.length < limits.transactions &&
      (batch.length === 0 || performance.now() - started < limits.ms)
    ) {
      const member = queue.shift() as Queued
      batch.push(member)
      const reports: Array<() => void> = []
      try {
        control.savepoint.run()
      } catch (err) {
        member.outcome = { ok: false, err }
        broken = err
        break
      }
      committed = reports
      try {
        const result = await member.fn(inTx)
        control.release.run()
        member.outcome = { ok: true, result, reports }
      } catch (err) {
        member.outcome = { ok: false, err }
        // Some errors (a full disk, an I/O error) end the whole transaction: what the members
        // before this one wrote is gone with it.
        if (!conn.inTransaction) {
          broken = err
          break
        }
        try {
          control.rollbackTo.run()
          control.release.run()
        } catch (undo) {
          broken = undo
          break
        }
      } finally {
        committed = null
      }
    }
    if (broken === null) {
      try {
        control.commit.run()
        return null
      } catch (err) {
        broken = err
      }
    }
    for (const m of batch) if (m.outcome?.ok) m.outcome = { ok: false, err: broken }
    if (conn.inTransaction) control.rollback.run()
    return null
  }

  /** Runs batches while transactions are queued; a batch that cannot begin waits and tries again as a whole. */
  const drain = async () => {
    draining = true
    try {
      for (let delay = 5; queue.length > 0; ) {
        const batch: Queued[] = []
        let busy: unknown = null
        try {
          busy = await mutex.run(() => runBatch(batch))
        } catch (err) {
          // BEGIN failed (not busy: nothing ran, every queued caller gets the error), or ROLLBACK
          // did after a failure that every member of the batch already has as its outcome.
          if (batch.length === 0) batch.push(...queue.splice(0))
          for (const m of batch) m.outcome ??= { ok: false, err }
        }
        if (!busy) {
          delay = 5
          for (const m of batch) {
            const o = m.outcome as NonNullable<Queued['outcome']>
            if (o.ok) {
              runCommitted(o.reports)
              m.resolve(o.result)
            } else m.reject(o.err)
          }
          continue
        }
        // Another connection holds the write lock: whoever has waited long enough gets its error.
        const now = Date.now()
        for (let i = queue.length - 1; i >= 0; i--) {
          const m = queue[i] as Queued
          if (now + delay > m.deadline) {
            queue.splice(i, 1)
            m.reject(busy)
          }
        }
        if (queue.length === 0) break
        await new Promise((resolve) => setTimeout(resolve, delay))
        delay = Math.min(delay * 2, 200)
      }
    } finally {
      draining = false
    }
  }

  const enqueue = <T>(fn: (tx: Executor) => Promise<T>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      queue.push({
        fn,
        resolve: resolve as (value: unknown) => void,
        reject,
        deadline: Date.now() + SQLITE_BUSY_WAIT_MS,
      })
      // The first batch starts once this turn of the event loop is over: the requests read in the
      // same turn queue their transactions meanwhile. (Statements are synchronous: a transaction
      // started at once would be done before the next request's handler runs, and none would ever
      // find another one running.)
      if (!draining) {
        draining = true
        setImmediate(() => void drain())
      }
    })

  return {
    provider: 'sqlite',
    url,
    prisma,
    query: (q) => whileBusy(() => mutex.run(() => inTx.query(q))),
    execute: (q) => whileBusy(() => mutex.run(() => inTx.execute(q))),
    afterCommit: (fn) => runCommitted([fn]),
    publish: (channel, key) => publisher.add(channel, key),
    // A member rolled back for SQLITE_BUSY (nothing of it written) queues again, as a transaction
    // of its own would be tried again.
    tx: groupCommit ? (fn) => whileBusy(() => enqueue(fn)) : soloTx,
    notify: async (channel, payload) => {
      emitter.emit(channel, payload)
    },
    listen: async (channel, onMessage) => {
      emitter.on(channel, onMessage)
      return async () => {
        emitter.off(channel, onMessage)
      }
    },
    migrate: () =>
      mutex.run(() => {
        conn.exec(MIGRATIONS_TABLE_SQL.sqlite)
        const applied = new Set(
          (
            conn
              .prepare('SELECT migration_name FROM _prisma_migrations WHERE rolled_back_at IS NULL')
              .all() as {
              migration_name: string
            }[]
          ).map((r) => r.migration_name),
        )
        const done: string[] = []
        for (const m of loadMigrations('sqlite')) {
          if (applied.has(m.name)) continue
          conn
            .transaction(() => {
              conn.exec(m.sql)
              conn
                .prepare(
                  `INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at, finished_at, applied_steps_count)
                 VALUES (?, ?, ?, current_timestamp, current_timestamp, 1)`,
                )
                .run(newMigrationId(), m.checksum, m.name)
            })
            .immediate()
          done.push(m.name)
        }
        return done
      }),
    close: async () => {
      await publisher.flush()
      await prisma.$disconnect()
      conn.close()
    },
  }
}
