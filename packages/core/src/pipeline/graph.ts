import { matchForks } from './forks'
import type { Activity, Gateway, GatewayType, PipelineTree, SubProcess } from './schema'

export type NodeKind =
  | 'start'
  | 'end'
  | 'activity'
  | 'parallel'
  | 'exclusive'
  | 'conditional_parallel'
  | 'converge'
  | 'subprocess'

export type GraphNode = {
  id: string
  name: string
  kind: NodeKind
  incoming: string[]
  outgoing: string[]
  /**
   * For parallel and conditional parallel forks: the converge gateway that joins their branches.
   * It waits for as many arrivals as the fork started branches. A converge that is no fork's
   * `convergeId` only merges exclusive branches (or a loop) and passes each arrival on.
   */
  convergeId?: string
  activity?: Activity
  gateway?: Gateway
  subprocess?: SubProcess
}

export type GraphFlow = { id: string; source: string; target: string; isDefault: boolean }

export type PipelineGraph = {
  startId: string
  endId: string
  nodes: Map<string, GraphNode>
  flows: Map<string, GraphFlow>
  /** A task's graph with its subprocesses laid in (buildTaskGraph): each child tree's parts. */
  scopes?: Map<string, ChildScope>
  /** node id → the SubProcess node whose child tree holds it (absent: the task's own tree). */
  parentOf?: Map<string, string>
}

/** One SubProcess's child tree inside a task graph. */
export type ChildScope = {
  /** The SubProcess node. */
  id: string
  startId: string
  endId: string
  tree: PipelineTree
}

const GATEWAY_KINDS: Record<GatewayType, NodeKind> = {
  ParallelGateway: 'parallel',
  ExclusiveGateway: 'exclusive',
  ConditionalParallelGateway: 'conditional_parallel',
  ConvergeGateway: 'converge',
}

const isConditional = (node: GraphNode | undefined) =>
  node?.kind === 'exclusive' || node?.kind === 'conditional_parallel'

/**
 * The tree as nodes and flows. Works on any parsed tree (validation reports what is wrong with it);
 * `convergeId` is set on each fork whose branches meet properly.
 */
export function buildGraph(tree: PipelineTree): PipelineGraph {
  const { start_event: start, end_event: end } = tree
  const nodes = new Map<string, GraphNode>()
  const add = (node: GraphNode) => nodes.set(node.id, node)
  add({ id: start.id, name: start.name, kind: 'start', incoming: start.incoming, outgoing: [start.outgoing] })
  add({ id: end.id, name: end.name, kind: 'end', incoming: end.incoming, outgoing: end.outgoing })
  for (const activity of Object.values(tree.activities)) {
    const { id, name, incoming, outgoing } = activity
    if (activity.type === 'SubProcess') {
      add({ id, name, kind: 'subprocess', incoming, outgoing: [outgoing], subprocess: activity })
    } else add({ id, name, kind: 'activity', incoming, outgoing: [outgoing], activity })
  }
  for (const gateway of Object.values(tree.gateways)) {
    const { id, name, incoming, outgoing, type } = gateway
    add({ id, name, kind: GATEWAY_KINDS[type], incoming, outgoing, gateway })
  }

  const flows = new Map<string, GraphFlow>()
  for (const { id, source, target, is_default } of Object.values(tree.flows)) {
    const from = nodes.get(source)
    const isDefault = isConditional(from) && (is_default || from?.gateway?.default_condition?.flow_id === id)
    flows.set(id, { id, source, target, isDefault })
  }

  const graph = { startId: start.id, endId: end.id, nodes, flows }
  for (const [forkId, match] of matchForks(graph)) {
    const fork = nodes.get(forkId)
    if (fork && match.ok) fork.convergeId = match.convergeId
  }
  return graph
}

/**
 * The flows a node leaves by once it is done. Events, activities and converges have one; a parallel
 * gateway takes all; an exclusive gateway the first (in `outgoing` order) whose condition holds; a
 * conditional parallel gateway every one whose condition holds. Either falls back to its default
 * flow; with none, or when a condition cannot be evaluated, the node is refused.
 */
export function selectOutgoing(
  graph: PipelineGraph,
  nodeId: string,
  evalCondition: (expr: string) => boolean,
): { ok: true; flowIds: string[] } | { ok: false; message: string } {
  const node = graph.nodes.get(nodeId)
  if (!node) return { ok: false, message: `node ${nodeId} does not exist` }
  if (!isConditional(node)) return { ok: true, flowIds: [...node.outgoing] }

  const conditions = node.gateway?.conditions ?? {}
  const taken: string[] = []
  for (const flowId of node.outgoing) {
    if (!Object.hasOwn(conditions, flowId)) continue
    try {
      if (!evalCondition(conditions[flowId]!.evaluate)) continue
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err)
      return { ok: false, message: `condition of flow ${flowId} on gateway ${node.id} failed: ${reason}` }
    }
    taken.push(flowId)
    if (node.kind === 'exclusive') break
  }
  if (taken.length > 0) return { ok: true, flowIds: taken }

  const fallback = node.outgoing.find((flowId) => graph.flows.get(flowId)?.isDefault)
  if (fallback) return { ok: true, flowIds: [fallback] }
  const label = node.kind === 'exclusive' ? 'exclusive gateway' : 'conditional parallel gateway'
  return { ok: false, message: `${label} ${node.id} has no condition that holds and no default` }
}
