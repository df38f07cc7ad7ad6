import { createHash, randomUUID } from 'node:crypto'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Provider } from './types'

export interface Migration {
  name: string
  sql: string
  checksum: string
}

/**
 * Where the committed migrations are: `prisma/` beside this file's folder in the sources
 * (packages/db/src → packages/db/prisma), or `prisma/` beside the compiled server's bundle,
 * which the build copies there (apps/api/dist/prisma).
 */
function migrationsDir(provider: Provider): string {
  const here = dirname(fileURLToPath(import.meta.url))
  const candidates = [join(here, 'prisma'), join(here, '..', 'prisma')].map((d) =>
    join(d, provider, 'migrations'),
  )
  const found = candidates.find((d) => existsSync(d))
  if (!found) throw new Error(`no ${provider} migrations found (looked in ${candidates.join(', ')})`)
  return found
}

/** The committed migrations of one provider, in order (Prisma's folder layout). */
export function loadMigrations(provider: Provider): Migration[] {
  const dir = migrationsDir(provider)
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(dir, d.name, 'migration.sql')))
    .map((d) => d.name)
    .sort()
    .map((name) => {
      const sql = readFileSync(join(dir, name, 'migration.sql'), 'utf8')
      return { name, sql, checksum: createHash('sha256').update(sql).digest('hex') }
    })
}

/** Prisma's bookkeeping table, so that `prisma migrate deploy` elsewhere agrees with us. */
export const MIGRATIONS_TABLE_SQL = {
  sqlite: `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id" TEXT PRIMARY KEY NOT NULL, "checksum" TEXT NOT NULL, "finished_at" DATETIME,
    "migration_name" TEXT NOT NULL, "logs" TEXT, "rolled_back_at" DATETIME,
    "started_at" DATETIME NOT NULL DEFAULT current_timestamp, "applied_steps_count" INTEGER UNSIGNED NOT NULL DEFAULT 0)`,
  postgresql: `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id" VARCHAR(36) PRIMARY KEY NOT NULL, "checksum" VARCHAR(64) NOT NULL, "finished_at" TIMESTAMPTZ,
    "migration_name" VARCHAR(255) NOT NULL, "logs" TEXT, "rolled_back_at" TIMESTAMPTZ,
    "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(), "applied_steps_count" INTEGER NOT NULL DEFAULT 0)`,
} as const

export function newMigrationId(): string {
  return randomUUID()
}
