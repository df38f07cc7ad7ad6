import { createPostgresDb } from './postgres'
import { createSqliteDb, type SqliteOptions } from './sqlite'
import type { Db, Provider } from './types'

export type { PrismaClient } from './generated/sqlite/client'
export { loadMigrations } from './migrations'
export { chunkRows, empty, join, MAX_BOUND_PARAMETERS, parameterCount, Sql, sql } from './sql'
export {
  GROUP_COMMIT_MAX_MS,
  GROUP_COMMIT_MAX_TRANSACTIONS,
  openSqlite,
  SQLITE_PRAGMAS,
  type SqliteOptions,
  sqlitePath,
} from './sqlite'
export type { Db, Executor, Provider, Row } from './types'

export const DEFAULT_DATABASE_URL = 'file:./data/stdops.db'

export function providerOf(url: string): Provider {
  if (/^postgres(ql)?:\/\//.test(url)) return 'postgresql'
  if (url.startsWith('file:') || url === ':memory:') return 'sqlite'
  throw new Error(
    `DATABASE_URL must start with file: (SQLite) or postgresql:// (PostgreSQL), got ${redactUrl(url)}`,
  )
}

/** A URL fit for logs: the password replaced. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:/@]+):[^@/]*@/, '//$1:***@')
}

export type MigratableDb = Db & { migrate(): Promise<string[]> }

export interface DbOptions extends SqliteOptions {
  /** PostgreSQL connections in the pool. */
  poolSize?: number
}

/** Opens the database the URL names: a SQLite file for `file:…`, PostgreSQL for `postgresql://…`. */
export function createDb(url: string, opts: DbOptions = {}): MigratableDb {
  return providerOf(url) === 'postgresql' ? createPostgresDb(url, opts) : createSqliteDb(url, opts)
}
