/**
 * Fresh databases for one bench run (a SQLite file in a temporary directory, or a new database on
 * the PostgreSQL server), dropped afterwards, and a small direct reader the bench polls with.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openSqlite } from '@stdops/db'
import pg from 'pg'

export type Kind = 'sqlite' | 'postgresql'

export const PG_BASE_URL = process.env.BENCH_PG_URL ?? 'postgresql://postgres@127.0.0.1:5432/test'

export interface FreshDb {
  kind: Kind
  url: string
  drop(): Promise<void>
}

const open = new Set<FreshDb>()

/** Whether the PostgreSQL server answers (the PostgreSQL sections are skipped when it does not). */
export async function pgAvailable(): Promise<string | null> {
  const c = new pg.Client({ connectionString: PG_BASE_URL, connectionTimeoutMillis: 3000 })
  try {
    await c.connect()
    const r = await c.query<{ v: string }>("SELECT current_setting('server_version') AS v")
    return r.rows[0]?.v ?? 'unknown'
  } catch {
    return null
  } finally {
    await c.end().catch(() => undefined)
  }
}

export async function freshDatabase(kind: Kind, label: string): Promise<FreshDb> {
  let db: FreshDb
  if (kind === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), `stdops-bench-${label}-`))
    db = {
      kind,
      url: `file:${join(dir, 'bench.db')}`,
      drop: async () => rmSync(dir, { recursive: true, force: true }),
    }
  } else {
    const name = `stdops_bench_${label}_${randomBytes(4).toString('hex')}`
    const admin = new pg.Client({ connectionString: PG_BASE_URL })
    await admin.connect()
    await admin.query(`CREATE DATABASE ${name}`)
    await admin.end()
    const u = new URL(PG_BASE_URL)
    u.pathname = `/${name}`
    db = {
      kind,
      url: u.toString(),
      drop: async () => {
        const c = new pg.Client({ connectionString: PG_BASE_URL })
        await c.connect()
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
        await c.end()
      },
    }
  }
  open.add(db)
  const drop = db.drop
  db.drop = async () => {
    open.delete(db)
    await drop()
  }
  return db
}

export async function dropAllDatabases(): Promise<void> {
  for (const db of [...open]) await db.drop().catch(() => undefined)
}

/** Reads the stdops database directly (polling for the engine and latency sections). */
export interface Reader {
  kind: Kind
  query<T>(text: string, params?: unknown[]): Promise<T[]>
  /** A statement that returns no rows (INSERT, DELETE, BEGIN …). */
  run(text: string, params?: unknown[]): Promise<void>
  close(): Promise<void>
}

export async function openReader(db: FreshDb): Promise<Reader> {
  if (db.kind === 'sqlite') {
    const conn = openSqlite(db.url)
    const cache = new Map<string, ReturnType<typeof conn.prepare>>()
    return {
      kind: 'sqlite',
      query: async <T>(text: string, params: unknown[] = []) => {
        const sql = text.replace(/\$\d+/g, '?')
        let st = cache.get(sql)
        if (!st) {
          st = conn.prepare(sql)
          cache.set(sql, st)
        }
        return (st as unknown as { all(...p: unknown[]): T[] }).all(...params)
      },
      run: async (text: string, params: unknown[] = []) => {
        conn.prepare(text.replace(/\$\d+/g, '?')).run(...params)
      },
      close: async () => {
        conn.close()
      },
    }
  }
  const client = new pg.Client({ connectionString: db.url })
  await client.connect()
  return {
    kind: 'postgresql',
    query: async <T>(text: string, params: unknown[] = []) => (await client.query(text, params)).rows as T[],
    run: async (text: string, params: unknown[] = []) => {
      await client.query(text, params)
    },
    close: () => client.end(),
  }
}
