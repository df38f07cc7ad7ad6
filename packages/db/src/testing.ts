import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { createDb, type MigratableDb, providerOf } from './index'

/**
 * A fresh, migrated database for one test file: a new SQLite file, or, when TEST_DATABASE_URL (or
 * DATABASE_URL) names PostgreSQL, a new database on that server, dropped again by `drop()`.
 */
export interface TestDatabase {
  url: string
  db: MigratableDb
  drop(): Promise<void>
}

export function testDatabaseBaseUrl(): string | undefined {
  const url = process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL
  return url && providerOf(url) === 'postgresql' ? url : undefined
}

export async function createTestDatabaseUrl(): Promise<{ url: string; drop(): Promise<void> }> {
  const pgBase = testDatabaseBaseUrl()
  if (!pgBase) {
    const dir = mkdtempSync(join(tmpdir(), 'stdops-test-'))
    return {
      url: `file:${join(dir, 'test.db')}`,
      drop: async () => rmSync(dir, { recursive: true, force: true }),
    }
  }
  const name = `stdops_t_${randomBytes(6).toString('hex')}`
  const admin = new pg.Client({ connectionString: pgBase })
  await admin.connect()
  await admin.query(`CREATE DATABASE ${name}`)
  await admin.end()
  const u = new URL(pgBase)
  u.pathname = `/${name}`
  return {
    url: u.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: pgBase })
      await c.connect()
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      await c.end()
    },
  }
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const { url, drop } = await createTestDatabaseUrl()
  const db = createDb(url)
  await db.migrate()
  return {
    url,
    db,
    drop: async () => {
      await db.close()
      await drop()
    },
  }
}
