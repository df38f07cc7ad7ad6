import type { PipelineTreeInput } from '@stdops/core'
import { createTreeBuilder } from '@stdops/core/testing'
import { type MigratableDb, sql } from '@stdops/db'
import { createTestDatabaseUrl } from '@stdops/db/testing'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { authHeader, esb, type Identity, waitFor } from './harness'
import {
  type Child,
  count,
  isPostgres,
  killAll,
  openAndBootstrap,
  type SlowServer,
  serverEnv,
  sleep,
  startProcess,
  startSlowServer,
  stopProcess,
} from './procs'

/**
 * The engine across real processes (issue 3, "Tests"): `stdops-server serve`,
 * `serve --no-worker` and `worker` spawned over one database. Several workers, a worker killed with
 * SIGKILL and one frozen past its lease, a full restart under a pending timer, SIGTERM draining.
 * Several worker processes need PostgreSQL; the single-process tests also run on SQLite.
 *
 * Worker leases are 30 s (the engine's default; there is no setting for it), so the crash and fence
 * tests each wait about that long for a lease to expire.
 */

const pg = isPostgres()

interface World {
  dbUrl: string
  db: MigratableDb
  id: Identity
  slow: SlowServer
  drop(): Promise<void>
}

let world: World | null = null

async function openWorld(): Promise<World> {
  const { url, drop } = await createTestDatabaseUrl()
  const { db, id } = await openAndBootstrap(url)
  const slow = await startSlowServer()
  world = { dbUrl: url, db, id, slow, drop }
  return world
}

afterEach(async () => {
  await killAll()
  if (world) {
    const w = world
    world = null
    await w.slow.close()
    await w.db.close()
    await w.drop()
  }
})

afterAll(async () => {
  await killAll()
})

/** Legacy calls against an API process. */
function client(api: Child, id: Identity) {
  return {
    post: (name: string, body: Record<string, unknown>) =>
      esb(api.url!, name, {
        method: 'POST',
        body: { bk_biz_id: id.bkBizId, ...body },
        headers: authHeader(id),
      }),
  }
}

async function createAndStart(api: Child, id: Identity, tree: unknown): Promise<number> {
  const c = client(api, id)
  const t = await c.post('create_template', { name: 'processes', pipeline_tree: tree })
  expect(t.body.code, JSON.stringify(t.body)).toBe(0)
  const r = await c.post('create_and_start_task', {
    template_id: (t.body.data as { template_id: number }).template_id,
    name: 'run',
  })
  expect(r.body.code, JSON.stringify(r.body)).toBe(0)
  return (r.body.data as { task_id: number }).task_id
}

/** These servers' tasks call an HTTP server of the test's on 127.0.0.1, which must be allowed. */
const LOCAL_CALLS = { STDOPS_OUTBOUND_ALLOW: '127.0.0.1' }

const httpData = (url: string) => ({
  bk_http_request_method: { hook: false, value: 'GET' },
  bk_http_request_url: { hook: false, value: url },
  bk_http_timeout: { hook: false, value: 60 },
})

async function taskRow(db: MigratableDb, taskId: number) {
  const [row] = await db.query<{ state: string; finished_at: number | null }>(
    sql`SELECT state, finished_at FROM tasks WHERE id = ${taskId}`,
  )
  return row
}

async function waitForState(db: MigratableDb, taskId: number, state: string, timeoutMs: number) {
  return waitFor(
    async () => {
      const row = await taskRow(db, taskId)
      return row?.state === state ? row : undefined
    },
    timeoutMs,
    100,
  )
}

interface History {
  node_id: string
  loop: number
  attempt: number
  state: string
  worker: string
  error: string | null
  started_at: number
  finished_at: number | null
}

async function histories(db: MigratableDb, taskId: number): Promise<History[]> {
  const rows = await db.query<History>(
    sql`SELECT node_id, loop, attempt, state, worker, error, started_at, finished_at FROM node_histories
        WHERE task_id = ${taskId} ORDER BY id`,
  )
  return rows.map((r) => ({
    ...r,
    loop: Number(r.loop),
    attempt: Number(r.attempt),
    started_at: Number(r.started_at),
    finished_at: r.finished_at === null ? null : Number(r.finished_at),
  }))
}

async function nodeStates(db: MigratableDb, taskId: number) {
  const rows = await db.query<{
    node_id: string
    state: string
    attempt: number
    started_at: number | null
    finished_at: number | null
  }>(sql`SELECT node_id, state, attempt, started_at, finished_at FROM node_states WHERE task_id = ${taskId}`)
  return new Map(
    rows.map((r) => [
      r.node_id,
      {
        state: r.state,
        attempt: Number(r.attempt),
        startedAt: r.started_at === null ? null : Number(r.started_at),
        finishedAt: r.finished_at === null ? null : Number(r.finished_at),
      },
    ]),
  )
}

/**
 * No node lost and no completion applied twice: every node of the tree FINISHED, with exactly one
 * FINISHED history row, one FINISHED event, and no history row left open.
 */
async function expectEachNodeCompletedOnce(db: MigratableDb, taskId: number, nodeIds: string[]) {
  const states = await nodeStates(db, taskId)
  const hist = await histories(db, taskId)
  const events = await db.query<{ node_id: string; state: string }>(
    sql`SELECT node_id, state FROM task_events WHERE task_id = ${taskId} AND type = 'node_state' ORDER BY seq`,
  )
  expect(states.size).toBe(nodeIds.length)
  for (const nodeId of nodeIds) {
    expect(states.get(nodeId)?.state, nodeId).toBe('FINISHED')
    const mine = hist.filter((x) => x.node_id === nodeId)
    expect(
      mine.filter((x) => x.state === 'FINISHED'),
      `${nodeId}: ${JSON.stringify(mine)}`,
    ).toHaveLength(1)
    expect(
      mine.filter((x) => x.finished_at === null),
      nodeId,
    ).toHaveLength(0)
    expect(
      events.filter((e) => e.node_id === nodeId && e.state === 'FINISHED'),
      nodeId,
    ).toHaveLength(1)
  }
  expect(await count(db, sql`SELECT COUNT(*) AS n FROM jobs WHERE task_id = ${taskId}`)).toBe(0)
}

const allNodeIds = (tree: PipelineTreeInput) => [
  tree.start_event.id,
  tree.end_event.id,
  ...Object.keys(tree.activities ?? {}),
  ...Object.keys(tree.gateways ?? {}),
]

describe.skipIf(!pg)('several worker processes on one PostgreSQL database', () => {
  it('three worker processes run a 200-branch parallel task: every node executes exactly once, and the task finishes', async () => {
    const w = await openWorld()
    const env = serverEnv(w.dbUrl, LOCAL_CALLS)
    const [api, ...workers] = await Promise.all([
      startProcess('api', env),
      startProcess('worker', env),
      startProcess('worker', env),
      startProcess('worker', env),
    ])
    const b = createTreeBuilder()
    const fork = b.gateway('ParallelGateway')
    const join = b.gateway('ConvergeGateway')
    b.flow(b.startId, fork)
    const branches: string[] = []
    for (let i = 0; i < 200; i++) {
      const act = b.activity('bk_http_request', {
        name: `branch ${i}`,
        data: httpData(`${w.slow.url}?n=${i}&ms=40`),
      })
      branches.push(act)
      b.chain(fork, act, join)
    }
    b.flow(join, b.endId)
    const tree = b.build()

    const taskId = await createAndStart(api!, w.id, tree)
    await waitForState(w.db, taskId, 'FINISHED', 45_000)

    // exactly once, seen from outside: each branch called the HTTP server once
    expect(w.slow.hits.size).toBe(200)
    expect([...w.slow.hits.values()].every((n) => n === 1)).toBe(true)
    // and from inside: one history row per node, attempt 1, by one of the three workers
    const hist = await histories(w.db, taskId)
    const nodeIds = allNodeIds(tree)
    expect(hist).toHaveLength(nodeIds.length)
    expect(new Set(hist.map((x) => x.node_id)).size).toBe(nodeIds.length)
    const workerIds = new Set(workers.map((c) => c.workerId!))
    const activityRows = hist.filter((x) => branches.includes(x.node_id))
    expect(
      activityRows.every((x) => x.attempt === 1 && x.state === 'FINISHED' && workerIds.has(x.worker)),
    ).toBe(true)
    const perWorker = new Map<string, number>()
    for (const x of activityRows) perWorker.set(x.worker, (perWorker.get(x.worker) ?? 0) + 1)
    // the work was shared (claimed with SKIP LOCKED by more than one process)
    expect(perWorker.size, JSON.stringify([...perWorker])).toBeGreaterThanOrEqual(2)
    await expectEachNodeCompletedOnce(w.db, taskId, nodeIds)
    expect(await count(w.db, sql`SELECT COUNT(*) AS n FROM fenced_results WHERE task_id = ${taskId}`)).toBe(0)

    for (const c of [api!, ...workers]) expect((await stopProcess(c)).code, c.name).toBe(0)
  }, 90_000)

  it('kill -9 of a worker while nodes run and timers wait: a new worker finishes the task, no node lost, none completed twice', async () => {
    const w = await openWorld()
    const env = serverEnv(w.dbUrl, LOCAL_CALLS)
    const [api, first] = await Promise.all([startProcess('api', env), startProcess('worker', env)])
    const b = createTreeBuilder()
    const fork = b.gateway('ParallelGateway')
    const join = b.gateway('ConvergeGateway')
    b.flow(b.startId, fork)
    const calls: string[] = []
    const timers: string[] = []
    for (let i = 0; i < 3; i++) {
      const call = b.activity('bk_http_request', {
        name: `call ${i}`,
        data: httpData(`${w.slow.url}?n=call${i}&first=8000&ms=1000`),
      })
      calls.push(call)
      b.chain(fork, call, join)
      const timer = b.activity('sleep_timer', {
        name: `timer ${i}`,
        data: { bk_timing: { hook: false, value: '4' } },
      })
      timers.push(timer)
      const after = b.activity('set_variables', { data: { variables: { hook: false, value: { i } } } })
      b.chain(fork, timer, after, join)
    }
    const last = b.activity('set_variables', { data: { variables: { hook: false, value: { done: true } } } })
    b.chain(join, last, b.endId)
    const tree = b.build()

    const taskId = await createAndStart(api!, w.id, tree)
    // the calls are running in the first worker and the timers are rows waiting for their due time
    await waitFor(async () => (w.slow.hits.size === 3 ? true : undefined), 20_000)
    await waitFor(
      async () =>
        (await count(
          w.db,
          sql`SELECT COUNT(*) AS n FROM jobs WHERE task_id = ${taskId} AND kind = 'timer'`,
        )) === 3
          ? true
          : undefined,
      10_000,
    )
    const before = await nodeStates(w.db, taskId)
    for (const call of calls) expect(before.get(call)?.state).toBe('RUNNING')
    for (const timer of timers) expect(before.get(timer)?.state).toBe('RUNNING')

    first!.proc.kill('SIGKILL')
    const killed = await first!.exited
    expect(killed.signal).toBe('SIGKILL')

    const second = await startProcess('worker', env)
    // the calls' leases (30 s) must expire before the new worker may take them over
    await waitForState(w.db, taskId, 'FINISHED', 55_000)

    await expectEachNodeCompletedOnce(w.db, taskId, allNodeIds(tree))
    const hist = await histories(w.db, taskId)
    for (const call of calls) {
      // at-least-once: the call was made again, under a new attempt, by the new worker
      const rows = hist.filter((x) => x.node_id === call)
      expect(
        rows.map((x) => [x.attempt, x.state, x.worker]),
        call,
      ).toEqual([
        [1, 'FAILED', first!.workerId],
        [2, 'FINISHED', second.workerId],
      ])
      expect(rows[0]!.error).toMatch(/abandoned/)
    }
    expect([...w.slow.hits.values()]).toEqual([2, 2, 2])
    for (const timer of timers) {
      // a timer is a row, not a process: it was not executed again, it fired in the new worker
      const rows = hist.filter((x) => x.node_id === timer)
      expect(rows).toHaveLength(1)
      expect(rows[0]).toMatchObject({ attempt: 1, state: 'FINISHED', worker: first!.workerId })
      expect(rows[0]!.finished_at! - rows[0]!.started_at).toBeGreaterThanOrEqual(4000)
    }
    // a dead worker reports nothing late: nothing to fence
    expect(await count(w.db, sql`SELECT COUNT(*) AS n FROM fenced_results WHERE task_id = ${taskId}`)).toBe(0)

    expect((await stopProcess(second)).code).toBe(0)
    expect((await stopProcess(api!)).code).toBe(0)
  }, 90_000)

  it('a worker frozen past its lease: another takes the nodes over, and its late results are fenced and recorded', async () => {
    const w = await openWorld()
    const env = serverEnv(w.dbUrl, LOCAL_CALLS)
    const [api, frozen] = await Promise.all([startProcess('api', env), startProcess('worker', env)])
    const b = createTreeBuilder()
    const fork = b.gateway('ParallelGateway')
    const join = b.gateway('ConvergeGateway')
    b.flow(b.startId, fork)
    const calls: string[] = []
    for (let i = 0; i < 2; i++) {
      const call = b.activity('bk_http_request', {
        name: `call ${i}`,
        data: httpData(`${w.slow.url}?n=call${i}&ms=1500`),
      })
      calls.push(call)
      b.chain(fork, call, join)
    }
    b.chain(join, b.endId)
    const tree = b.build()

    const taskId = await createAndStart(api!, w.id, tree)
    await waitFor(async () => (w.slow.hits.size === 2 ? true : undefined), 20_000)
    frozen!.proc.kill('SIGSTOP')
    try {
      const second = await startProcess('worker', env)
      await waitForState(w.db, taskId, 'FINISHED', 55_000)
      expect([...w.slow.hits.values()]).toEqual([2, 2])

      frozen!.proc.kill('SIGCONT')
      // the frozen worker wakes up with its answers: each is refused and recorded, none applied
      const fenced = await waitFor(
        async () => {
          const rows = await w.db.query<{ node_id: string; worker: string; attempt: number; reason: string }>(
            sql`SELECT node_id, worker, attempt, reason FROM fenced_results WHERE task_id = ${taskId} ORDER BY node_id`,
          )
          return rows.length >= 2 ? rows : undefined
        },
        20_000,
        100,
      )
      expect(fenced.map((f) => f.node_id).sort()).toEqual([...calls].sort())
      for (const f of fenced) {
        expect(f.worker).toBe(frozen!.workerId)
        expect(Number(f.attempt)).toBe(1)
        expect(f.reason).toMatch(/job gone|lease taken over/)
      }
      await sleep(500)
      await expectEachNodeCompletedOnce(w.db, taskId, allNodeIds(tree))
      const hist = await histories(w.db, taskId)
      for (const call of calls) {
        expect(hist.filter((x) => x.node_id === call).map((x) => [x.attempt, x.state, x.worker])).toEqual([
          [1, 'FAILED', frozen!.workerId],
          [2, 'FINISHED', second.workerId],
        ])
      }
      expect((await taskRow(w.db, taskId))?.state).toBe('FINISHED')
      for (const c of [frozen!, second, api!]) expect((await stopProcess(c)).code, c.name).toBe(0)
    } finally {
      if (frozen!.alive) frozen!.proc.kill('SIGCONT')
    }
  }, 100_000)
})

describe('restarts and shutdown', () => {
  it('a timer survives a full server restart and fires at its due time', async () => {
    const w = await openWorld()
    const env = serverEnv(w.dbUrl, LOCAL_CALLS)
    const first = await startProcess('serve', env)
    const b = createTreeBuilder()
    const timer = b.activity('sleep_timer', {
      name: 'wait 3 s',
      data: { bk_timing: { hook: false, value: '3' } },
    })
    const after = b.activity('set_variables', {
      data: { variables: { hook: false, value: { woke: 'yes' } } },
    })
    b.chain(b.startId, timer, after, b.endId)
    const tree = b.build()

    const taskId = await createAndStart(first, w.id, tree)
    const due = await waitFor(async () => {
      const [row] = await w.db.query<{ due_at: number }>(
        sql`SELECT due_at FROM jobs WHERE task_id = ${taskId} AND node_id = ${timer} AND kind = 'timer'`,
      )
      return row ? Number(row.due_at) : undefined
    }, 15_000)

    const stopped = await stopProcess(first, 'SIGTERM')
    expect(stopped.code).toBe(0)
    expect(stopped.at).toBeLessThan(due)
    expect((await nodeStates(w.db, taskId)).get(timer)?.state).toBe('RUNNING')

    const second = await startProcess('serve', env)
    const readyAt = Date.now()
    await waitForState(w.db, taskId, 'FINISHED', 20_000)
    const fired = (await nodeStates(w.db, taskId)).get(timer)!.finishedAt!
    // not before its due time, and within about a second of it (or of the restart, had the restart
    // itself taken longer than the timer)
    expect(fired).toBeGreaterThanOrEqual(due)
    expect(fired - Math.max(due, readyAt)).toBeLessThan(1000)
    if (readyAt > due)
      console.warn(`restart took longer than the timer: ready ${readyAt - due} ms after the due time`)
    const rows = (await histories(w.db, taskId)).filter((x) => x.node_id === timer)
    expect(rows).toHaveLength(1)
    expect(rows[0]).toMatchObject({ attempt: 1, state: 'FINISHED' })
    await expectEachNodeCompletedOnce(w.db, taskId, allNodeIds(tree))
    expect((await stopProcess(second)).code).toBe(0)
  }, 60_000)

  /** PostgreSQL: an API process and a worker process; SQLite (one process only): `serve`. */
  async function startTopology(env: Record<string, string>) {
    if (pg) {
      const [api, worker] = await Promise.all([startProcess('api', env), startProcess('worker', env)])
      return { api: api!, worker: worker! }
    }
    const serve = await startProcess('serve', env)
    return { api: serve, worker: serve }
  }

  it('SIGTERM on a worker drains in-flight nodes, starts nothing new, leaves no lease and exits 0', async () => {
    const w = await openWorld()
    const env = serverEnv(w.dbUrl, LOCAL_CALLS)
    const { api, worker } = await startTopology(env)
    const b = createTreeBuilder()
    const fork = b.gateway('ParallelGateway')
    const join = b.gateway('ConvergeGateway')
    b.flow(b.startId, fork)
    const calls: string[] = []
    for (let i = 0; i < 3; i++) {
      const call = b.activity('bk_http_request', {
        name: `call ${i}`,
        data: httpData(`${w.slow.url}?n=call${i}&ms=1500`),
      })
      calls.push(call)
      b.chain(fork, call, join)
    }
    const next = b.activity('set_variables', { data: { variables: { hook: false, value: { next: 1 } } } })
    b.chain(join, next, b.endId)
    const tree = b.build()

    const taskId = await createAndStart(api, w.id, tree)
    await waitFor(async () => (w.slow.hits.size === 3 ? true : undefined), 20_000)
    const termAt = Date.now()
    const exit = await stopProcess(worker, 'SIGTERM')
    expect(exit.code).toBe(0)
    // it waited for the calls to answer (1.5 s after they arrived) before it exited
    const lastArrival = Math.max(...[...w.slow.arrivals.values()].flat())
    expect(exit.at).toBeGreaterThanOrEqual(lastArrival + 1400)
    expect(exit.at - termAt).toBeLessThan(10_000)

    const states = await nodeStates(w.db, taskId)
    const hist = await histories(w.db, taskId)
    for (const call of calls) {
      expect(states.get(call)?.state, call).toBe('FINISHED')
      expect(hist.filter((x) => x.node_id === call).map((x) => [x.attempt, x.state, x.worker])).toEqual([
        [1, 'FINISHED', worker.workerId],
      ])
    }
    // what the drained nodes made due was left for another worker: not started, not leased
    expect(states.get(next)?.state ?? 'READY').toBe('READY')
    expect(await count(w.db, sql`SELECT COUNT(*) AS n FROM jobs WHERE lease_owner IS NOT NULL`)).toBe(0)

    const again = pg ? await startProcess('worker', env) : await startProcess('serve', env)
    await waitForState(w.db, taskId, 'FINISHED', 20_000)
    expect([...w.slow.hits.values()]).toEqual([1, 1, 1])
    await expectEachNodeCompletedOnce(w.db, taskId, allNodeIds(tree))
    expect((await stopProcess(again)).code).toBe(0)
    if (api !== worker) expect((await stopProcess(api)).code).toBe(0)
  }, 60_000)

  it('SIGTERM with nodes still running after STDOPS_DRAIN_MS: leases are released and another worker takes over at once', async () => {
    const w = await openWorld()
    const env = serverEnv(w.dbUrl, { ...LOCAL_CALLS, STDOPS_DRAIN_MS: '500' })
    const { api, worker } = await startTopology(env)
    const b = createTreeBuilder()
    const call = b.activity('bk_http_request', {
      name: 'long call',
      data: httpData(`${w.slow.url}?n=long&ms=8000`),
    })
    b.chain(b.startId, call, b.endId)
    const tree = b.build()

    const taskId = await createAndStart(api, w.id, tree)
    await waitFor(async () => (w.slow.hits.size === 1 ? true : undefined), 20_000)
    const termAt = Date.now()
    const exit = await stopProcess(worker, 'SIGTERM')
    expect(exit.code).toBe(0)
    expect(exit.at - termAt).toBeLessThan(5_000)
    // the lease is given back, not left to expire in 30 s
    const [job] = await w.db.query<{ lease_owner: string | null; lease_until: number | null }>(
      sql`SELECT lease_owner, lease_until FROM jobs WHERE task_id = ${taskId} AND node_id = ${call}`,
    )
    expect(job).toEqual({ lease_owner: null, lease_until: null })

    const restartAt = Date.now()
    const again = pg ? await startProcess('worker', env) : await startProcess('serve', env)
    await waitFor(async () => ((w.slow.hits.get('long') ?? 0) === 2 ? true : undefined), 10_000)
    // taken over as soon as the new worker ran, far sooner than a 30 s lease
    expect(w.slow.arrivals.get('long')![1]! - restartAt).toBeLessThan(10_000)
    await waitForState(w.db, taskId, 'FINISHED', 20_000)
    const rows = (await histories(w.db, taskId)).filter((x) => x.node_id === call)
    expect(rows.map((x) => [x.attempt, x.state, x.worker])).toEqual([
      [1, 'FAILED', worker.workerId],
      [2, 'FINISHED', again.workerId],
    ])
    await expectEachNodeCompletedOnce(w.db, taskId, allNodeIds(tree))
    expect((await stopProcess(again)).code).toBe(0)
    if (api !== worker) expect((await stopProcess(api)).code).toBe(0)
  }, 60_000)
})
