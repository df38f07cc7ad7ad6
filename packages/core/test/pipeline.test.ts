import { describe, expect, it } from 'vitest'
import {
  type Activity,
  buildGraph,
  evaluateCondition,
  PipelineTreeSchema,
  selectOutgoing,
} from '../src/index'
import { createTreeBuilder, exclusiveTree, linearTree, parallelTree } from '../src/testing/trees'

describe('PipelineTreeSchema', () => {
  it('normalises incoming and outgoing to lists, and a single outgoing to a string', () => {
    const raw = linearTree(1, 'sleep_timer')
    const [id] = Object.keys(raw.activities!) as [string]
    const activity = raw.activities![id]!
    activity.incoming = (activity.incoming as string[])[0]!
    activity.outgoing = [activity.outgoing as string]
    const tree = PipelineTreeSchema.parse(raw)
    expect(tree.start_event.incoming).toEqual([])
    expect(tree.end_event.outgoing).toEqual([])
    expect(tree.activities[id]!.incoming).toEqual([raw.start_event.outgoing])
    expect(tree.activities[id]!.outgoing).toBe(activity.outgoing[0])
  })

  it('keeps keys it does not know, such as location, line and labels', () => {
    const raw = parallelTree(2, 'sleep_timer')
    const tree = PipelineTreeSchema.parse({ ...raw, extra: { kept: true } })
    expect(tree.location).toEqual(raw.location)
    expect(tree.line).toEqual(raw.line)
    expect(tree.extra).toEqual({ kept: true })
    const [activity] = Object.values(tree.activities)
    expect(activity).toMatchObject({ labels: [], stage_name: '', optional: false })
  })

  it('fills defaults: hook false, empty maps and outputs', () => {
    const raw = linearTree(1, 'sleep_timer', {})
    const [id] = Object.keys(raw.activities!) as [string]
    ;(raw.activities![id] as { component: { data: unknown } }).component.data = { bk_timing: { value: 3 } }
    delete raw.gateways
    delete raw.constants
    delete raw.outputs
    const tree = PipelineTreeSchema.parse(raw)
    expect((tree.activities[id] as Activity).component.data.bk_timing).toEqual({ hook: false, value: 3 })
    expect(tree.gateways).toEqual({})
    expect(tree.constants).toEqual({})
    expect(tree.outputs).toEqual([])
  })
})

describe('buildGraph', () => {
  it('describes every node with its kind and flows', () => {
    const tree = PipelineTreeSchema.parse(parallelTree(2, 'sleep_timer'))
    const graph = buildGraph(tree)
    const kinds = [...graph.nodes.values()].map((node) => node.kind).sort()
    expect(kinds).toEqual(['activity', 'activity', 'converge', 'end', 'parallel', 'start'])
    expect(graph.startId).toBe(tree.start_event.id)
    expect(graph.endId).toBe(tree.end_event.id)
    const fork = [...graph.nodes.values()].find((node) => node.kind === 'parallel')!
    expect(graph.nodes.get(fork.convergeId!)?.kind).toBe('converge')
    expect(graph.flows.size).toBe(Object.keys(tree.flows).length)
  })

  it('marks the default flow of an exclusive gateway', () => {
    const graph = buildGraph(PipelineTreeSchema.parse(exclusiveTree('set_variables')))
    const defaults = [...graph.flows.values()].filter((flow) => flow.isDefault)
    expect(defaults).toHaveLength(1)
    expect(graph.nodes.get(defaults[0]!.target)?.name).toBe('C')
  })
})

/** start → gateway → three activities → converge → end, with the given conditions per branch. */
function branching(
  type: 'ExclusiveGateway' | 'ConditionalParallelGateway' | 'ParallelGateway',
  conditions: Array<string | 'default' | null>,
) {
  const b = createTreeBuilder()
  const gateway = b.gateway(type)
  const join = b.gateway('ConvergeGateway')
  b.flow(b.startId, gateway)
  const branches = conditions.map((condition) => {
    const activity = b.activity('set_variables')
    const flow = b.flow(
      gateway,
      activity,
      condition === 'default' ? { isDefault: true } : condition === null ? {} : { condition },
    )
    b.flow(activity, join)
    return flow
  })
  b.flow(join, b.endId)
  return { graph: buildGraph(PipelineTreeSchema.parse(b.build())), gateway, branches, b }
}

const withVars = (vars: Record<string, unknown>) => (expr: string) => evaluateCondition(expr, vars)

describe('selectOutgoing', () => {
  it('leaves events and activities by their one flow', () => {
    const graph = buildGraph(PipelineTreeSchema.parse(linearTree(1, 'sleep_timer')))
    const start = graph.nodes.get(graph.startId)!
    expect(selectOutgoing(graph, graph.startId, () => false)).toEqual({ ok: true, flowIds: start.outgoing })
    expect(selectOutgoing(graph, graph.endId, () => false)).toEqual({ ok: true, flowIds: [] })
  })

  it('takes every flow of a parallel gateway', () => {
    const { graph, gateway, branches } = branching('ParallelGateway', [null, null, null])
    expect(selectOutgoing(graph, gateway, () => false)).toEqual({ ok: true, flowIds: branches })
  })

  it('takes the first flow of an exclusive gateway whose condition holds', () => {
    const { graph, gateway, branches } = branching('ExclusiveGateway', ['${x} > 1', '${x} > 2', 'default'])
    expect(selectOutgoing(graph, gateway, withVars({ x: 3 }))).toEqual({ ok: true, flowIds: [branches[0]] })
    expect(selectOutgoing(graph, gateway, withVars({ x: 2 }))).toEqual({ ok: true, flowIds: [branches[0]] })
  })

  it('takes the default flow of an exclusive gateway when no condition holds', () => {
    const { graph, gateway, branches } = branching('ExclusiveGateway', ['${x} > 1', '${x} > 2', 'default'])
    expect(selectOutgoing(graph, gateway, withVars({ x: 0 }))).toEqual({ ok: true, flowIds: [branches[2]] })
  })

  it('refuses an exclusive gateway with no condition holding and no default', () => {
    const { graph, gateway } = branching('ExclusiveGateway', ['${x} > 1', '${x} > 2'])
    expect(selectOutgoing(graph, gateway, withVars({ x: 0 }))).toEqual({
      ok: false,
      message: `exclusive gateway ${gateway} has no condition that holds and no default`,
    })
  })

  it('takes every flow of a conditional parallel gateway whose condition holds', () => {
    const { graph, gateway, branches } = branching('ConditionalParallelGateway', [
      '${x} > 1',
      '${x} > 5',
      '${x} > 2',
    ])
    expect(selectOutgoing(graph, gateway, withVars({ x: 3 }))).toEqual({
      ok: true,
      flowIds: [branches[0], branches[2]],
    })
  })

  it('takes the default of a conditional parallel gateway when none holds, and refuses without one', () => {
    const withDefault = branching('ConditionalParallelGateway', ['${x} > 1', 'default'])
    expect(selectOutgoing(withDefault.graph, withDefault.gateway, withVars({ x: 0 }))).toEqual({
      ok: true,
      flowIds: [withDefault.branches[1]],
    })
    const without = branching('ConditionalParallelGateway', ['${x} > 1'])
    expect(selectOutgoing(without.graph, without.gateway, withVars({ x: 0 }))).toEqual({
      ok: false,
      message: `conditional parallel gateway ${without.gateway} has no condition that holds and no default`,
    })
  })

  it('refuses a condition that cannot be evaluated, naming gateway, flow and error', () => {
    const { graph, gateway, branches } = branching('ExclusiveGateway', ['${missing} == 1', 'default'])
    expect(selectOutgoing(graph, gateway, withVars({}))).toEqual({
      ok: false,
      message: `condition of flow ${branches[0]} on gateway ${gateway} failed: undefined variable \${missing}`,
    })
  })

  it('refuses a node that does not exist', () => {
    const { graph } = branching('ParallelGateway', [null])
    expect(selectOutgoing(graph, 'nghost', () => true)).toEqual({
      ok: false,
      message: 'node nghost does not exist',
    })
  })
})
