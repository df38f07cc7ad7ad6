import { createTreeBuilder } from '@stdops/core/testing'
import { sql } from '@stdops/db'
import { createTRPCClient, httpLink, httpSubscriptionLink, splitLink } from '@trpc/client'
import { EventSource } from 'eventsource'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { explainWaits } from '../src/services/waiting'
import type { AppRouter } from '../src/trpc/root'
import { sleepTree } from './fixtures'
import { authHeader, type Harness, type Identity, makeIdentity, startHarness, waitFor } from './harness'

function clientFor(h: Harness, id: Identity) {
  const headers = authHeader(id)
  return createTRPCClient<AppRouter>({
    links: [
      splitLink({
        condition: (op) => op.type === 'subscription',
        true: httpSubscriptionLink({
          url: `${h.url}/trpc`,
          EventSource,
          eventSourceOptions: {
            fetch: (input, init) => fetch(input, { ...init, headers: { ...init.headers, ...headers } }),
          },
        }),
        false: httpLink({ url: `${h.url}/trpc`, headers }),
      }),
    ],
  })
}
type Client = ReturnType<typeof clientFor>

/** start → fail → end */
function failTree() {
  const b = createTreeBuilder()
  const bad = b.activity('fail', {
    name: 'breaks',
    data: { message: { hook: false, value: 'broken on purpose' } },
  })
  b.chain(b.startId, bad, b.endId)
  return { tree: b.build(), badId: bad }
}

/** start → pause_node → end */
function approvalTree() {
  const b = createTreeBuilder()
  const gate = b.activity('pause_node', { name: 'approve', data: {} })
  b.chain(b.startId, gate, b.endId)
  return { tree: b.build(), gateId: gate }
}

describe('the console procedures: task search, changes, several at once, waits, projects', () => {
  let h: Harness
  let me: Identity
  let api: Client
  let tpl: { sleep: number; fail: number; approval: number; quick: number }
  const ids = { sleep: '', fail: '', gate: '' }
  const biz = () => ({ bk_biz_id: me.bkBizId })

  const nodeState = async (taskId: number, nodeId: string) => {
    const [row] = await h.deps.db.query<{ state: string }>(
      sql`SELECT state FROM node_states WHERE task_id = ${taskId} AND node_id = ${nodeId}`,
    )
    return row?.state
  }
  const newTask = async (template: number, name: string, start = true) => {
    const { task_id } = await api.task.create.mutate({ ...biz(), template_id: template, name })
    if (start) await api.task.start.mutate({ ...biz(), task_id })
    return task_id
  }

  beforeAll(async () => {
    h = await startHarness()
    me = await makeIdentity(h.deps, { role: 'admin' })
    api = clientFor(h, me)
    const s = sleepTree()
    const f = failTree()
    const a = approvalTree()
    ids.sleep = s.sleepId
    ids.fail = f.badId
    ids.gate = a.gateId
    const create = async (name: string, tree: unknown) =>
      (await api.template.create.mutate({ ...biz(), name, pipeline_tree: tree as Record<string, unknown> }))
        .template_id
    tpl = {
      sleep: await create('sleeps', s.tree),
      fail: await create('fails', f.tree),
      approval: await create('approval', a.tree),
      quick: await create('quick', sleepTree('0').tree),
    }
  })
  afterAll(async () => {
    await h?.close()
  })

  it('task.search pages with filters and counts every displayed state, FAILED included', async () => {
    const created = await newTask(tpl.sleep, 'alpha created', false)
    const running = await newTask(tpl.sleep, 'Alpha running')
    const paused = await newTask(tpl.sleep, 'beta paused')
    await api.task.operate.mutate({ ...biz(), task_id: paused, action: 'pause' })
    const failed = await newTask(tpl.fail, 'gamma failed')
    const finished = await newTask(tpl.quick, 'delta finished')
    await waitFor(async () => ((await nodeState(failed, ids.fail)) === 'FAILED' ? true : undefined))
    await waitFor(async () => {
      const s = await api.task.status.query({ ...biz(), task_id: finished })
      return s.state === 'FINISHED' ? true : undefined
    })

    const all = await api.task.search.query({ ...biz(), limit: 2 })
    expect(all.count).toBe(5)
    expect(all.list.map((t) => t.id)).toEqual([finished, failed]) // newest first, one page
    expect(all.counts).toEqual({ CREATED: 1, RUNNING: 1, SUSPENDED: 1, FINISHED: 1, REVOKED: 0, FAILED: 1 })
    expect(all.list[1]).toMatchObject({
      id: failed,
      name: 'gamma failed',
      state: 'FAILED',
      creator: me.username,
      executor: me.username,
      template_id: tpl.fail,
      template_name: 'fails',
    })
    expect(typeof all.list[1]!.created_at).toBe('number')

    const page2 = await api.task.search.query({ ...biz(), limit: 2, offset: 2 })
    expect(page2.list.map((t) => t.id)).toEqual([paused, running])

    const failedOnly = await api.task.search.query({ ...biz(), states: ['FAILED'] })
    expect(failedOnly.list.map((t) => t.id)).toEqual([failed])
    expect(failedOnly.count).toBe(1)
    // The counts ignore the state filter (they label the state buttons), but follow the others.
    expect(failedOnly.counts.RUNNING).toBe(1)
    const runningOrPaused = await api.task.search.query({ ...biz(), states: ['RUNNING', 'SUSPENDED'] })
    expect(runningOrPaused.list.map((t) => t.id)).toEqual([paused, running])

    const alpha = await api.task.search.query({ ...biz(), text: 'ALPHA' })
    expect(alpha.list.map((t) => t.id)).toEqual([running, created])
    expect(alpha.counts).toMatchObject({ CREATED: 1, RUNNING: 1, FAILED: 0 })
    // No wildcards: a literal part of the name.
    expect((await api.task.search.query({ ...biz(), text: '%' })).count).toBe(0)
    expect((await api.task.search.query({ ...biz(), text: String(paused) })).list.map((t) => t.id)).toContain(
      paused,
    )
    expect((await api.task.search.query({ ...biz(), template_id: tpl.fail })).list.map((t) => t.id)).toEqual([
      failed,
    ])
    expect((await api.task.search.query({ ...biz(), creator: 'nobody' })).count).toBe(0)
    const [first] = (await api.task.search.query({ ...biz(), states: ['CREATED'] })).list
    const around = { created_after: first!.created_at, created_before: first!.created_at }
    expect((await api.task.search.query({ ...biz(), ...around })).list.map((t) => t.id)).toContain(created)
    expect((await api.task.search.query({ ...biz(), created_after: Date.now() + 60_000 })).count).toBe(0)

    for (const id of [running, paused, failed])
      await api.task.operate.mutate({ ...biz(), task_id: id, action: 'revoke' })
  })

  it('task.search refuses bad filters, naming them', async () => {
    await expect(api.task.search.query({ ...biz(), states: ['DONE' as 'FINISHED'] })).rejects.toThrow(
      /states\.0/,
    )
    await expect(api.task.search.query({ ...biz(), limit: 500 })).rejects.toThrow(/limit/)
  })

  it('task.operateMany reports each task: applied, refused by its state, or missing', async () => {
    const a = await newTask(tpl.sleep, 'bulk a')
    const b = await newTask(tpl.sleep, 'bulk b', false)
    const results = await api.task.operateMany.mutate({ ...biz(), task_ids: [a, b, 999999], action: 'pause' })
    expect(results).toEqual([
      { task_id: a, result: true, state: 'SUSPENDED' },
      { task_id: b, result: false, code: 3545000, message: 'task not started' },
      {
        task_id: 999999,
        result: false,
        code: 3540400,
        message: `task[id=999999] does not exist in project(${me.bkBizId})`,
      },
    ])
    const records = await api.task.records.query({ ...biz(), task_id: a })
    expect(records.map((r) => r.operate_type)).toEqual(['create', 'start', 'pause'])
    await expect(
      api.task.operateMany.mutate({ ...biz(), task_ids: [a, a], action: 'resume' }),
    ).rejects.toThrow(/must not repeat an id/)
    // A viewer's bulk operation is refused task by task, and nothing changes.
    const viewer = await makeIdentity(h.deps, { role: 'viewer', projectId: me.projectId })
    const denied = await clientFor(h, viewer).task.operateMany.mutate({
      ...biz(),
      task_ids: [a],
      action: 'revoke',
    })
    expect(denied).toEqual([
      { task_id: a, result: false, code: 3599999, message: expect.stringContaining('permission denied') },
    ])
    expect((await api.task.status.query({ ...biz(), task_id: a })).state).toBe('SUSPENDED')
    await api.task.operate.mutate({ ...biz(), task_id: a, action: 'revoke' })
  })

  it('task.changes sends the current rows and counts, then each change as it commits', async () => {
    const a = await newTask(tpl.sleep, 'watched a')
    const b = await newTask(tpl.sleep, 'watched b', false)
    const got: Array<{
      type: string
      rows?: Array<{ id: number; state: string }>
      counts?: Record<string, number>
    }> = []
    const sub = api.task.changes.subscribe(
      { ...biz(), task_ids: [a, b], text: 'watched' },
      { onData: (m) => got.push(m as (typeof got)[number]) },
    )
    try {
      await waitFor(async () => (got.some((m) => m.type === 'counts') ? true : undefined))
      expect(got[0]).toEqual({
        type: 'rows',
        rows: expect.arrayContaining([expect.objectContaining({ id: a, state: 'RUNNING' })]),
      })
      expect(got[0]!.rows).toHaveLength(2)
      expect(got.find((m) => m.type === 'counts')!.counts).toMatchObject({ RUNNING: 1, CREATED: 1 })
      got.length = 0
      await api.task.operate.mutate({ ...biz(), task_id: a, action: 'pause' })
      await waitFor(async () => (got.some((m) => m.type === 'counts') ? true : undefined))
      expect(got.find((m) => m.type === 'rows')!.rows).toEqual([
        expect.objectContaining({ id: a, state: 'SUSPENDED' }),
      ])
      expect(got.find((m) => m.type === 'counts')!.counts).toMatchObject({
        RUNNING: 0,
        SUSPENDED: 1,
        CREATED: 1,
      })
      // A new task that matches the search moves the counts (the client fetches the page again).
      got.length = 0
      await newTask(tpl.sleep, 'watched c', false)
      await waitFor(async () => (got.some((m) => m.type === 'counts') ? true : undefined))
      expect(got.find((m) => m.type === 'counts')!.counts).toMatchObject({ CREATED: 2 })
    } finally {
      sub.unsubscribe()
    }
    await api.task.operate.mutate({ ...biz(), task_id: a, action: 'revoke' })
  })

  it('task.waits says what each node waits for: a callback, a timer, an operator, a pause', async () => {
    const gate = await newTask(tpl.approval, 'needs approval')
    // RUNNING comes first; the wait for a callback is recorded when the component asks for one.
    const w1 = await waitFor(async () => {
      const w = await api.task.waits.query({ ...biz(), task_id: gate })
      return w.waits[0]?.reason === 'callback' ? w : undefined
    })
    expect(w1).toMatchObject({ task_id: gate, state: 'RUNNING' })
    expect(w1.waits).toEqual([
      {
        node_id: ids.gate,
        name: 'approve',
        reason: 'callback',
        since: expect.any(Number),
        due_at: null,
        error: null,
      },
    ])

    const sleeper = await newTask(tpl.sleep, 'sleeping')
    await waitFor(async () => {
      const w = await api.task.waits.query({ ...biz(), task_id: sleeper })
      return w.waits[0]?.reason === 'timer' ? w : undefined
    }).then((w) => {
      expect(w.waits).toEqual([
        expect.objectContaining({
          node_id: ids.sleep,
          name: 'wait a while',
          reason: 'timer',
          due_at: expect.any(Number),
        }),
      ])
      expect(w.waits[0]!.due_at! - Date.now()).toBeGreaterThan(500_000) // the 600 s sleep
    })

    const broken = await newTask(tpl.fail, 'broken')
    await waitFor(async () => ((await nodeState(broken, ids.fail)) === 'FAILED' ? true : undefined))
    expect((await api.task.waits.query({ ...biz(), task_id: broken })).waits).toEqual([
      expect.objectContaining({ node_id: ids.fail, reason: 'failed', error: 'broken on purpose' }),
    ])

    const done = await newTask(tpl.quick, 'over')
    await waitFor(async () =>
      (await api.task.status.query({ ...biz(), task_id: done })).state === 'FINISHED' ? true : undefined,
    )
    expect(await api.task.waits.query({ ...biz(), task_id: done })).toMatchObject({
      state: 'FINISHED',
      waits: [],
    })
    for (const id of [gate, sleeper, broken])
      await api.task.operate.mutate({ ...biz(), task_id: id, action: 'revoke' })
  })

  it('explainWaits: a paused task holds its due work; unclaimed due work is a backlog; a claimed one runs', () => {
    const base = { pausedAt: 1000, now: 5000, names: { a: 'A', b: 'B', c: 'C' } }
    const nodes = [
      { node_id: 'a', state: 'READY', error: null, started_at: null, finished_at: null },
      { node_id: 'b', state: 'READY', error: null, started_at: null, finished_at: null },
      { node_id: 'c', state: 'RUNNING', error: null, started_at: 4000, finished_at: null },
    ]
    const jobs = [
      { node_id: 'a', kind: 'node', due_at: 2000, lease_owner: null },
      { node_id: 'b', kind: 'node', due_at: 9000, lease_owner: null },
      { node_id: 'c', kind: 'node', due_at: 3000, lease_owner: 'w1' },
    ]
    expect(
      explainWaits({ ...base, taskState: 'SUSPENDED', nodes, jobs }).map((w) => [
        w.node_id,
        w.reason,
        w.since,
      ]),
    ).toEqual([
      ['a', 'task_paused', 1000],
      ['b', 'task_paused', 1000],
      ['c', 'running', 4000],
    ])
    expect(
      explainWaits({ ...base, taskState: 'RUNNING', nodes, jobs }).map((w) => [
        w.node_id,
        w.reason,
        w.since,
        w.due_at,
      ]),
    ).toEqual([
      ['a', 'backlog', 2000, null],
      ['b', 'timer', null, 9000],
      ['c', 'running', 4000, null],
    ])
  })

  it('explainWaits: a node held by a node pause, and a failed node waiting for its automatic retry', () => {
    const base = { pausedAt: null, now: 5000, names: { h: 'H', r: 'R' } }
    const nodes = [
      {
        node_id: 'h',
        state: 'SUSPENDED',
        held: true,
        wait: null,
        error: null,
        started_at: null,
        finished_at: null,
      },
      {
        node_id: 'r',
        state: 'RUNNING',
        held: false,
        wait: 'retry',
        error: 'flaky',
        started_at: 1000,
        finished_at: 2000,
      },
    ]
    const jobs = [{ node_id: 'r', kind: 'node', due_at: 7000, lease_owner: null }]
    expect(explainWaits({ ...base, taskState: 'RUNNING', nodes, jobs })).toEqual([
      { node_id: 'h', name: 'H', reason: 'node_paused', since: null, due_at: null, error: null },
      { node_id: 'r', name: 'R', reason: 'auto_retry', since: 2000, due_at: 7000, error: 'flaky' },
    ])
  })

  it('task.waits names the node the run reached that a node pause holds, until it is resumed', async () => {
    const b = createTreeBuilder()
    const first = b.activity('sleep_timer', {
      name: 'first',
      // Five seconds: time enough, on a loaded machine, to hold the next node and ask before it is reached.
      data: { bk_timing: { hook: false, value: '5' } },
    })
    const held = b.activity('set_variables', {
      name: 'held',
      data: { variables: { hook: false, value: { x: 1 } } },
    })
    b.chain(b.startId, first, held, b.endId)
    const template = (await api.template.create.mutate({ ...biz(), name: 'held', pipeline_tree: b.build() }))
      .template_id
    const taskId = await newTask(template, 'held on the way')
    await api.node.operate.mutate({ ...biz(), task_id: taskId, node_id: held, action: 'pause' })
    // Not reached yet: the timer is what the task waits for, not the held node. The timer's node
    // shows as running until its component has asked for the timer, so wait for that first.
    const before = await waitFor(async () => {
      const r = await api.task.waits.query({ ...biz(), task_id: taskId })
      return r.waits.some((x) => x.reason === 'timer') ? r : undefined
    })
    expect(before.waits.map((x) => [x.name, x.reason])).toEqual([['first', 'timer']])
    const w = await waitFor(async () => {
      const r = await api.task.waits.query({ ...biz(), task_id: taskId })
      return r.waits.some((x) => x.reason === 'node_paused') && r.waits.length === 1 ? r : undefined
    })
    expect(w.waits).toEqual([expect.objectContaining({ node_id: held, name: 'held', reason: 'node_paused' })])
    await api.node.operate.mutate({ ...biz(), task_id: taskId, node_id: held, action: 'resume' })
    await waitFor(async () => {
      const s = await api.task.status.query({ ...biz(), task_id: taskId })
      return s.state === 'FINISHED' ? true : undefined
    })
    expect((await api.task.waits.query({ ...biz(), task_id: taskId })).waits).toEqual([])
  })

  it("console.projects lists the caller's projects with running, failed and paused counts", async () => {
    const other = await makeIdentity(h.deps, { role: 'viewer' })
    const mine = await api.console.projects.query()
    const here = mine.find((p) => p.project_id === me.projectId)
    expect(mine.map((p) => p.project_id)).not.toContain(other.projectId)
    expect(here).toMatchObject({ bk_biz_id: me.bkBizId, role: 'admin' })
    const r = await newTask(tpl.sleep, 'counted running')
    const p = await newTask(tpl.sleep, 'counted paused')
    await api.task.operate.mutate({ ...biz(), task_id: p, action: 'pause' })
    const f = await newTask(tpl.fail, 'counted failed')
    await waitFor(async () => ((await nodeState(f, ids.fail)) === 'FAILED' ? true : undefined))
    const after = (await api.console.projects.query()).find((x) => x.project_id === me.projectId)!
    expect({
      running: after.running - here!.running,
      failed: after.failed - here!.failed,
      paused: after.paused - here!.paused,
    }).toEqual({
      running: 1,
      failed: 1,
      paused: 1,
    })
    expect(await clientFor(h, other).console.projects.query()).toEqual([
      {
        project_id: other.projectId,
        bk_biz_id: other.bkBizId,
        name: expect.any(String),
        role: 'viewer',
        running: 0,
        failed: 0,
        paused: 0,
      },
    ])
    for (const id of [r, p, f]) await api.task.operate.mutate({ ...biz(), task_id: id, action: 'revoke' })
  })
})
