import { buildStatusTree, type NodeState, StdopsError } from '@stdops/core'
import { createTreeBuilder } from '@stdops/core/testing'
import { sql } from '@stdops/db'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Engine, NodeOperationRequest } from '../src/index'
import {
  createHarness,
  events,
  type Harness,
  httpServer,
  insertTask,
  jobs,
  nodes,
  operate,
  states,
  TESTER,
  task,
  waitFor,
  waitForState,
} from './helpers'

let h: Harness
let engine: Engine

beforeAll(async () => {
  h = await createHarness()
  engine = await h.engine()
})
afterAll(async () => {
  await h?.close()
})

type Extra = Omit<NodeOperationRequest, 'taskId' | 'nodeId' | 'action' | keyof typeof TESTER>
const act = (taskId: number, nodeId: string, action: string, extra: Extra = {}) =>
  engine.operateNode({ ...TESTER, taskId, nodeId, action, ...extra })

/**
 * Everything an operation on `nodeId` could write: compared before and after a refusal (scoped to
 * the node, since the rest of the run may go on meanwhile).
 */
async function written(taskId: number, nodeId: string) {
  const count = async (q: ReturnType<typeof sql>) => Number((await h.db.query<{ n: number }>(q))[0]?.n)
  const rows = await h.db.query(
    sql`SELECT state, version, held, wait, retry, skip, input_overrides FROM node_states WHERE task_id = ${taskId} AND node_id = ${nodeId}`,
  )
  const t = await task(h.db, taskId)
  return {
    task: { state: t.state, version: t.version },
    records: await count(sql`SELECT COUNT(*) AS n FROM operate_records WHERE task_id = ${taskId}`),
    histories: await count(
      sql`SELECT COUNT(*) AS n FROM node_histories WHERE task_id = ${taskId} AND node_id = ${nodeId}`,
    ),
    events: await count(
      sql`SELECT COUNT(*) AS n FROM task_events WHERE task_id = ${taskId} AND node_id = ${nodeId}`,
    ),
    rows: rows.map((r) => ({
      ...r,
      version: Number(r.version),
      held: Boolean(r.held),
      skip: Boolean(r.skip),
    })),
    jobs: (await jobs(h.db, taskId)).filter((j) => j.node_id === nodeId).map((j) => j.kind),
  }
}

/** The action is refused with `code` and a message matching `message`, and writes nothing. */
async function expectRefused(
  taskId: number,
  nodeId: string,
  action: string,
  code: number,
  message: RegExp,
  extra: Extra = {},
) {
  const before = await written(taskId, nodeId)
  const err = await act(taskId, nodeId, action, extra).then(
    () => null,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(StdopsError)
  expect((err as StdopsError).code).toBe(code)
  expect((err as StdopsError).message).toMatch(message)
  expect(await written(taskId, nodeId)).toEqual(before)
}

async function histories(taskId: number, nodeId: string) {
  const rows = await h.db.query<Record<string, unknown>>(
    sql`SELECT attempt, state, retry_kind, inputs, error, log FROM node_histories
        WHERE task_id = ${taskId} AND node_id = ${nodeId} ORDER BY id`,
  )
  return rows.map((r) => ({
    attempt: Number(r.attempt),
    state: r.state as string,
    retry_kind: r.retry_kind as string | null,
    inputs: r.inputs === null ? null : JSON.parse(r.inputs as string),
    error: r.error as string | null,
    log: r.log as string,
  }))
}

async function records(taskId: number) {
  return h.db.query<{ operate_type: string; node_id: string; extra_info: string | null }>(
    sql`SELECT operate_type, node_id, extra_info FROM operate_records WHERE task_id = ${taskId} ORDER BY id`,
  )
}

const waitNode = (taskId: number, nodeId: string, state: NodeState) =>
  waitFor(`node ${nodeId} ${state}`, async () => (await nodes(h.db, taskId)).get(nodeId)?.state === state)

/** start → check(ok from the given value) → noop → end */
async function failingTask(opts: { retryable?: boolean; skippable?: boolean } = {}) {
  const b = createTreeBuilder()
  const c = b.activity('check', {
    data: { ok: { hook: false, value: false }, value: { hook: false, value: 'first' } },
    extra: { retryable: opts.retryable ?? true, skippable: opts.skippable ?? true },
  })
  const after = b.activity('noop')
  b.chain(b.startId, c, after, b.endId)
  const id = await insertTask(h.db, b.build())
  await operate(engine, id, 'start')
  await waitNode(id, c, 'FAILED')
  return { id, c, after, end: b.endId }
}

describe('retry', () => {
  it('runs the failed node again with new inputs; the history keeps the failed attempt', async () => {
    const { id, c, after } = await failingTask()
    const result = await act(id, c, 'retry', { inputs: { ok: true, value: 'second' } })
    expect(result.state).toBe('READY')
    await waitForState(h.db, id, 'FINISHED')
    const n = await nodes(h.db, id)
    expect(n.get(c)?.state).toBe('FINISHED')
    expect(n.get(c)?.outputs).toEqual({ value: 'second' })
    expect(n.get(after)?.state).toBe('FINISHED')
    const hist = await histories(id, c)
    expect(hist.map((x) => [x.attempt, x.state, x.retry_kind])).toEqual([
      [1, 'FAILED', null],
      [2, 'FINISHED', 'manual'],
    ])
    expect(hist[0]!.inputs).toEqual({ ok: false, value: 'first' })
    expect(hist[1]!.inputs).toEqual({ ok: true, value: 'second' })
    // ctx.log lines and the engine's own, per attempt.
    expect(hist[0]!.log).toMatch(/attempt 1 of pass 1 started/)
    expect(hist[0]!.log).toMatch(/checking ok=false value="first"/)
    expect(hist[1]!.log).toMatch(/\(manual retry\)[\s\S]*checking ok=true value="second"/)
    const recs = await records(id)
    expect(recs.at(-1)).toMatchObject({ operate_type: 'retry', node_id: c })
    expect(JSON.parse(recs.at(-1)!.extra_info!)).toEqual({
      action: 'retry',
      inputs: { ok: true, value: 'second' },
    })
    const [row] = await h.db.query<{ retry: number }>(
      sql`SELECT retry FROM node_states WHERE task_id = ${id} AND node_id = ${c}`,
    )
    expect(Number(row!.retry)).toBe(1)
  })

  it('is refused on a node that is not FAILED, not retryable, not in the tree, or in a task that ended', async () => {
    const { id, c, after } = await failingTask({ retryable: false })
    await expectRefused(id, c, 'retry', 3545000, /^node\[.*\] is not retryable$/)
    await expectRefused(id, after, 'retry', 3545000, /is not yet reached; retry needs FAILED/)
    await expectRefused(
      id,
      'nope',
      'retry',
      3540000,
      new RegExp(`^task\\[${id}\\] does not have node\\[nope\\]$`),
    )
    await expectRefused(id, c, 'explode', 3540000, /action: must be one of retry, skip/)
    await operate(engine, id, 'revoke')
    await expectRefused(id, c, 'skip', 3545000, /^task with state REVOKED cannot operate nodes$/)
  })

  it('twenty concurrent retries of one failed node: exactly one applies, one record, one new attempt', async () => {
    const { id, c } = await failingTask()
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, () => act(id, c, 'retry', { inputs: { ok: true } })),
    )
    const applied = results.filter((r) => r.status === 'fulfilled')
    expect(applied).toHaveLength(1)
    for (const r of results) {
      if (r.status === 'rejected') {
        expect((r.reason as StdopsError).code).toBe(3545000)
        expect((r.reason as StdopsError).message).toMatch(/retry needs FAILED/)
      }
    }
    await waitForState(h.db, id, 'FINISHED')
    expect((await records(id)).filter((r) => r.operate_type === 'retry')).toHaveLength(1)
    expect((await histories(id, c)).map((x) => x.state)).toEqual(['FAILED', 'FINISHED'])
  })

  it('while the task is paused, the retried node waits for resume', async () => {
    const { id, c } = await failingTask()
    await operate(engine, id, 'pause')
    await act(id, c, 'retry', { inputs: { ok: true } })
    expect((await jobs(h.db, id)).map((j) => [j.node_id, j.kind])).toEqual([[c, 'node']])
    expect((await nodes(h.db, id)).get(c)?.state).toBe('READY')
    await operate(engine, id, 'resume')
    await waitForState(h.db, id, 'FINISHED')
  })
})

describe('skip', () => {
  it('finishes the failed node with skip, writes no outputs, and goes on', async () => {
    const { id, c, after, end } = await failingTask()
    await act(id, c, 'skip')
    await waitForState(h.db, id, 'FINISHED')
    const [row] = await h.db.query<{ skip: unknown; state: string }>(
      sql`SELECT skip, state FROM node_states WHERE task_id = ${id} AND node_id = ${c}`,
    )
    expect(row!.state).toBe('FINISHED')
    expect(Boolean(row!.skip)).toBe(true)
    const s = await states(h.db, id)
    expect([s[c], s[after], s[end]]).toEqual(['FINISHED', 'FINISHED', 'FINISHED'])
    expect((await records(id)).at(-1)).toMatchObject({ operate_type: 'skip', node_id: c })
  })

  it('is refused on a node that is not skippable, and on a gateway', async () => {
    const { id, c } = await failingTask({ skippable: false })
    await expectRefused(id, c, 'skip', 3545000, /is not skippable/)
    const tree = await h.db.query<{ pipeline_tree: string }>(
      sql`SELECT pipeline_tree FROM tasks WHERE id = ${id}`,
    )
    const startId = (JSON.parse(tree[0]!.pipeline_tree) as { start_event: { id: string } }).start_event.id
    await expectRefused(id, startId, 'skip', 3545000, /is a start event; skip applies to an activity/)
    await operate(engine, id, 'revoke')
  })
})

describe('skip_exg and skip_cpg', () => {
  it('skip_exg takes the chosen flow of a failed exclusive gateway', async () => {
    const b = createTreeBuilder()
    b.constant('x', 1)
    const gw = b.gateway('ExclusiveGateway')
    const conv = b.gateway('ConvergeGateway')
    const left = b.activity('noop')
    const right = b.activity('noop')
    b.chain(b.startId, gw)
    b.flow(gw, left, { condition: '${x} == 2' })
    const rightFlow = b.flow(gw, right, { condition: '${x} == 3' })
    b.chain(left, conv)
    b.chain(right, conv)
    b.chain(conv, b.endId)
    const id = await insertTask(h.db, b.build())
    await operate(engine, id, 'start')
    await waitNode(id, gw, 'FAILED')
    await expectRefused(id, gw, 'skip_exg', 3540000, /flow_id: must be one of/, { flowId: 'l999' })
    await expectRefused(id, gw, 'retry', 3545000, /is an ExclusiveGateway; retry applies to an activity/)
    await act(id, gw, 'skip_exg', { flowId: rightFlow })
    await waitForState(h.db, id, 'FINISHED')
    const s = await states(h.db, id)
    expect(s[right]).toBe('FINISHED')
    expect(s[left]).toBeUndefined()
    expect(JSON.parse((await records(id)).at(-1)!.extra_info!)).toEqual({
      action: 'skip_exg',
      flow_id: rightFlow,
    })
  })

  it('skip_cpg forks the chosen flows of a failed conditional parallel gateway', async () => {
    const b = createTreeBuilder()
    b.constant('x', 1)
    const gw = b.gateway('ConditionalParallelGateway')
    const conv = b.gateway('ConvergeGateway')
    const a1 = b.activity('noop')
    const a2 = b.activity('noop')
    const a3 = b.activity('noop')
    b.chain(b.startId, gw)
    const f1 = b.flow(gw, a1, { condition: '${x} == 2' })
    b.flow(gw, a2, { condition: '${x} == 3' })
    const f3 = b.flow(gw, a3, { condition: '${x} == 4' })
    b.chain(a1, conv)
    b.chain(a2, conv)
    b.chain(a3, conv)
    b.chain(conv, b.endId)
    const id = await insertTask(h.db, b.build())
    await operate(engine, id, 'start')
    await waitNode(id, gw, 'FAILED')
    await expectRefused(id, gw, 'skip_cpg', 3540000, /converge_gateway_id: must be/, {
      flowIds: [f1],
      convergeGatewayId: 'other',
    })
    await expectRefused(id, gw, 'skip_cpg', 3540000, /flow_ids: must be a non-empty list/, {
      flowIds: [],
      convergeGatewayId: conv,
    })
    await act(id, gw, 'skip_cpg', { flowIds: [f1, f3], convergeGatewayId: conv })
    await waitForState(h.db, id, 'FINISHED')
    const s = await states(h.db, id)
    expect([s[a1], s[a2], s[a3], s[conv]]).toEqual(['FINISHED', undefined, 'FINISHED', 'FINISHED'])
  })
})

describe('forced_fail', () => {
  it('aborts a running HTTP call within 1 s, fails the node with the operator message, fences its late result', async () => {
    const server = await httpServer(() => {
      // Never answers: the call hangs until it is aborted.
    })
    try {
      const b = createTreeBuilder()
      const call = b.activity('bk_http_request', {
        data: {
          bk_http_request_method: { hook: false, value: 'GET' },
          bk_http_request_url: { hook: false, value: `${server.url}/hang` },
          bk_http_timeout: { hook: false, value: 60 },
        },
      })
      b.chain(b.startId, call, b.endId)
      const id = await insertTask(h.db, b.build())
      await operate(engine, id, 'start')
      await waitFor('the call to arrive', async () => server.calls.length === 1 || null)
      await expectRefused(id, call, 'retry', 3545000, /is RUNNING; retry needs FAILED/)
      const { at, state } = await act(id, call, 'forced_fail')
      expect(state).toBe('FAILED')
      const n = (await nodes(h.db, id)).get(call)!
      expect(n.state).toBe('FAILED')
      expect(n.error).toBe('The node has been terminated by tester.')
      const fenced = await waitFor('the late result to be fenced', async () => {
        const rows = await h.db.query<{ created_at: number; reason: string }>(
          sql`SELECT created_at, reason FROM fenced_results WHERE task_id = ${id} AND node_id = ${call}`,
        )
        return rows[0]
      })
      expect(Number(fenced.created_at) - at).toBeLessThan(1000)
      expect(fenced.reason).toMatch(/job gone/)
      // The late result changed nothing.
      expect((await nodes(h.db, id)).get(call)?.error).toBe('The node has been terminated by tester.')
      expect((await task(h.db, id)).state).toBe('RUNNING')
      expect((await histories(id, call))[0]!.log).toMatch(/aborted: The node has been terminated by tester\./)
      await act(id, call, 'skip')
      await waitForState(h.db, id, 'FINISHED')
    } finally {
      await server.close()
    }
  })
})

describe('callback and approval', () => {
  it('callback delivers data to a waiting pause_node; a stale version and a second callback are refused', async () => {
    const b = createTreeBuilder()
    const gate = b.activity('pause_node')
    const later = b.activity('noop')
    b.chain(b.startId, gate, later, b.endId)
    const id = await insertTask(h.db, b.build())
    await operate(engine, id, 'start')
    await act(id, later, 'pause')
    await waitFor('the gate to wait', async () => {
      const [r] = await h.db.query<{ wait: string | null }>(
        sql`SELECT wait FROM node_states WHERE task_id = ${id} AND node_id = ${gate}`,
      )
      return r?.wait === 'callback'
    })
    await expectRefused(
      id,
      later,
      'callback',
      3545000,
      /is READY; callback needs RUNNING and waiting for a callback/,
    )
    const [row] = await h.db.query<{ version: number }>(
      sql`SELECT version FROM node_states WHERE task_id = ${id} AND node_id = ${gate}`,
    )
    const version = Number(row!.version)
    await expectRefused(id, gate, 'callback', 3545000, new RegExp(`version ${version + 7} is not current`), {
      data: {},
      version: version + 7,
    })
    await act(id, gate, 'callback', { data: { approved: 'yes' }, version })
    await waitNode(id, later, 'SUSPENDED')
    await expectRefused(id, gate, 'callback', 3545000, /is FINISHED; callback needs RUNNING/, { data: {} })
    expect(JSON.parse((await records(id)).at(-1)!.extra_info!)).toEqual({
      action: 'callback',
      callback_data_keys: ['approved'],
      version,
    })
    await act(id, later, 'resume')
    await waitForState(h.db, id, 'FINISHED')
    expect((await nodes(h.db, id)).get(gate)?.outputs).toEqual({ callback_data: { approved: 'yes' } })
  })

  it('resume passes a waiting pause_node (an approval)', async () => {
    const b = createTreeBuilder()
    const gate = b.activity('pause_node')
    b.chain(b.startId, gate, b.endId)
    const id = await insertTask(h.db, b.build())
    await operate(engine, id, 'start')
    await waitFor('the gate to wait', async () => {
      const [r] = await h.db.query<{ wait: string | null }>(
        sql`SELECT wait FROM node_states WHERE task_id = ${id} AND node_id = ${gate}`,
      )
      return r?.wait === 'callback'
    })
    await act(id, gate, 'resume')
    await waitForState(h.db, id, 'FINISHED')
  })
})

describe('pause and resume of one node', () => {
  /** start → a → b → c → d → end, each holding a worker a little. */
  async function chainOfFour() {
    const b = createTreeBuilder()
    const ids = [0, 1, 2, 3].map(() => b.activity('sleep_ms', { data: { ms: { hook: false, value: 100 } } }))
    b.chain(b.startId, ...ids, b.endId)
    const id = await insertTask(h.db, b.build())
    return { id, ids: ids as [string, string, string, string], tree: b }
  }

  async function displayed(id: number) {
    const n = await nodes(h.db, id)
    const t = await task(h.db, id)
    return buildStatusTree({
      task: { id, name: 't', state: t.state, startedAt: new Date(), finishedAt: null },
      nodes: [...n.values()].map((x) => ({
        nodeId: x.node_id,
        state: x.state as NodeState,
        retry: 0,
        skip: false,
        loop: x.loop,
        version: 0,
        errorIgnorable: false,
        errorIgnored: false,
        startedAt: null,
        finishedAt: null,
      })),
      names: {},
      now: new Date(),
    }).state
  }

  it('holds a node three steps ahead: the run stops before it (NODE_SUSPENDED) and resume goes on', async () => {
    const { id, ids } = await chainOfFour()
    const d = ids[3]
    await operate(engine, id, 'start')
    await act(id, d, 'pause')
    await expectRefused(id, d, 'pause', 3545000, /is already paused/)
    await waitNode(id, d, 'SUSPENDED')
    const n = await nodes(h.db, id)
    expect(ids.slice(0, 3).map((x) => n.get(x)?.state)).toEqual(['FINISHED', 'FINISHED', 'FINISHED'])
    expect(n.get(d)?.started_at).toBeNull()
    expect(await displayed(id)).toBe('NODE_SUSPENDED')
    expect((await jobs(h.db, id)).filter((j) => j.node_id === d)).toEqual([])
    const resumedAt = (await act(id, d, 'resume')).at
    await waitForState(h.db, id, 'FINISHED')
    expect((await nodes(h.db, id)).get(d)!.started_at!).toBeGreaterThanOrEqual(resumedAt)
    expect(
      (await records(id)).filter((r) => r.node_id !== '').map((r) => [r.operate_type, r.node_id]),
    ).toEqual([
      ['pause', d],
      ['resume', d],
    ])
    const ev = (await events(h.db, id)).filter((e) => e.node_id === d).map((e) => e.state)
    expect(ev).toEqual(['READY', 'SUSPENDED', 'READY', 'RUNNING', 'FINISHED'])
  })

  it('pause then task revoke: the held node never starts', async () => {
    const { id, ids } = await chainOfFour()
    const d = ids[3]
    await operate(engine, id, 'start')
    await act(id, d, 'pause')
    await waitNode(id, d, 'SUSPENDED')
    await operate(engine, id, 'revoke')
    const n = await nodes(h.db, id)
    expect(n.get(d)?.state).toBe('REVOKED')
    expect(n.get(d)?.started_at).toBeNull()
    expect(await jobs(h.db, id)).toEqual([])
    await expectRefused(id, d, 'resume', 3545000, /task with state REVOKED cannot operate nodes/)
  })

  it('pause of a node that is due but not started (task paused) takes its job back; resume of one not reached releases it', async () => {
    const { id, ids } = await chainOfFour()
    await operate(engine, id, 'start')
    await act(id, ids[2], 'pause')
    await act(id, ids[2], 'resume')
    await expectRefused(id, ids[2], 'resume', 3545000, /is not paused/)
    await waitForState(h.db, id, 'FINISHED')
  })
})
