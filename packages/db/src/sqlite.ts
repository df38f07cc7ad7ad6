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

/**
 * One connection of our own for statements we write (the hot paths), beside Prisma's. SQLite has
 * one writer: every statement and transaction on this connection takes the mutex, so a
 * transaction is never interleaved with another caller's statement.
 */
export function createSqliteDb(url: string): Db & { migrate(): Promise<string[]> } {
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
  // What the open transaction deferred to its commit (null: no transaction open).
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

  return {
    provider: 'sqlite',
    url,
    prisma,
    query: (q) => whileBusy(() => mutex.run(() => inTx.query(q))),
    execute: (q) => whileBusy(() => mutex.run(() => inTx.execute(q))),
    afterCommit: (fn) => runCommitted([fn]),
    publish: (channel, key) => publisher.add(channel, key),
    // Waiting for the write lock happens outside the mutex: this process's other callers queue
    // behind the mutex only while a transaction really runs.
    tx: async (fn) => {
      const done = await whileBusy(() =>
        mutex.run(async () => {
          conn.prepare('BEGIN IMMEDIATE').run()
          committed = []
          try {
            const result = await fn(inTx)
            conn.prepare('COMMIT').run()
            return { result, reports: committed }
          } catch (err) {
            if (conn.inTransaction) conn.prepare('ROLLBACK').run()
            throw err
          } finally {
            committed = null
          }
        }),
      )
      runCommitted(done.reports)
      return done.result
    },
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
