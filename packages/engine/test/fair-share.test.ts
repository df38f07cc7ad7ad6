import { parallelTree } from '@stdops/core/testing'
import { sql } from '@stdops/db'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createEngine } from '../src/index'
import { TEST_COMPONENTS } from '../src/testing'
import { createHarness, type Harness, insertTask, TESTER, waitFor } from './helpers'

/**
 * Fair sharing between projects: claims take turns between projects (the one holding the fewest
 * slots first), and no project holds more than its share (projectConcurrency) of a worker's slots.
 */

let h: Harness
beforeEach(async () => {
  h = await createHarness()
  await h.db.execute(sql`INSERT INTO projects (name, bk_biz_id, created_at) VALUES ('q', 2, ${Date.now()})`)
})
afterEach(async () => {
  await h?.close()
})

/** RUNNING nodes per task. */
async function running(taskIds: number[]): Promise<number[]> {
  const out: number[] = []
  for (const id of taskIds) {
    const [row] = await h.db.query<{ n: number | string }>(
      sql`SELECT COUNT(*) AS n FROM node_states WHERE task_id = ${id} AND state = 'RUNNING'`,
    )
    out.push(Number(row?.n ?? 0))
  }
  return out
}

async function startIn(projectId: number, tree: unknown, engine: ReturnType<typeof createEngine>) {
  const id = await insertTask(h.db, tree, { projectId })
  await engine.operateTask({ ...TESTER, projectId, taskId: id, action: 'start' })
  return id
}

describe('fair sharing between projects', () => {
  it('one claim takes turns: two projects with 6 waiting branches each get 2 of 4 slots each', async () => {
    const engine = createEngine({ db: h.db, components: TEST_COMPONENTS, pollMs: 50, concurrency: 4 })
    h.engines.push(engine)
    const tree = parallelTree(6, 'sleep_ms', { ms: { hook: false, value: 3000 } })
    // Project 1's task is started first: its branches are due first, yet it gets only half the slots.
    const a = await startIn(1, tree, engine)
    const b = await startIn(2, tree, engine)
    await engine.startWorker()
    const split = await waitFor('4 nodes running', async () => {
      const r = await running([a, b])
      return r[0]! + r[1]! >= 4 ? r : null
    })
    expect(split).toEqual([2, 2])
  })

  it("a project holds at most its share: 3 of 4 slots, the 4th runs the other project's node", async () => {
    const engine = createEngine({
      db: h.db,
      components: TEST_COMPONENTS,
      pollMs: 50,
      concurrency: 4,
      projectConcurrency: 3,
    })
    h.engines.push(engine)
    await engine.startWorker()
    const a = await startIn(1, parallelTree(8, 'sleep_ms', { ms: { hook: false, value: 5000 } }), engine)
    await waitFor('3 of project 1 running', async () => ((await running([a]))[0]! >= 3 ? true : null))
    const b = await startIn(2, parallelTree(1, 'sleep_ms', { ms: { hook: false, value: 5000 } }), engine)
    const split = await waitFor('project 2 running', async () => {
      const r = await running([a, b])
      return r[1]! >= 1 ? r : null
    })
    // Project 1 never took the free slot, though its 5 other branches were due before project 2's.
    expect(split).toEqual([3, 1])
  })
})
