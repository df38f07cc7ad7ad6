import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type Database from 'better-sqlite3'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { createDb, type MigratableDb, openSqlite, type SqliteOptions, sql } from '../src/index'

/**
 * SQLite group commit, on real database files (whatever database the other suites use). A COMMIT
 * in WAL mode appends the pages it changed to the -wal file, the last of them marked as a commit
 * frame: counting the commit frames in the file counts the COMMITs that really happened.
 */

const root = mkdtempSync(join(tmpdir(), 'stdops-group-commit-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))

const open: Array<{ close(): unknown }> = []
afterEach(async () => {
  for (const c of open.splice(0).reverse()) await c.close()
})

let seq = 0
/** A fresh migrated database file, and a second connection of our own on it (it sees only what is committed). */
async function fresh(opts: SqliteOptions = {}) {
  const file = join(root, `db${++seq}`, 'test.db')
  const db = createDb(`file:${file}`, opts)
  open.push(db)
  await db.migrate()
  const observer = openSqlite(`file:${file}`)
  open.push(observer)
  return { file, db, observer }
}

/**
 * Empties the WAL (everything in it goes into the database file), so that what follows is all
 * the -wal file holds.
 */
function truncateWal(observer: Database.Database) {
  const [r] = observer.pragma('wal_checkpoint(TRUNCATE)') as Array<{ busy: number }>
  expect(r?.busy).toBe(0)
}

/** COMMITs in the -wal file: frames whose header carries the database size (commit frames). */
function walCommits(file: string): number {
  const wal = `${file}-wal`
  if (!existsSync(wal)) return 0
  const buf = readFileSync(wal)
  if (buf.length < 32) return 0
  const pageSize = buf.readUInt32BE(8)
  const [salt1, salt2] = [buf.readUInt32BE(16), buf.readUInt32BE(20)]
  let commits = 0
  for (let at = 32; at + 24 + pageSize <= buf.length; at += 24 + pageSize) {
    // A frame of an earlier generation of the log (other salts) is not part of it.
    if (buf.readUInt32BE(at + 8) !== salt1 || buf.readUInt32BE(at + 12) !== salt2) break
    if (buf.readUInt32BE(at + 4) !== 0) commits++
  }
  return commits
}

const put = (db: MigratableDb, key: string) =>
  db.tx(async (tx) => {
    await tx.execute(sql`INSERT INTO settings (key, value) VALUES (${key}, ${'v'})`)
    return key
  })

const committedValue = (observer: Database.Database, key: string) =>
  (observer.prepare('SELECT value FROM settings WHERE key = ?').get(key) as { value: string } | undefined)
    ?.value

// Bounds no loaded machine reaches: which transactions share a COMMIT depends on the queue only.
const WIDE = { groupCommitLimits: { transactions: 1000, ms: 60_000 } }

describe('SQLite group commit', () => {
  it('concurrent transactions share COMMITs; with group commit off each has its own', async () => {
    const N = 32
    const on = await fresh()
    truncateWal(on.observer)
    const keys = Array.from({ length: N }, (_, i) => `k${i}`)
    expect(await Promise.all(keys.map((k) => put(on.db, k)))).toEqual(keys)
    const shared = walCommits(on.file)
    expect(shared).toBeGreaterThanOrEqual(1)
    expect(shared).toBeLessThan(N)
    for (const k of keys) expect(committedValue(on.observer, k)).toBe('v')

    const off = await fresh({ groupCommit: false })
    truncateWal(off.observer)
    await Promise.all(keys.map((k) => put(off.db, k)))
    expect(walCommits(off.file)).toBe(N)
  })

  it('transactions asked for by separate callbacks of one event-loop turn (requests read together) share a COMMIT', async () => {
    const { file, db, observer } = await fresh(WIDE)
    truncateWal(observer)
    // Each starts in a callback of its own, as each request's handler does; each finishes its
    // statements without waiting on anything but the database.
    const started = Array.from(
      { length: 8 },
      (_, i) =>
        new Promise<string>((resolve, reject) => setImmediate(() => put(db, `s${i}`).then(resolve, reject))),
    )
    expect(await Promise.all(started)).toHaveLength(8)
    expect(walCommits(file)).toBe(1)
  })

  it('a batch is bounded: no more transactions share one COMMIT than its limit', async () => {
    const { file, db, observer } = await fresh({ groupCommitLimits: { transactions: 4, ms: 60_000 } })
    truncateWal(observer)
    await Promise.all(Array.from({ length: 16 }, (_, i) => put(db, `b${i}`)))
    expect(walCommits(file)).toBe(4)
  })

  it('one transaction that throws rolls back alone: its caller gets its error, the others commit', async () => {
    const { file, db, observer } = await fresh(WIDE)
    truncateWal(observer)
    const sawB: unknown[] = []
    const [a, b, c] = await Promise.allSettled([
      put(db, 'a'),
      db.tx(async (tx) => {
        await tx.execute(sql`INSERT INTO settings (key, value) VALUES (${'b'}, ${'v'})`)
        await tx.execute(sql`UPDATE settings SET value = ${'changed by b'} WHERE key = ${'a'}`)
        throw new Error('b fails')
      }),
      db.tx(async (tx) => {
        // Runs after b in the same transaction: b's writes are already undone.
        sawB.push(...(await tx.query(sql`SELECT key FROM settings WHERE key = ${'b'}`)))
        sawB.push(...(await tx.query(sql`SELECT value FROM settings WHERE key = ${'a'}`)))
        await tx.execute(sql`INSERT INTO settings (key, value) VALUES (${'c'}, ${'v'})`)
        return 'c'
      }),
    ])
    expect(a).toEqual({ status: 'fulfilled', value: 'a' })
    expect(b.status).toBe('rejected')
    expect((b as PromiseRejectedResult).reason).toMatchObject({ message: 'b fails' })
    expect(c).toEqual({ status: 'fulfilled', value: 'c' })
    expect(sawB).toEqual([{ value: 'v' }])
    expect(walCommits(file)).toBe(1) // they did share the COMMIT
    expect(committedValue(observer, 'a')).toBe('v')
    expect(committedValue(observer, 'b')).toBeUndefined()
    expect(committedValue(observer, 'c')).toBe('v')
  })

  it('a statement error in one transaction (a unique key) rolls back that one only', async () => {
    const { db, observer } = await fresh(WIDE)
    await put(db, 'taken')
    const results = await Promise.allSettled([put(db, 'x1'), put(db, 'taken'), put(db, 'x2')])
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled'])
    expect((results[1] as PromiseRejectedResult).reason).toMatchObject({
      code: 'SQLITE_CONSTRAINT_PRIMARYKEY',
    })
    for (const k of ['taken', 'x1', 'x2']) expect(committedValue(observer, k)).toBe('v')
  })

  it('afterCommit runs after the shared COMMIT, never for a transaction that rolled back', async () => {
    const { file, db, observer } = await fresh(WIDE)
    truncateWal(observer)
    const log: string[] = []
    const hook = (key: string) => () =>
      // Another connection reads only what is committed.
      log.push(`${key} hook, committed: ${committedValue(observer, key) === 'v'}`)
    const results = await Promise.allSettled([
      db
        .tx(async (tx) => {
          await tx.execute(sql`INSERT INTO settings (key, value) VALUES (${'h1'}, ${'v'})`)
          tx.afterCommit(hook('h1'))
        })
        .then(() => log.push(`h1 resolved, committed: ${committedValue(observer, 'h1') === 'v'}`)),
      db.tx(async (tx) => {
        await tx.execute(sql`INSERT INTO settings (key, value) VALUES (${'h2'}, ${'v'})`)
        tx.afterCommit(hook('h2'))
        throw new Error('h2 fails')
      }),
      db.tx(async (tx) => {
        // h1 has finished its callback, but the batch has not committed yet.
        log.push(`h3 runs, h1 committed: ${committedValue(observer, 'h1') === 'v'}`)
        await tx.execute(sql`INSERT INTO settings (key, value) VALUES (${'h3'}, ${'v'})`)
        tx.afterCommit(hook('h3'))
      }),
    ])
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled'])
    expect(log).toEqual([
      'h3 runs, h1 committed: false',
      'h1 hook, committed: true',
      'h3 hook, committed: true',
      'h1 resolved, committed: true',
    ])
    expect(walCommits(file)).toBe(1)
  })

  it('when the shared COMMIT fails, every caller in the batch gets the error and nothing is written', async () => {
    const { db, observer } = await fresh(WIDE)
    const seen: string[] = []
    const results = await Promise.allSettled([
      db.tx(async (tx) => {
        await tx.execute(sql`INSERT INTO settings (key, value) VALUES (${'f1'}, ${'v'})`)
        tx.afterCommit(() => seen.push('f1'))
      }),
      db.tx(async (tx) => {
        // A foreign key checked only at COMMIT, to a project and a user that do not exist.
        await tx.execute(sql`PRAGMA defer_foreign_keys = ON`)
        await tx.execute(
          sql`INSERT INTO memberships (project_id, user_id, role, created_at) VALUES (${999}, ${999}, ${'x'}, ${1})`,
        )
      }),
      put(db, 'f3'),
    ])
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected'])
    for (const r of results)
      expect((r as PromiseRejectedResult).reason).toMatchObject({ code: 'SQLITE_CONSTRAINT_FOREIGNKEY' })
    expect(seen).toEqual([])
    expect(committedValue(observer, 'f1')).toBeUndefined()
    expect(committedValue(observer, 'f3')).toBeUndefined()
    // The connection is usable again.
    expect(await put(db, 'after')).toBe('after')
    expect(committedValue(observer, 'after')).toBe('v')
  })

  it('while another connection holds the write lock the queue waits, then commits as one batch', async () => {
    const { file, db, observer } = await fresh(WIDE)
    truncateWal(observer)
    observer.prepare('BEGIN IMMEDIATE').run()
    const pending = Promise.all(Array.from({ length: 8 }, (_, i) => put(db, `w${i}`)))
    // Hold the lock long enough that the batch meets SQLITE_BUSY a few times.
    await new Promise((resolve) => setTimeout(resolve, 150))
    observer.prepare('COMMIT').run()
    expect(await pending).toHaveLength(8)
    expect(walCommits(file)).toBe(1)
    for (let i = 0; i < 8; i++) expect(committedValue(observer, `w${i}`)).toBe('v')
  })

  it('what a resolved transaction wrote is on disk: the files as a crash leaves them hold it', async () => {
    const { file, db } = await fresh()
    const keys = Array.from({ length: 16 }, (_, i) => `d${i}`)
    await Promise.all(keys.map((k) => put(db, k)))
    // Copy the database and its WAL while the connection is still open (no close, no checkpoint):
    // what a killed process leaves behind. SQLite recovers the WAL when it opens the copy.
    const crashed = join(root, `crash${seq}`)
    mkdirSync(crashed)
    copyFileSync(file, join(crashed, 'test.db'))
    copyFileSync(`${file}-wal`, join(crashed, 'test.db-wal'))
    const reopened = openSqlite(`file:${join(crashed, 'test.db')}`)
    try {
      for (const k of keys) expect(committedValue(reopened, k), k).toBe('v')
    } finally {
      reopened.close()
    }
  })
})
