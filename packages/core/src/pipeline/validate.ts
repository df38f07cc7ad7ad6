import { constantForReference, referencesIn, resolveConstants } from '../constants'
import { expressionReferences, parseExpression } from '../expr'
import { matchForks } from './forks'
import { buildGraph, type GraphNode, type NodeKind, type PipelineGraph } from './graph'
import { isServiceActivity, type PipelineTree, PipelineTreeSchema } from './schema'

export type PipelineValidation =
  | { ok: true; tree: PipelineTree; graph: PipelineGraph }
  | { ok: false; message: string }

const LABELS: Record<NodeKind, string> = {
  start: 'start event',
  end: 'end event',
  activity: 'activity',
  parallel: 'parallel gateway',
  exclusive: 'exclusive gateway',
  conditional_parallel: 'conditional parallel gateway',
  converge: 'converge gateway',
  subprocess: 'subprocess',
}

/** [min, max] incoming and outgoing flows per kind of node (bamboo's node rules). */
const DEGREES: Record<NodeKind, { incoming: [number, number]; outgoing: [number, number] }> = {
  start: { incoming: [0, 0], outgoing: [1, 1] },
  end: { incoming: [1, Infinity], outgoing: [0, 0] },
  activity: { incoming: [1, Infinity], outgoing: [1, 1] },
  parallel: { incoming: [1, Infinity], outgoing: [1, Infinity] },
  exclusive: { incoming: [1, Infinity], outgoing: [1, Infinity] },
  conditional_parallel: { incoming: [1, Infinity], outgoing: [1, Infinity] },
  converge: { incoming: [1, Infinity], outgoing: [1, 1] },
  subprocess: { incoming: [1, Infinity], outgoing: [1, 1] },
}

const CONSTANT_KEY = /^\$\{[^${}]+\}$/

/**
 * The largest tree accepted: nodes (activities and gateways), flows and constants. The engine walks
 * a tree in memory at every step of its task: these keep one task's walk small next to everyone
 * else's. (Nesting of the tree's JSON is bounded by the API too: at most 64 levels.)
 */
export const TREE_LIMITS = { nodes: 1000, flows: 2000, constants: 1000 } as const

function checkSize(input: unknown): string | undefined {
  if (typeof input !== 'object' || input === null) return undefined
  const tree = input as Record<string, unknown>
  const count = (v: unknown) => (typeof v === 'object' && v !== null ? Object.keys(v).length : 0)
  const nodes = count(tree.activities) + count(tree.gateways)
  if (nodes > TREE_LIMITS.nodes)
    return `pipeline tree has ${nodes} activities and gateways: at most ${TREE_LIMITS.nodes} (the limit)`
  const flows = count(tree.flows)
  if (flows > TREE_LIMITS.flows)
    return `pipeline tree has ${flows} flows: at most ${TREE_LIMITS.flows} (the limit)`
  const constants = count(tree.constants)
  if (constants > TREE_LIMITS.constants)
    return `pipeline tree has ${constants} constants: at most ${TREE_LIMITS.constants} (the limit)`
  return undefined
}

/**
 * Checks a pipeline tree against every rule of a bk-sops pipeline tree and returns it parsed, with its graph,
 * or the first rule it breaks, naming the node, flow or constant.
 */
export function validatePipelineTree(
  input: unknown,
  opts: { hasComponent(code: string): boolean },
): PipelineValidation {
  const tooLarge = checkSize(input)
  if (tooLarge) return { ok: false, message: tooLarge }
  const parsed = PipelineTreeSchema.safeParse(input)
  if (!parsed.success) {
    const [issue] = parsed.error.issues
    if (issue?.code === 'custom') return { ok: false, message: issue.message }
    const where = issue?.path.length ? ` ${issue.path.join('.')}` : ''
    return { ok: false, message: `invalid pipeline tree${where}: ${issue?.message}` }
  }
  const tree = parsed.data
  const problem = checkIds(tree)
  if (problem) return { ok: false, message: problem }
  const graph = buildGraph(tree)
  const message =
    checkFlows(graph) ??
    checkDegrees(graph) ??
    checkReachability(graph) ??
    checkForks(graph) ??
    checkConditions(graph) ??
    checkComponents(tree, opts.hasComponent) ??
    checkReferences(tree)
  if (message) return { ok: false, message }
  const constants = resolveConstants(tree.constants)
  if (!constants.ok) return constants
  return { ok: true, tree, graph }
}

function checkIds(tree: PipelineTree): string | undefined {
  const keyed = [
    ['activity', tree.activities],
    ['gateway', tree.gateways],
    ['flow', tree.flows],
  ] as const
  for (const [what, record] of keyed) {
    for (const [key, { id }] of Object.entries(record)) {
      if (key !== id) return `${what} key ${key} does not match its id ${id}`
    }
  }
  for (const [key, constant] of Object.entries(tree.constants)) {
    if (!CONSTANT_KEY.test(key)) return `constant key ${key} must have the form \${name}`
    if (key !== constant.key) return `constant key ${key} does not match its key field ${constant.key}`
  }
  const seen = new Set<string>()
  const ids = [
    tree.start_event.id,
    tree.end_event.id,
    ...Object.keys(tree.activities),
    ...Object.keys(tree.gateways),
  ]
  for (const id of ids) {
    if (seen.has(id)) return `node id ${id} is used by more than one node`
    seen.add(id)
  }
}

/** Every flow joins two nodes, and the nodes' incoming/outgoing lists say exactly that. */
function checkFlows({ nodes, flows }: PipelineGraph): string | undefined {
  const listed = new Map(
    [...nodes.values()].map((node) => [
      node.id,
      { incoming: new Set(node.incoming), outgoing: new Set(node.outgoing) },
    ]),
  )
  for (const flow of flows.values()) {
    const source = listed.get(flow.source)
    const target = listed.get(flow.target)
    if (!source) return `flow ${flow.id} has unknown source ${flow.source}`
    if (!target) return `flow ${flow.id} has unknown target ${flow.target}`
    if (!source.outgoing.has(flow.id))
      return `flow ${flow.id} is missing from the outgoing flows of node ${flow.source}`
    if (!target.incoming.has(flow.id))
      return `flow ${flow.id} is missing from the incoming flows of node ${flow.target}`
  }
  for (const node of nodes.values()) {
    for (const direction of ['incoming', 'outgoing'] as const) {
      const flowIds = node[direction]
      for (const flowId of flowIds) {
        const flow = flows.get(flowId)
        if (!flow) return `node ${node.id} lists unknown ${direction} flow ${flowId}`
        const end = direction === 'incoming' ? flow.target : flow.source
        if (end !== node.id)
          return `node ${node.id} lists ${direction} flow ${flowId}, which belongs to node ${end}`
      }
      if (listed.get(node.id)![direction].size < flowIds.length) {
        const twice = flowIds.find((flowId, index) => flowIds.indexOf(flowId) !== index)
        return `node ${node.id} lists ${direction} flow ${twice} twice`
      }
    }
  }
}

function checkDegrees({ nodes }: PipelineGraph): string | undefined {
  for (const node of nodes.values()) {
    for (const direction of ['incoming', 'outgoing'] as const) {
      const [min, max] = DEGREES[node.kind][direction]
      const count = node[direction].length
      if (count >= min && count <= max) continue
      const rule = max === 0 ? 'no' : min === max ? `exactly ${min}` : `at least ${min}`
      return `${LABELS[node.kind]} ${node.id} must have ${rule} ${direction} flow`
    }
  }
}

/** Nodes visited from `from`, following flows forward or backward. */
function visit(graph: PipelineGraph, from: string, direction: 'outgoing' | 'incoming'): Set<string> {
  const seen = new Set([from])
  const queue = [from]
  for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
    for (const flowId of graph.nodes.get(id)?.[direction] ?? []) {
      const flow = graph.flows.get(flowId)
      const next = direction === 'outgoing' ? flow?.target : flow?.source
      if (next !== undefined && !seen.has(next)) {
        seen.add(next)
        queue.push(next)
      }
    }
  }
  return seen
}

function checkReachability(graph: PipelineGraph): string | undefined {
  const reached = visit(graph, graph.startId, 'outgoing')
  const reaching = visit(graph, graph.endId, 'incoming')
  for (const id of graph.nodes.keys()) {
    if (!reached.has(id)) return `node ${id} is not reachable from the start event`
    if (!reaching.has(id)) return `node ${id} cannot reach the end event`
  }
}

function checkForks(graph: PipelineGraph): string | undefined {
  for (const match of matchForks(graph).values()) if (!match.ok) return match.message
}

const isConditional = (node: GraphNode) => node.kind === 'exclusive' || node.kind === 'conditional_parallel'

function checkConditions(graph: PipelineGraph): string | undefined {
  for (const node of graph.nodes.values()) {
    if (!isConditional(node)) continue
    const conditions = node.gateway?.conditions ?? {}
    const label = `${LABELS[node.kind]} ${node.id}`
    const outgoing = new Set(node.outgoing)
    const stray = Object.keys(conditions).find((flowId) => !outgoing.has(flowId))
    if (stray !== undefined)
      return `${label} has a condition for flow ${stray}, which is not one of its outgoing flows`
    const named = node.gateway?.default_condition?.flow_id
    if (named !== undefined && !outgoing.has(named)) {
      return `${label} names default flow ${named}, which is not one of its outgoing flows`
    }
    const defaults = node.outgoing.filter((flowId) => graph.flows.get(flowId)?.isDefault)
    if (defaults.length > 1) return `${label} has more than one default flow (${defaults.join(', ')})`
    for (const flowId of node.outgoing) {
      if (!Object.hasOwn(conditions, flowId)) {
        if (defaults.includes(flowId)) continue
        return `${label} has no condition for flow ${flowId}`
      }
      try {
        parseExpression(conditions[flowId]!.evaluate)
      } catch (err) {
        return `condition of flow ${flowId} on ${label} does not parse: ${(err as Error).message}`
      }
    }
  }
}

function checkComponents(tree: PipelineTree, hasComponent: (code: string) => boolean): string | undefined {
  for (const activity of Object.values(tree.activities)) {
    if (!isServiceActivity(activity)) continue
    const { id, component } = activity
    if (!hasComponent(component.code)) return `activity ${id} uses unknown component ${component.code}`
  }
}

/** Every `${var}` read by an input, a condition or a constant, and every output, is a constant. */
function checkReferences(tree: PipelineTree): string | undefined {
  const has = (key: string) => Object.hasOwn(tree.constants, key)
  const undefinedIn = (references: string[]) =>
    references.find((ref) => constantForReference(ref, has) === undefined)
  for (const activity of Object.values(tree.activities)) {
    const data = isServiceActivity(activity) ? activity.component.data : activity.constants
    const what = isServiceActivity(activity) ? 'input' : 'constant'
    for (const [key, input] of Object.entries(data)) {
      const missing = undefinedIn(referencesIn(input.value))
      if (missing) return `${what} ${key} of activity ${activity.id} references undefined constant ${missing}`
    }
  }
  for (const gateway of Object.values(tree.gateways)) {
    if (gateway.type !== 'ExclusiveGateway' && gateway.type !== 'ConditionalParallelGateway') continue
    for (const [flowId, { evaluate }] of Object.entries(gateway.conditions ?? {})) {
      const missing = undefinedIn(expressionReferences(evaluate).map((name) => `\${${name}}`))
      if (missing)
        return `condition of flow ${flowId} on gateway ${gateway.id} references undefined constant ${missing}`
    }
  }
  for (const [key, constant] of Object.entries(tree.constants)) {
    const missing = undefinedIn(referencesIn(constant.value))
    if (missing) return `constant ${key} references undefined constant ${missing}`
    if (constant.source_type !== 'component_outputs' && constant.source_type !== 'component_inputs') continue
    const stranger = Object.keys(constant.source_info ?? {}).find(
      (nodeId) => !Object.hasOwn(tree.activities, nodeId),
    )
    if (stranger !== undefined) return `constant ${key} takes its value from unknown activity ${stranger}`
  }
  const output = tree.outputs.find((key) => !has(key))
  if (output !== undefined) return `output ${output} is not a constant of the tree`
}
