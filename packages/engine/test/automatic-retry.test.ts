import { createTreeBuilder } from '@stdops/core/testing'
import { sql } from '@stdops/db'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createHarness,
  type Harness,
  insertTask,
  jobs,
  nodes,
  operate,
  waitFor,
  waitForState,
} from './helpers'

let h: Harness

beforeAll(async () => {
  h = await createHarness()
})
afterAll(async () => {
  await h?.close()
})

async function attempts(taskId: number, nodeId: string) {
  const rows = await h.db.query<Record<string, unknown>>(
    sql`SELECT attempt, state, retry_kind, error, started_at, finished_at FROM node_histories
        WHERE task_id = ${taskId} AND node_id = ${nodeId} ORDER BY id`,
  )
  return rows.map((r) => ({
    attempt: Number(r.attempt),
    state: r.state as string,
    retry_kind: r.retry_kind as string | null,
    error: r.error as string | null,
    started_at: Number(r.started_at),
    finished_at: r.finished_at === null ? null : Number(r.finished_at),
  }))
}

async function nodeRow(taskId: number, nodeId: string) {
  const [r] = await h.db.query<Record<string, unknown>>(
    sql`SELECT state, wait, retry, auto_retries, skip, error FROM node_states WHERE task_id = ${taskId} AND node_id = ${nodeId}`,
  )
  return {
    state: r?.state,
    wait: r?.wait ?? null,
    retry: Number(r?.retry),
    auto_retries: Number(r?.auto_retries),
    skip: Boolean(r?.skip),
    error: r?.error ?? null,
  }
}

function flakyTree(failures: number, autoRetry: Record<string, unknown>) {
  const b = createTreeBuilder()
  const f = b.activity('flaky', {
    data: { failures: { hook: false, value: failures } },
    extra: { auto_retry: autoRetry },
  })
  b.chain(b.startId, f, b.endId)
  return { tree: b.build(), f }
}

describe('auto_retry', () => {
  it('times 2 on a component that fails twice then succeeds: FINISHED, two automatic attempts, interval kept', async () => {
    const engine = await h.engine()
    const { tree, f } = flakyTree(2, { enable: true, interval: 1, times: 2 })
    const id = await insertTask(h.db, tree)
    await operate(engine, id, 'start')
    // Waiting in its interval, the node shows RUNNING (not FAILED) with a job due later.
    await waitFor(
      'the first failure',
      async () => (await attempts(id, f)).length === 1 && (await attempts(id, f))[0]!.finished_at !== null,
    )
    const waiting = await nodeRow(id, f)
    expect(waiting).toMatchObject({ state: 'RUNNING', wait: 'retry' })
    const due = (await jobs(h.db, id)).find((j) => j.node_id === f)
    expect(Number(due!.due_at)).toBeGreaterThan(Date.now())
    await waitForState(h.db, id, 'FINISHED', 15_000)
    const list = await attempts(id, f)
    expect(list.map((a) => [a.attempt, a.state, a.retry_kind])).toEqual([
      [1, 'FAILED', null],
      [2, 'FAILED', 'automatic'],
      [3, 'FINISHED', 'automatic'],
    ])
    expect(list[1]!.started_at - list[0]!.finished_at!).toBeGreaterThanOrEqual(1000)
    expect(list[2]!.started_at - list[1]!.finished_at!).toBeGreaterThanOrEqual(1000)
    expect(await nodeRow(id, f)).toMatchObject({ state: 'FINISHED', retry: 2, auto_retries: 2 })
  })

  it('with no automatic retry left the node stays FAILED', async () => {
    const engine = await h.engine()
    const { tree, f } = flakyTree(5, { enable: true, interval: 0, times: 1 })
    const id = await insertTask(h.db, tree)
    await operate(engine, id, 'start')
    await waitFor('FAILED', async () => (await nodeRow(id, f)).state === 'FAILED')
    expect((await attempts(id, f)).map((a) => a.retry_kind)).toEqual([null, 'automatic'])
    expect(await jobs(h.db, id)).toEqual([])
    await operate(engine, id, 'revoke')
  })

  it('a restart during the interval still retries on time: the interval is a job row', async () => {
    const first = await h.engine()
    const { tree, f } = flakyTree(1, { enable: true, interval: 2, times: 1 })
    const id = await insertTask(h.db, tree)
    await operate(first, id, 'start')
    await waitFor('the first failure', async () => (await nodeRow(id, f)).wait === 'retry')
    const due = Number((await jobs(h.db, id)).find((j) => j.node_id === f)!.due_at)
    await first.stop()
    const second = await h.engine()
    await waitForState(h.db, id, 'FINISHED', 15_000)
    const retried = (await attempts(id, f))[1]!
    expect(retried.retry_kind).toBe('automatic')
    expect(retried.started_at).toBeGreaterThanOrEqual(due)
    // On time: well within a poll or two of its due time, even on a loaded machine.
    expect(retried.started_at - due).toBeLessThan(3000)
    await second.stop()
  })
})

describe('timeout_config', () => {
  function slowTree(action: string, extra: Record<string, unknown> = {}) {
    const b = createTreeBuilder()
    const slow = b.activity('sleep_ms', {
      data: { ms: { hook: false, value: 20_000 } },
      extra: { timeout_config: { enable: true, seconds: 0.5, action }, ...extra },
    })
    const after = b.activity('noop')
    b.chain(b.startId, slow, after, b.endId)
    return { tree: b.build(), slow, after }
  }

  it('forced_fail: a run longer than the limit is aborted and FAILED, with no automatic retry', async () => {
    const engine = await h.engine()
    const { tree, slow } = slowTree('forced_fail', { auto_retry: { enable: true, interval: 0, times: 3 } })
    const id = await insertTask(h.db, tree)
    await operate(engine, id, 'start')
    await waitFor('FAILED', async () => (await nodeRow(id, slow)).state === 'FAILED')
    expect((await nodeRow(id, slow)).error).toMatch(/timed out after 0.5 s/)
    expect(await attempts(id, slow)).toHaveLength(1)
    await operate(engine, id, 'revoke')
  })

  it('forced_fail_and_skip: the node is failed, then skipped, and the run goes on', async () => {
    const engine = await h.engine()
    const { tree, slow, after } = slowTree('forced_fail_and_skip')
    const id = await insertTask(h.db, tree)
    await operate(engine, id, 'start')
    await waitForState(h.db, id, 'FINISHED')
    expect(await nodeRow(id, slow)).toMatchObject({ state: 'FINISHED', skip: true })
    expect((await nodes(h.db, id)).get(after)?.state).toBe('FINISHED')
    const log = await h.db.query<{ log: string }>(
      sql`SELECT log FROM node_histories WHERE task_id = ${id} AND node_id = ${slow}`,
    )
    expect(log[0]!.log).toMatch(/timed out after 0.5 s[\s\S]*skipped: timeout_config forced_fail_and_skip/)
  })
})
