import { createTreeBuilder } from '@stdops/core/testing'
import { sql } from '@stdops/db'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createEngine } from '../src/index'
import { TEST_COMPONENTS } from '../src/testing'
import { createHarness, type Harness, insertTask, operate, waitFor, waitForState } from './helpers'

/**
 * Held jobs: a paused task's node jobs are marked held (their due time moved out of any claim's
 * range); resume releases them; a held job of a RUNNING task is released by the workers' sweep.
 */

let h: Harness
beforeEach(async () => {
  h = await createHarness()
})
afterEach(async () => {
  await h?.close()
})

function twoNodes() {
  const b = createTreeBuilder()
  const first = b.activity('sleep_ms', { data: { ms: { hook: false, value: 600 } } })
  const second = b.activity('noop')
  b.chain(b.startId, first, second, b.endId)
  return { tree: b.build(), first, second }
}

async function heldOf(taskId: number) {
  const rows = await h.db.query<{ node_id: string; held: boolean | number }>(
    sql`SELECT node_id, held FROM jobs WHERE task_id = ${taskId} AND kind = 'node' ORDER BY id`,
  )
  return rows.map((r) => `${r.node_id}:${Boolean(r.held)}`)
}

async function nodeState(taskId: number, nodeId: string) {
  const [row] = await h.db.query<{ state: string }>(
    sql`SELECT state FROM node_states WHERE task_id = ${taskId} AND node_id = ${nodeId}`,
  )
  return row?.state
}

describe('held jobs', () => {
  it('pause holds the node jobs it finds; what a running node schedules during the pause waits unheld; resume releases them and the task finishes', async () => {
    // No worker yet: the first node's job waits, due.
    const engine = createEngine({ db: h.db, components: TEST_COMPONENTS, pollMs: 50 })
    h.engines.push(engine)
    const { tree, first, second } = twoNodes()
    const id = await insertTask(h.db, tree)
    await operate(engine, id, 'start')
    expect(await heldOf(id)).toEqual([`${first}:false`])
    await operate(engine, id, 'pause')
    expect(await heldOf(id)).toEqual([`${first}:true`])
    await operate(engine, id, 'resume')
    expect(await heldOf(id)).toEqual([`${first}:false`])

    await engine.startWorker()
    await waitFor('first node running', async () => (await nodeState(id, first)) === 'RUNNING')
    await operate(engine, id, 'pause')
    // The running node finishes through the pause; what it leads to is scheduled, and claims pass it by.
    await waitFor('first node finished', async () => (await nodeState(id, first)) === 'FINISHED')
    const held = await waitFor('second node scheduled', async () => {
      const rows = await heldOf(id)
      return rows.length === 1 ? rows : null
    })
    expect(held).toEqual([`${second}:false`])
    expect(await nodeState(id, second)).not.toBe('RUNNING')
    await operate(engine, id, 'resume')
    await waitForState(h.db, id, 'FINISHED')
  })

  it("a RUNNING task's held job (held by hand) is released by a worker's sweep and runs", async () => {
    const engine = createEngine({ db: h.db, components: TEST_COMPONENTS, pollMs: 50 })
    h.engines.push(engine)
    const { tree, first } = twoNodes()
    const id = await insertTask(h.db, tree)
    await operate(engine, id, 'start')
    await h.db.execute(
      sql`UPDATE jobs SET held = ${true}, due_at = due_at + ${2 ** 52} WHERE task_id = ${id}`,
    )
    expect(await heldOf(id)).toEqual([`${first}:true`])
    await engine.startWorker()
    await waitForState(h.db, id, 'FINISHED')
  })
})
