import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sql } from '../src/index'
import { createTestDatabase, type TestDatabase } from '../src/testing'

let t: TestDatabase
beforeAll(async () => {
  t = await createTestDatabase()
})
afterAll(async () => {
  await t.drop()
})

/** Columns per table as the Prisma schema declares them (scalar fields, @map applied). */
function schemaColumns(): Map<string, string[]> {
  const base = readFileSync(join(__dirname, '..', 'prisma', 'schema.base.prisma'), 'utf8')
  const out = new Map<string, string[]>()
  for (const m of base.matchAll(/model (\w+) \{([\s\S]*?)\n\}/g)) {
    const body = m[2] ?? ''
    const table = /@@map\("(\w+)"\)/.exec(body)?.[1] ?? ''
    const cols: string[] = []
    for (const line of body.split('\n').map((l) => l.trim())) {
      const f = /^(\w+)\s+(Int|String|Boolean|BigInt)\??(\s|$)/.exec(line)
      if (!f) continue
      cols.push(/@map\("(\w+)"\)/.exec(line)?.[1] ?? f[1]!)
    }
    out.set(table, cols.sort())
  }
  return out
}

async function databaseColumns(table: string): Promise<string[]> {
  const rows =
    t.db.provider === 'sqlite'
      ? await t.db.query<{ name: string }>(sql`SELECT name FROM pragma_table_info(${table})`)
      : await t.db.query<{ name: string }>(
          sql`SELECT column_name AS name FROM information_schema.columns WHERE table_name = ${table} AND table_schema = current_schema()`,
        )
  return rows.map((r) => r.name).sort()
}

describe('database layer', () => {
  it('the committed migration creates exactly the columns the Prisma schema declares', async () => {
    for (const [table, cols] of schemaColumns()) {
      expect(await databaseColumns(table), table).toEqual(cols)
    }
  })

  it('migrating again applies nothing', async () => {
    expect(await t.db.migrate()).toEqual([])
  })

  it('Prisma and raw statements see the same rows', async () => {
    const now = Date.now()
    await t.db.prisma.project.create({ data: { name: 'p', bkBizId: 7, createdAt: BigInt(now) } })
    const rows = await t.db.query<{ name: string; created_at: number }>(
      sql`SELECT name, created_at FROM projects WHERE bk_biz_id = ${7}`,
    )
    expect(rows).toEqual([{ name: 'p', created_at: now }])
  })

  it('a transaction that throws leaves nothing behind', async () => {
    await expect(
      t.db.tx(async (tx) => {
        await tx.execute(sql`INSERT INTO users (username, created_at) VALUES (${'ghost'}, ${Date.now()})`)
        throw new Error('boom')
      }),
    ).rejects.toThrow('boom')
    expect(await t.db.query(sql`SELECT id FROM users WHERE username = ${'ghost'}`)).toEqual([])
  })

  it('afterCommit runs after a commit, never after a rollback, and at once outside a transaction', async () => {
    const seen: string[] = []
    await t.db.tx(async (tx) => {
      await tx.execute(sql`INSERT INTO settings (key, value) VALUES (${'after-commit'}, ${'1'})`)
      tx.afterCommit(() => seen.push('committed'))
      expect(seen).toEqual([])
    })
    expect(seen).toEqual(['committed'])
    await expect(
      t.db.tx(async (tx) => {
        tx.afterCommit(() => seen.push('rolled back'))
        throw new Error('no')
      }),
    ).rejects.toThrow('no')
    t.db.afterCommit(() => seen.push('outside'))
    expect(seen).toEqual(['committed', 'outside'])
  })

  it('values are bound, never spliced into the statement', async () => {
    const evil = "x'); DROP TABLE users; --"
    await t.db.execute(sql`INSERT INTO users (username, created_at) VALUES (${evil}, ${1})`)
    const rows = await t.db.query<{ username: string }>(
      sql`SELECT username FROM users WHERE username = ${evil}`,
    )
    expect(rows).toEqual([{ username: evil }])
  })

  it('concurrent compare-and-set updates: exactly one wins', async () => {
    const p = await t.db.prisma.project.findFirstOrThrow({ where: { bkBizId: 7 } })
    const task = await t.db.prisma.task.create({
      data: { projectId: p.id, name: 't', creator: 'u', state: 'RUNNING', pipelineTree: '{}', createdAt: 1n },
    })
    const results = await Promise.all(
      Array.from({ length: 20 }, () =>
        t.db.tx((tx) =>
          tx.execute(
            sql`UPDATE tasks SET state = 'SUSPENDED', version = version + 1 WHERE id = ${task.id} AND version = ${0}`,
          ),
        ),
      ),
    )
    expect(results.filter((n) => n === 1)).toHaveLength(1)
  })
})
