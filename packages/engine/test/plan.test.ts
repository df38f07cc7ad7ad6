import { buildGraph, type Constant, PipelineTreeSchema, type TaskState } from '@stdops/core'
import { createTreeBuilder, type TreeBuilder } from '@stdops/core/testing'
import { describe, expect, it } from 'vitest'
import { createComponentRegistry } from '../src/components'
import {
  emptyRow,
  LOOP_LIMIT,
  type NodeRow,
  type Plan,
  type PlanContext,
  planActivityResult,
  planActivityStart,
  planDueNode,
  planRevoke,
  planTaskStart,
  prepareGraph,
  rowsReadFrom,
} from '../src/plan'
import { TEST_COMPONENTS } from '../src/testing'

const registry = createComponentRegistry(TEST_COMPONENTS)

function context(
  b: TreeBuilder,
  opts: { nodes?: Record<string, Partial<NodeRow>>; taskState?: TaskState } = {},
): PlanContext {
  const tree = PipelineTreeSchema.parse(b.build())
  const nodes = new Map<string, NodeRow>()
  for (const [id, partial] of Object.entries(opts.nodes ?? {})) {
    nodes.set(id, { ...emptyRow(), ...partial })
  }
  return {
    graph: prepareGraph(buildGraph(tree), tree.outputs),
    nodes,
    constants: tree.constants as Record<string, Constant>,
    scopeConstants: {},
    taskState: opts.taskState ?? 'RUNNING',
    now: 1000,
    worker: 'w',
  }
}

const stateOf = (plan: Plan) => Object.fromEntries(plan.rows.map((r) => [r.nodeId, r.state]))
const nodeEvents = (plan: Plan) => plan.events.map((e) => `${e.nodeId ?? 'task'}:${e.state}`)

describe('planning (pure)', () => {
  it('task start runs the start event and a parallel gateway inline and schedules every branch', () => {
    const b = createTreeBuilder()
    const fork = b.gateway('ParallelGateway')
    const join = b.gateway('ConvergeGateway')
    const [x, y] = [b.activity('noop'), b.activity('noop')]
    b.chain(b.startId, fork)
    b.chain(fork, x!, join)
    b.chain(fork, y!, join)
    b.chain(join, b.endId)
    const plan = planTaskStart(context(b))
    expect(stateOf(plan)).toEqual({
      [b.startId]: 'FINISHED',
      [fork]: 'FINISHED',
      [x!]: 'READY',
      [y!]: 'READY',
    })
    expect(plan.jobs).toEqual([x, y])
    expect(plan.rows.find((r) => r.nodeId === fork)?.expected).toBe(2)
    expect(nodeEvents(plan)).toEqual([
      `${b.startId}:RUNNING`,
      `${b.startId}:FINISHED`,
      `${fork}:RUNNING`,
      `${fork}:FINISHED`,
      `${x}:READY`,
      `${y}:READY`,
    ])
    expect(plan.historyInserts.map((h) => [h.nodeId, h.state, h.finishedAt])).toEqual([
      [b.startId, 'FINISHED', 1000],
      [fork, 'FINISHED', 1000],
    ])
    expect(plan.bugs).toEqual([])
  })

  it("a fork's converge waits for as many arrivals as the fork started branches", () => {
    const b = createTreeBuilder()
    const fork = b.gateway('ParallelGateway')
    const join = b.gateway('ConvergeGateway')
    const [x, y, z] = [b.activity('noop'), b.activity('noop'), b.activity('noop')]
    b.chain(b.startId, fork)
    for (const a of [x!, y!, z!]) b.chain(fork, a, join)
    b.chain(join, b.endId)
    const running = { state: 'RUNNING' as const, loop: 1, attempt: 1 }
    const first = planActivityResult(
      context(b, {
        nodes: { [fork]: { state: 'FINISHED', expected: 3 }, [x!]: running, [y!]: running, [z!]: running },
      }),
      x!,
      { status: 'finished', outputs: {} },
    )
    expect(first.rows.find((r) => r.nodeId === join)).toMatchObject({ state: 'READY', arrivals: 1 })
    expect(first.jobs).toEqual([])
    expect(first.finish).toBeUndefined()

    const last = planActivityResult(
      context(b, {
        nodes: {
          [fork]: { state: 'FINISHED', expected: 3 },
          [x!]: { state: 'FINISHED' },
          [y!]: { state: 'FINISHED' },
          [z!]: running,
          [join]: { state: 'READY', arrivals: 2 },
        },
      }),
      z!,
      { status: 'finished', outputs: {} },
    )
    expect(stateOf(last)).toMatchObject({ [join]: 'FINISHED', [b.endId]: 'FINISHED' })
    expect(last.rows.find((r) => r.nodeId === join)?.arrivals).toBe(0)
    expect(last.finish).toEqual({ outputs: {} })
    expect(last.events.at(-1)).toEqual({ type: 'task_state', state: 'FINISHED' })
  })

  it('a conditional parallel gateway expects only the branches whose conditions hold', () => {
    const b = createTreeBuilder()
    b.constant('n', 2)
    const fork = b.gateway('ConditionalParallelGateway')
    const join = b.gateway('ConvergeGateway')
    const acts = [b.activity('noop'), b.activity('noop'), b.activity('noop')]
    b.flow(b.startId, fork)
    b.flow(fork, acts[0]!, { condition: '${n} >= 1' })
    b.flow(fork, acts[1]!, { condition: '${n} >= 2' })
    b.flow(fork, acts[2]!, { condition: '${n} >= 3' })
    for (const a of acts) b.chain(a, join)
    b.chain(join, b.endId)
    const plan = planTaskStart(context(b))
    expect(plan.jobs).toEqual([acts[0], acts[1]])
    expect(plan.rows.find((r) => r.nodeId === fork)?.expected).toBe(2)
  })

  it('a gateway whose condition cannot be evaluated fails, and nothing after it is scheduled', () => {
    const b = createTreeBuilder()
    const choice = b.gateway('ExclusiveGateway')
    const [x, y] = [b.activity('noop'), b.activity('noop')]
    b.flow(b.startId, choice)
    b.flow(choice, x!, { condition: '${missing} == 1' })
    b.flow(choice, y!, { condition: '1 == 2' })
    b.chain(x!, b.endId)
    b.chain(y!, b.endId)
    const plan = planTaskStart(context(b))
    const gateway = plan.rows.find((r) => r.nodeId === choice)
    expect(gateway?.state).toBe('FAILED')
    expect(gateway?.error).toMatch(/missing/)
    expect(plan.jobs).toEqual([])
    expect(plan.events.at(-1)).toMatchObject({ nodeId: choice, state: 'FAILED' })
  })

  it('while the task is SUSPENDED a completion schedules what follows (gateways too) instead of running it', () => {
    const b = createTreeBuilder()
    const a = b.activity('noop')
    const choice = b.gateway('ExclusiveGateway')
    b.chain(b.startId, a, choice)
    b.flow(choice, b.endId, { isDefault: true })
    const plan = planActivityResult(
      context(b, { taskState: 'SUSPENDED', nodes: { [a]: { state: 'RUNNING', loop: 1, attempt: 1 } } }),
      a,
      { status: 'finished', outputs: {} },
    )
    expect(stateOf(plan)).toEqual({ [a]: 'FINISHED', [choice]: 'READY' })
    expect(plan.jobs).toEqual([choice])

    const resumed = planDueNode(
      context(b, { nodes: { [a]: { state: 'FINISHED' }, [choice]: { state: 'READY' } } }),
      choice,
    )
    expect(stateOf(resumed)).toEqual({ [choice]: 'FINISHED', [b.endId]: 'FINISHED' })
    expect(resumed.finish).toBeDefined()
  })

  it('component_outputs constants are set from outputs and seen by the next gateway', () => {
    const b = createTreeBuilder()
    b.constant('x', 0, { source_type: 'component_outputs' })
    const a = b.activity('set_variables')
    const choice = b.gateway('ExclusiveGateway')
    const [hi, lo] = [b.activity('noop'), b.activity('noop')]
    b.chain(b.startId, a, choice)
    b.flow(choice, hi!, { condition: '${x} > 3' })
    b.flow(choice, lo!, { isDefault: true })
    b.chain(hi!, b.endId)
    b.chain(lo!, b.endId)
    const ctx = context(b, { nodes: { [a]: { state: 'RUNNING', loop: 1, attempt: 1 } } })
    ;(ctx.constants['${x}'] as Constant).source_info = { [a]: ['x'] }
    const plan = planActivityResult(ctx, a, { status: 'finished', outputs: { x: 5 } })
    expect(plan.constants?.['${x}']?.value).toBe(5)
    expect(plan.jobs).toEqual([hi])
    expect(plan.rows.find((r) => r.nodeId === a)?.outputs).toBe('{"x":5}')
  })

  it('an activity start renders inputs, validates them with the schema, and says what to run', () => {
    const b = createTreeBuilder()
    b.constant('ms', '25')
    const a = b.activity('sleep_ms', { data: { ms: { hook: true, value: '${ms}' } } })
    b.chain(b.startId, a, b.endId)
    const plan = planActivityStart(context(b, { nodes: { [a]: { state: 'READY' } } }), a, registry.get)
    expect(plan.run).toEqual({ nodeId: a, code: 'sleep_ms', inputs: { ms: 25 }, loop: 1, attempt: 1 })
    expect(plan.rows[0]).toMatchObject({
      state: 'RUNNING',
      loop: 1,
      attempt: 1,
      startedAt: 1000,
      inputs: '{"ms":"25"}',
    })
    expect(plan.historyInserts).toHaveLength(1)
  })

  it('an unknown component fails the node (and an ignorable one lets the run go on)', () => {
    const b = createTreeBuilder()
    const a = b.activity('nope')
    const c = b.activity('nope', { errorIgnorable: true })
    b.chain(b.startId, a, c, b.endId)
    const plan = planActivityStart(context(b, { nodes: { [a]: { state: 'READY' } } }), a, registry.get)
    expect(plan.run).toBeUndefined()
    expect(plan.rows[0]).toMatchObject({ state: 'FAILED', error: 'component nope is not registered' })
    const ignored = planActivityStart(context(b, { nodes: { [c]: { state: 'READY' } } }), c, registry.get)
    expect(ignored.rows.find((r) => r.nodeId === c)).toMatchObject({ state: 'FINISHED', errorIgnored: true })
    expect(ignored.finish).toBeDefined()
  })

  it(`a loop pass counts loop; pass ${LOOP_LIMIT + 1} fails the node, even an ignorable one`, () => {
    const b = createTreeBuilder()
    const a = b.activity('noop', { errorIgnorable: true })
    b.chain(b.startId, a, b.endId)
    const again = planActivityStart(
      context(b, { nodes: { [a]: { state: 'FINISHED', loop: 7, attempt: 3 } } }),
      a,
      registry.get,
    )
    expect(again.rows[0]).toMatchObject({ state: 'RUNNING', loop: 8, attempt: 1 })
    const limit = planActivityStart(
      context(b, { nodes: { [a]: { state: 'FINISHED', loop: LOOP_LIMIT } } }),
      a,
      registry.get,
    )
    expect(limit.run).toBeUndefined()
    expect(limit.rows[0]).toMatchObject({ state: 'FAILED', loop: LOOP_LIMIT + 1 })
    expect(limit.rows[0]?.error).toMatch(/loop limit/)
    expect(limit.jobs).toEqual([])
  })

  it('a RUNNING node claimed again after its worker lost the lease starts a new attempt without a state move', () => {
    const b = createTreeBuilder()
    const a = b.activity('noop')
    b.chain(b.startId, a, b.endId)
    const plan = planActivityStart(
      context(b, { nodes: { [a]: { state: 'RUNNING', loop: 1, attempt: 1 } } }),
      a,
      registry.get,
    )
    expect(plan.rows[0]).toMatchObject({ state: 'RUNNING', loop: 1, attempt: 2 })
    expect(plan.events).toEqual([])
    expect(plan.historyCloses).toMatchObject([{ nodeId: a, attempt: 1, state: 'FAILED' }])
    expect(plan.historyInserts).toMatchObject([{ nodeId: a, attempt: 2, state: 'RUNNING' }])
  })

  it('a move the state machine refuses is reported as a bug and not made', () => {
    const b = createTreeBuilder()
    const a = b.activity('noop')
    b.chain(b.startId, a, b.endId)
    const plan = planActivityStart(context(b, { nodes: { [a]: { state: 'REVOKED' } } }), a, registry.get)
    expect(plan.bugs).toEqual([`node ${a}: node cannot move from REVOKED to RUNNING`])
    expect(plan.rows[0]?.state).toBe('REVOKED')
    expect(plan.run).toBeUndefined()
  })

  it('revoke moves READY, RUNNING and SUSPENDED nodes to REVOKED and leaves the others', () => {
    const b = createTreeBuilder()
    const [x, y, z, w] = [b.activity('noop'), b.activity('noop'), b.activity('noop'), b.activity('noop')]
    b.chain(b.startId, x!, y!, z!, w!, b.endId)
    const plan = planRevoke(
      context(b, {
        taskState: 'REVOKED',
        nodes: {
          [x!]: { state: 'FINISHED' },
          [y!]: { state: 'RUNNING' },
          [z!]: { state: 'READY' },
          [w!]: { state: 'FAILED' },
        },
      }),
    )
    expect(stateOf(plan)).toEqual({ [y!]: 'REVOKED', [z!]: 'REVOKED' })
    expect(plan.rows.every((r) => r.finishedAt === 1000)).toBe(true)
  })

  it('a decision reads only the rows an inline walk can reach from the node (and the forks of converges met)', () => {
    const b = createTreeBuilder()
    const fork = b.gateway('ParallelGateway')
    const join = b.gateway('ConvergeGateway')
    const [x, y, after] = [b.activity('noop'), b.activity('noop'), b.activity('noop')]
    b.chain(b.startId, fork)
    b.chain(fork, x!, join)
    b.chain(fork, y!, join)
    b.chain(join, after!, b.endId)
    const g = context(b).graph
    expect(new Set(rowsReadFrom(g, b.startId))).toEqual(new Set([b.startId, fork, x, y]))
    expect(new Set(rowsReadFrom(g, x!))).toEqual(new Set([x, join, fork, after]))
    expect(new Set(rowsReadFrom(g, after!))).toEqual(new Set([after, b.endId]))
  })
})
