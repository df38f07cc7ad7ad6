import pg from 'pg'
import { describe, expect, it } from 'vitest'
import { createDb, loadMigrations, openSqlite, providerOf, sql } from '../src/index'
import { MIGRATIONS_TABLE_SQL, newMigrationId } from '../src/migrations'
import { createTestDatabaseUrl } from '../src/testing'

/**
 * The churn tables' ids are 64-bit: the migration that widens them keeps every row and id, and
 * ids past 2^31 are stored and read back as numbers on both databases.
 */
const MIGRATION = '20261201130000_bigint_ids'
const PAST_INT32 = 2 ** 31 + 10

/** Applies the migrations before MIGRATION by hand, recorded as the server records them. */
async function migrateUpTo(url: string, statements: string[]): Promise<void> {
  const provider = providerOf(url)
  const before = loadMigrations(provider).filter((m) => m.name < MIGRATION)
  const record = `INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at, finished_at, applied_steps_count)
     VALUES ($1, $2, $3, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 1)`
  if (provider === 'sqlite') {
    const conn = openSqlite(url)
    conn.exec(MIGRATIONS_TABLE_SQL.sqlite)
    for (const m of before) {
      conn.exec(m.sql)
      conn.prepare(record.replace(/\$\d/g, '?')).run(newMigrationId(), m.checksum, m.name)
    }
    for (const s of statements) conn.exec(s)
    conn.close()
    return
  }
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  await client.query(MIGRATIONS_TABLE_SQL.postgresql)
  for (const m of before) {
    await client.query(m.sql)
    await client.query(record, [newMigrationId(), m.checksum, m.name])
  }
  for (const s of statements) await client.query(s)
  await client.end()
}

describe('64-bit ids on jobs, task_events, node_histories', () => {
  it('the migration keeps every row and id; ids past 2^31 are stored and read as numbers', async () => {
    const { url, drop } = await createTestDatabaseUrl()
    try {
      await migrateUpTo(url, [
        `INSERT INTO projects (id, name, bk_biz_id, created_at) VALUES (1, 'p', 1, 1)`,
        `INSERT INTO tasks (id, project_id, name, creator, state, pipeline_tree, created_at) VALUES (7, 1, 't', 'u', 'RUNNING', '{}', 1)`,
        `INSERT INTO jobs (id, task_id, node_id, kind, due_at, attempts, created_at) VALUES (41, 7, 'n1', 'node', 5, 2, 1)`,
        `INSERT INTO task_events (id, task_id, seq, type, created_at) VALUES (42, 7, 1, 'task_state', 1)`,
        `INSERT INTO node_histories (id, task_id, node_id, loop, attempt, state, started_at) VALUES (43, 7, 'n1', 1, 1, 'RUNNING', 1)`,
        `INSERT INTO fenced_results (job_id, task_id, node_id, worker, attempt, reason, created_at) VALUES (41, 7, 'n1', 'w', 1, 'r', 1)`,
      ])
      const db = createDb(url)
      try {
        expect(await db.migrate()).toContain(MIGRATION)
        expect(await db.query(sql`SELECT id, node_id, due_at, attempts FROM jobs`)).toEqual([
          { id: 41, node_id: 'n1', due_at: 5, attempts: 2 },
        ])
        expect(await db.query(sql`SELECT id, seq FROM task_events`)).toEqual([{ id: 42, seq: 1 }])
        expect(await db.query(sql`SELECT id, state FROM node_histories`)).toEqual([
          { id: 43, state: 'RUNNING' },
        ])
        expect(await db.query(sql`SELECT job_id FROM fenced_results`)).toEqual([{ job_id: 41 }])

        if (db.provider === 'postgresql') {
          const types = await db.query<{ table_name: string; column_name: string; data_type: string }>(
            sql`SELECT table_name, column_name, data_type FROM information_schema.columns
                WHERE table_schema = current_schema() AND ((column_name = 'id' AND table_name IN ('jobs', 'task_events', 'node_histories'))
                   OR (table_name = 'fenced_results' AND column_name = 'job_id'))
                ORDER BY table_name, column_name`,
          )
          expect(types.map((t) => t.data_type)).toEqual(['bigint', 'bigint', 'bigint', 'bigint'])
          // The sequences go past 2^31 too.
          for (const seq of ['jobs_id_seq', 'task_events_id_seq', 'node_histories_id_seq']) {
            await db.query(sql`SELECT setval(${seq}, ${PAST_INT32})`)
          }
        } else {
          // SQLite: the next id follows the largest one, whatever its size.
          await db.execute(sql`INSERT INTO jobs (id, task_id, node_id, kind, due_at, attempts, created_at)
                               VALUES (${PAST_INT32}, 7, 'big', 'node', 5, 0, 1)`)
          await db.execute(sql`DELETE FROM jobs WHERE id = ${PAST_INT32}`)
          await db.execute(
            sql`INSERT INTO task_events (id, task_id, seq, type, created_at) VALUES (${PAST_INT32}, 7, 99, 'x', 1)`,
          )
          await db.execute(sql`INSERT INTO node_histories (id, task_id, node_id, loop, attempt, state, started_at)
                               VALUES (${PAST_INT32}, 7, 'big', 1, 1, 'RUNNING', 1)`)
        }
        const [job] = await db.query<{ id: number }>(
          sql`INSERT INTO jobs (task_id, node_id, kind, due_at, attempts, created_at) VALUES (7, 'n2', 'node', 5, 0, 1) RETURNING id`,
        )
        expect(job!.id).toBe(PAST_INT32 + 1)
        const [event] = await db.query<{ id: number }>(
          sql`INSERT INTO task_events (task_id, seq, type, created_at) VALUES (7, 100, 'y', 1) RETURNING id`,
        )
        expect(event!.id).toBe(PAST_INT32 + 1)
        const [history] = await db.query<{ id: number }>(
          sql`INSERT INTO node_histories (task_id, node_id, loop, attempt, state, started_at) VALUES (7, 'n2', 1, 1, 'RUNNING', 1) RETURNING id`,
        )
        expect(history!.id).toBe(PAST_INT32 + 1)
        await db.execute(sql`INSERT INTO fenced_results (job_id, task_id, node_id, worker, attempt, reason, created_at)
                             VALUES (${job!.id}, 7, 'n2', 'w', 1, 'r', 1)`)
        expect(await db.query(sql`SELECT job_id FROM fenced_results ORDER BY id`)).toEqual([
          { job_id: 41 },
          { job_id: PAST_INT32 + 1 },
        ])
      } finally {
        await db.close()
      }
    } finally {
      await drop()
    }
  })
})
