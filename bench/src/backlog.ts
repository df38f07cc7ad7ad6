/**
 * The backlog a claim must not slow down with: 100,000 waiting jobs put straight into the
 * database as the engine leaves them, half node jobs held by a pause (`held`, due time moved ahead) and half
 * `sleep_timer` timers due in an hour, spread over 1,000 SUSPENDED tasks of the bench's project.
 * Also EXPLAINs the worker's claim with that backlog in place.
 */

import { claimStatement, HELD_OFFSET } from '../../packages/engine/src/store/jobs'
import type { Kind, Reader } from './lib/db'

export const BACKLOG_TASKS = 1000
/** Per task: this many held node jobs and as many future timers. */
const PER_TASK = 50
export const BACKLOG_JOBS = BACKLOG_TASKS * PER_TASK * 2
const NAME = 'bench backlog'

export async function insertBacklog(reader: Reader): Promise<void> {
  const now = Date.now()
  const [p] = await reader.query<{ id: number }>('SELECT MIN(id) AS id FROM projects')
  const count = (n: number) =>
    `WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < ${n})`
  await reader.run(
    `${count(BACKLOG_TASKS)} INSERT INTO tasks (project_id, name, creator, state, pipeline_tree, created_at)
     SELECT $1, $2, 'bench', 'SUSPENDED', '{}', $3 FROM g`,
    [Number(p!.id), NAME, now],
  )
  await reader.run(
    `${count(PER_TASK)} INSERT INTO jobs (task_id, node_id, kind, due_at, attempts, created_at, held)
     SELECT t.id, 'held-' || g.x, 'node', $1, 0, $2, true FROM tasks t, g WHERE t.name = $3`,
    [now - 60_000 + HELD_OFFSET, now, NAME],
  )
  await reader.run(
    `${count(PER_TASK)} INSERT INTO jobs (task_id, node_id, kind, due_at, attempts, created_at, held)
     SELECT t.id, 'timer-' || g.x, 'timer', $1, 0, $2, false FROM tasks t, g WHERE t.name = $3`,
    [now + 3_600_000, now, NAME],
  )
  if (reader.kind === 'postgresql') await reader.run('ANALYZE jobs')
  else await reader.run('ANALYZE')
}

export async function removeBacklog(reader: Reader): Promise<void> {
  await reader.run('DELETE FROM jobs WHERE task_id IN (SELECT id FROM tasks WHERE name = $1)', [NAME])
  await reader.run('DELETE FROM tasks WHERE name = $1', [NAME])
}

/** The claim a worker with 32 free slots runs, EXPLAINed (PostgreSQL: executed and rolled back). */
export async function explainClaim(reader: Reader, kind: Kind): Promise<string[]> {
  const { text, values } = claimStatement(kind, 'bench-explain', Date.now(), 30_000, 32).compile(kind)
  if (kind === 'postgresql') {
    await reader.run('BEGIN')
    try {
      const rows = await reader.query<{ 'QUERY PLAN': string }>(
        `EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) ${text}`,
        values,
      )
      return rows.map((r) => r['QUERY PLAN'])
    } finally {
      await reader.run('ROLLBACK')
    }
  }
  const rows = await reader.query<{ id: number; parent: number; detail: string }>(
    `EXPLAIN QUERY PLAN ${text}`,
    values,
  )
  const depth = new Map<number, number>([[0, -1]])
  return rows.map((r) => {
    const d = (depth.get(r.parent) ?? 0) + 1
    depth.set(r.id, d)
    return `${'  '.repeat(d)}${r.detail}`
  })
}
