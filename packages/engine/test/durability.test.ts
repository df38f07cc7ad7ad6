import { createTreeBuilder } from '@stdops/core/testing'
import { createDb, sql } from '@stdops/db'
import { createTestDatabaseUrl } from '@stdops/db/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { createEngine, defineComponent } from '../src/index'
import { TEST_COMPONENTS } from '../src/testing'
import {
  createHarness,
  events,
  type Harness,
  insertTask,
  jobs,
  nodes,
  operate,
  PROVIDER,
  TESTER,
  task,
  waitFor,
  waitForState,
} from './helpers'

/** Each execute waits until the test opens its gate (by call order). */
const gates: Array<{ open: () => void; signal: AbortSignal }> = []
const gate = defineComponent({
  code: 'gate',
  inputs: z.object({}).loose(),
  outputs: z.object({ call: z.number() }),
  async execute(_inputs, ctx) {
    const call = gates.length
    await new Promise<void>((resolve) => gates.push({ open: resolve, signal: ctx.signal }))
    return { status: 'finished', outputs: { call } }
  },
})

let h: Harness
beforeAll(async () => {
  h = await createHarness()
})
afterAll(async () => {
  await h?.close()
})

function oneNode(code: string, data: Record<string, { hook: boolean; value: unknown }> = {}) {
  const b = createTreeBuilder()
  const node = b.activity(code, { data })
  b.chain(b.startId, node, b.endId)
  return { tree: b.build(), node }
}

describe('durability', () => {
  it('a timer survives closing the engine and the database, and fires at its due time after a restart', async () => {
    const { url, drop } = await createTestDatabaseUrl()
    try {
      let db = createDb(url)
      await db.migrate()
      await db.execute(sql`INSERT INTO projects (name, bk_biz_id, created_at) VALUES ('p', 1, ${Date.now()})`)
      let engine = createEngine({ db, pollMs: 50 })
      await engine.startWorker()
      const { tree, node } = oneNode('sleep_timer', { bk_timing: { hook: false, value: 1.5 } })
      const id = await insertTask(db, tree)
      await operate(engine, id, 'start')
      const [timer] = await waitFor('the timer row', async () => {
        const rows = (await jobs(db, id)).filter((j) => j.kind === 'timer')
        return rows.length === 1 ? rows : null
      })
      const dueAt = Number(timer!.due_at)
      expect(timer!.lease_owner).toBeNull() // no worker holds it while it waits
      await engine.stop()
      await db.close()

      db = createDb(url)
      await db.migrate()
      engine = createEngine({ db, pollMs: 50 })
      await engine.startWorker()
      try {
        expect((await nodes(db, id)).get(node)?.state).toBe('RUNNING')
        await waitForState(db, id, 'FINISHED', 10_000)
        const finished = (await nodes(db, id)).get(node)!.finished_at!
        expect(finished).toBeGreaterThanOrEqual(dueAt)
        expect(finished - dueAt).toBeLessThan(1500)
      } finally {
        await engine.stop()
        await db.close()
      }
    } finally {
      await drop()
    }
  })

  it('a result reported under a lease that was taken over is fenced; the node completes once', async () => {
    gates.length = 0
    const a = createEngine({
      db: h.db,
      workerId: 'worker-A',
      components: [gate],
      concurrency: 1,
      pollMs: 50,
      leaseMs: 60_000,
    })
    await a.startWorker()
    const { tree, node } = oneNode('gate')
    const id = await insertTask(h.db, tree)
    await operate(a, id, 'start')
    await waitFor('A runs the node', async () => gates.length === 1)

    // A's lease expires (A hangs); B takes the job over under a new attempt.
    await h.db.execute(sql`UPDATE jobs SET lease_until = 0 WHERE task_id = ${id}`)
    const b = createEngine({
      db: h.db,
      workerId: 'worker-B',
      components: [gate],
      pollMs: 50,
      leaseMs: 60_000,
    })
    await b.startWorker()
    try {
      await waitFor('B runs the node', async () => gates.length === 2)
      const running = (await nodes(h.db, id)).get(node)!
      expect(running).toMatchObject({ state: 'RUNNING', attempt: 2 })

      gates[0]!.open() // A reports late
      const fenced = await waitFor('the fenced result', async () => {
        const rows = await h.db.query<{ worker: string; attempt: number; reason: string; node_id: string }>(
          sql`SELECT worker, attempt, reason, node_id FROM fenced_results WHERE task_id = ${id}`,
        )
        return rows.length > 0 ? rows : null
      })
      expect(fenced).toHaveLength(1)
      expect(fenced[0]).toMatchObject({ worker: 'worker-A', node_id: node })
      expect(Number(fenced[0]!.attempt)).toBe(1)
      expect(fenced[0]!.reason).toMatch(/worker-B/)
      expect((await nodes(h.db, id)).get(node)?.state).toBe('RUNNING')

      gates[1]!.open()
      await waitForState(h.db, id, 'FINISHED')
      const n = (await nodes(h.db, id)).get(node)!
      expect(n.outputs).toEqual({ call: 1 })
      const finishedEvents = (await events(h.db, id)).filter(
        (e) => e.node_id === node && e.state === 'FINISHED',
      )
      expect(finishedEvents).toHaveLength(1)
      const history = await h.db.query<{ attempt: number; state: string; worker: string }>(
        sql`SELECT attempt, state, worker FROM node_histories WHERE task_id = ${id} AND node_id = ${node} ORDER BY attempt`,
      )
      expect(history.map((r) => [Number(r.attempt), r.state, r.worker])).toEqual([
        [1, 'FAILED', 'worker-A'],
        [2, 'FINISHED', 'worker-B'],
      ])
    } finally {
      await a.stop()
      await b.stop()
    }
  })

  it('a component that ignores abort is abandoned after the grace period (its worker slot freed) and its late result ignored', async () => {
    const engine = createEngine({
      db: h.db,
      components: TEST_COMPONENTS,
      concurrency: 1,
      pollMs: 50,
      revokeGraceMs: 300,
    })
    await engine.startWorker()
    try {
      const slow = oneNode('slow_ignore_abort', { ms: { hook: false, value: 2500 } })
      const x = await insertTask(h.db, slow.tree)
      await operate(engine, x, 'start')
      await waitFor('the slow node', async () => (await engine.runningNodes(h.db, x)) === 1)
      const t0 = await operate(engine, x, 'revoke')
      expect((await nodes(h.db, x)).get(slow.node)?.state).toBe('REVOKED')

      // With one slot, another task runs only once the ignoring component was abandoned.
      const other = oneNode('noop')
      const y = await insertTask(h.db, other.tree)
      await operate(engine, y, 'start')
      await waitForState(h.db, y, 'FINISHED', 5000)
      const yStarted = (await nodes(h.db, y)).get(other.node)!.started_at!
      expect(yStarted - t0).toBeGreaterThanOrEqual(250)
      expect(yStarted - t0).toBeLessThan(2000)

      const fenced = await waitFor(
        'the late result to be fenced',
        async () => {
          const rows = await h.db.query<{ reason: string }>(
            sql`SELECT reason FROM fenced_results WHERE task_id = ${x}`,
          )
          return rows.length > 0 ? rows : null
        },
        5000,
      )
      expect(fenced[0]!.reason).toMatch(/job gone/)
      expect((await nodes(h.db, x)).get(slow.node)?.state).toBe('REVOKED')
      expect((await task(h.db, x)).state).toBe('REVOKED')
    } finally {
      await engine.stop()
    }
  })

  it('stop() drains in-flight nodes that end within drainMs', async () => {
    const engine = createEngine({ db: h.db, components: TEST_COMPONENTS, pollMs: 50 })
    await engine.startWorker()
    const { tree, node } = oneNode('sleep_ms', { ms: { hook: false, value: 300 } })
    const id = await insertTask(h.db, tree)
    await operate(engine, id, 'start')
    await waitFor('running', async () => (await engine.runningNodes(h.db, id)) === 1)
    const stopping = engine.stop({ drainMs: 5000 })
    expect(engine.mode).toBe('draining')
    await stopping
    expect(engine.mode).toBe('stopped')
    expect((await nodes(h.db, id)).get(node)?.state).toBe('FINISHED')
    expect((await task(h.db, id)).state).toBe('FINISHED')
  })

  it('stop() releases the leases of what is still running after drainMs; another worker takes it over at once', async () => {
    const first = createEngine({ db: h.db, workerId: 'leaving', components: TEST_COMPONENTS, pollMs: 50 })
    await first.startWorker()
    const { tree, node } = oneNode('sleep_ms', { ms: { hook: false, value: 3000 } })
    const id = await insertTask(h.db, tree)
    await operate(first, id, 'start')
    await waitFor('running', async () => (await first.runningNodes(h.db, id)) === 1)
    const t0 = Date.now()
    await first.stop({ drainMs: 100 })
    expect(Date.now() - t0).toBeLessThan(1000)
    const [job] = await jobs(h.db, id)
    expect(job).toMatchObject({ lease_owner: null, lease_until: null })

    const second = createEngine({
      db: h.db,
      workerId: 'taking-over',
      components: TEST_COMPONENTS,
      pollMs: 50,
    })
    await second.startWorker()
    try {
      await waitFor('attempt 2', async () => (await nodes(h.db, id)).get(node)?.attempt === 2, 2000)
      await waitForState(h.db, id, 'FINISHED', 6000)
    } finally {
      await second.stop()
    }
  })

  it.runIf(PROVIDER === 'postgresql')(
    'across processes: a worker on another connection pool is woken by NOTIFY and aborts on a revoke it did not see',
    async () => {
      const workerDb = createDb(h.t.url)
      const api = createEngine({ db: h.db, components: TEST_COMPONENTS }) // API-only: no worker here
      const worker = createEngine({ db: workerDb, components: TEST_COMPONENTS, pollMs: 10_000 })
      await worker.startWorker()
      try {
        await new Promise((r) => setTimeout(r, 200)) // its first idle poll has begun
        const quick = await insertTask(h.db, oneNode('noop').tree)
        const t0 = Date.now()
        await operate(api, quick, 'start')
        await waitForState(h.db, quick, 'FINISHED', 3000)
        expect(Date.now() - t0).toBeLessThan(3000)

        const long = oneNode('sleep_ms', { ms: { hook: false, value: 20_000 } })
        const id = await insertTask(h.db, long.tree)
        await operate(api, id, 'start')
        await waitFor('running', async () => (await api.runningNodes(h.db, id)) === 1, 3000)
        const t1 = Date.now()
        await operate(api, id, 'revoke')
        await waitFor(
          'the aborted result',
          async () => (await h.db.query(sql`SELECT id FROM fenced_results WHERE task_id = ${id}`)).length > 0,
          1000,
        )
        expect(Date.now() - t1).toBeLessThan(1000)
      } finally {
        await worker.stop()
        await workerDb.close()
      }
    },
  )
})

describe('revoke seen by the lease heartbeat', () => {
  it('aborts a running component even when the revoke notification was lost', async () => {
    const hb = createEngine({ db: h.db, components: TEST_COMPONENTS, pollMs: 50, leaseMs: 600 })
    await hb.startWorker()
    try {
      const b = createTreeBuilder()
      const node = b.activity('sleep_ms', { data: { ms: { hook: false, value: 20_000 } } })
      b.chain(b.startId, node, b.endId)
      const id = await insertTask(h.db, b.build())
      await operate(hb, id, 'start')
      await waitFor('running', async () => (await hb.runningNodes(h.db, id)) === 1)
      // Revoke through the protocol, but without its after-commit effects (a lost NOTIFY).
      await h.db.tx((tx) => hb.operateTaskInTx(tx, { ...TESTER, taskId: id, action: 'revoke' }))
      const t0 = Date.now()
      await waitFor(
        'the aborted result',
        async () => (await h.db.query(sql`SELECT id FROM fenced_results WHERE task_id = ${id}`)).length > 0,
        2000,
      )
      expect(Date.now() - t0).toBeLessThan(1000)
      expect((await task(h.db, id)).state).toBe('REVOKED')
    } finally {
      await hb.stop()
    }
  })
})
