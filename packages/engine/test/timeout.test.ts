import { linearTree } from '@stdops/core/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Engine } from '../src/index'
import { createHarness, type Harness, insertTask, nodes, operate, waitFor } from './helpers'

let h: Harness
let engine: Engine

beforeAll(async () => {
  h = await createHarness()
  engine = await h.engine({ revokeGraceMs: 10_000 })
})
afterAll(async () => {
  await h?.close()
})

/** A one-activity tree whose activity has `timeout` seconds. */
function treeWithTimeout(code: string, ms: number, timeoutS: number) {
  const tree = linearTree(1, code, { ms: { hook: false, value: ms } }) as {
    activities: Record<string, Record<string, unknown>>
  }
  const act = Object.values(tree.activities)[0]!
  act.timeout = timeoutS
  return { tree, nodeId: act.id as string }
}

describe("an activity's timeout", () => {
  it.each([
    ['a component that honours its signal', 'sleep_ms'],
    ['a component that ignores its signal', 'slow_ignore_abort'],
  ])('fails the node at the timeout: %s', async (_what, code) => {
    const { tree, nodeId } = treeWithTimeout(code, 8_000, 0.3)
    const id = await insertTask(h.db, tree)
    const started = Date.now()
    await operate(engine, id, 'start')
    const node = await waitFor('the node to fail', async () => {
      const n = (await nodes(h.db, id)).get(nodeId)
      return n?.state === 'FAILED' ? n : undefined
    })
    expect(node.error).toContain('timed out after 0.3 s')
    expect(Date.now() - started).toBeLessThan(3_000)
  })

  it('lets an activity that ends in time finish', async () => {
    const { tree, nodeId } = treeWithTimeout('sleep_ms', 50, 5)
    const id = await insertTask(h.db, tree)
    await operate(engine, id, 'start')
    const node = await waitFor('the node to finish', async () => {
      const n = (await nodes(h.db, id)).get(nodeId)
      return n?.state === 'FINISHED' ? n : undefined
    })
    expect(node.error).toBeNull()
  })
})
