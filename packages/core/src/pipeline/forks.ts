import type { GraphNode, PipelineGraph } from './graph'

/**
 * Matching forks (parallel and conditional parallel gateways) with their converge gateways.
 *
 * Loops are set aside first: a depth-first search from the start event marks each flow that goes
 * back to a node on the current path as a loop flow; without them the graph has no cycle. Then
 * each branch of a fork is walked forward until it meets a converge gateway:
 * - a nested fork is matched first and the walk jumps past its converge;
 * - an exclusive gateway's branches are walked too (those that only loop back are ignored); when
 *   all of that converge's incoming flows come from the exclusive gateway, it closes the exclusive
 *   block and the walk goes on past it; otherwise the exclusive branches end at the fork's converge;
 * - reaching the end event, or only looping, means the branch never converges.
 * A fork matches converge C when all its branches meet C and every incoming flow of C comes from
 * them; nothing may enter the fork's block from outside, and no loop may leave it.
 */

export type ForkMatch = { ok: true; convergeId: string } | { ok: false; message: string }

type Found = { nodes: ReadonlySet<string>; loops: ReadonlySet<string> }
type Walk =
  | (Found & { kind: 'converge'; convergeId: string; arrivals: ReadonlySet<string> })
  | (Found & { kind: 'end' | 'loop' })
  | { kind: 'error'; message: string }

const NOTHING: Found = { nodes: new Set(), loops: new Set() }
const isFork = (node: GraphNode) => node.kind === 'parallel' || node.kind === 'conditional_parallel'
const union = <T>(...sets: Iterable<T>[]): Set<T> => new Set(sets.flatMap((s) => [...s]))
const sameSet = <T>(a: ReadonlySet<T>, b: ReadonlySet<T>) => a.size === b.size && [...a].every((x) => b.has(x))

/** Flows that close a cycle, found by a depth-first search from the start (then from any node left). */
function findLoopFlows(graph: PipelineGraph): Set<string> {
  const state = new Map<string, 'open' | 'done'>()
  const loops = new Set<string>()
  for (const root of [graph.startId, ...graph.nodes.keys()]) {
    if (state.has(root) || !graph.nodes.has(root)) continue
    state.set(root, 'open')
    const stack = [{ id: root, next: 0 }]
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!
      const flowId = graph.nodes.get(top.id)?.outgoing[top.next++]
      if (flowId === undefined) {
        state.set(top.id, 'done')
        stack.pop()
        continue
      }
      const target = graph.flows.get(flowId)?.target
      if (target === undefined || !graph.nodes.has(target)) continue
      if (state.get(target) === 'open') loops.add(flowId)
      else if (!state.has(target)) {
        state.set(target, 'open')
        stack.push({ id: target, next: 0 })
      }
    }
  }
  return loops
}

export function matchForks(graph: PipelineGraph): Map<string, ForkMatch> {
  const loopFlows = findLoopFlows(graph)
  const walks = new Map<string, Walk>()
  const blocks = new Map<string, (ForkMatch & { ok: false }) | { ok: true; convergeId: string; nodes: Set<string> }>()

  const widen = (walk: Walk, found: Found): Walk =>
    walk.kind === 'error'
      ? walk
      : { ...walk, nodes: union(walk.nodes, found.nodes), loops: union(walk.loops, found.loops) }

  /** From a converge gateway on along its one outgoing flow. */
  const pastConverge = (converge: GraphNode, found: Found): Walk => {
    const [next] = converge.outgoing
    if (next === undefined || converge.outgoing.length !== 1) {
      return { kind: 'error', message: `converge gateway ${converge.id} must have exactly 1 outgoing flow` }
    }
    return widen(walkFlow(next), { nodes: union(found.nodes, [converge.id]), loops: found.loops })
  }

  const walkFlow = (flowId: string): Walk => {
    let walk = walks.get(flowId)
    if (!walk) {
      walk = walkFlowUncached(flowId)
      walks.set(flowId, walk)
    }
    return walk
  }

  const walkFlowUncached = (flowId: string): Walk => {
    if (loopFlows.has(flowId)) return { kind: 'loop', nodes: new Set(), loops: new Set([flowId]) }
    const flow = graph.flows.get(flowId)
    const node = flow && graph.nodes.get(flow.target)
    if (!node) return { kind: 'error', message: `flow ${flowId} does not lead to a node` }
    switch (node.kind) {
      case 'converge':
        return { kind: 'converge', convergeId: node.id, arrivals: new Set([flowId]), ...NOTHING }
      case 'end':
        return { kind: 'end', ...NOTHING }
      case 'start':
        return { kind: 'error', message: `flow ${flowId} leads back to the start event` }
      case 'activity':
        return widen(walkFlow(node.outgoing[0] ?? ''), { nodes: new Set([node.id]), loops: new Set() })
      case 'parallel':
      case 'conditional_parallel': {
        const block = matchBlock(node)
        if (!block.ok) return { kind: 'error', message: block.message }
        return pastConverge(graph.nodes.get(block.convergeId)!, { nodes: union(block.nodes, [node.id]), loops: new Set() })
      }
      case 'exclusive':
        return walkExclusive(node)
    }
  }

  const walkExclusive = (gateway: GraphNode): Walk => {
    const branches = gateway.outgoing.map(walkFlow)
    let found: Found = { nodes: new Set([gateway.id]), loops: new Set() }
    const converges = new Set<string>()
    let arrivals = new Set<string>()
    let reachesEnd = false
    for (const branch of branches) {
      if (branch.kind === 'error') return branch
      found = { nodes: union(found.nodes, branch.nodes), loops: union(found.loops, branch.loops) }
      if (branch.kind === 'end') reachesEnd = true
      if (branch.kind === 'converge') {
        converges.add(branch.convergeId)
        arrivals = union(arrivals, branch.arrivals)
      }
    }
    if (reachesEnd) return { kind: 'end', ...found }
    const [convergeId, ...others] = converges
    if (convergeId === undefined) return { kind: 'loop', ...found }
    if (others.length > 0) {
      const ids = [...converges].join(', ')
      return { kind: 'error', message: `branches of exclusive gateway ${gateway.id} meet different converge gateways (${ids})` }
    }
    const converge = graph.nodes.get(convergeId)!
    if (sameSet(arrivals, new Set(converge.incoming))) return pastConverge(converge, found)
    return { kind: 'converge', convergeId, arrivals, ...found }
  }

  const matchBlock = (fork: GraphNode) => {
    let block = blocks.get(fork.id)
    if (!block) {
      block = matchBlockUncached(fork)
      blocks.set(fork.id, block)
    }
    return block
  }

  const matchBlockUncached = (fork: GraphNode) => {
    const refuse = (message: string) => ({ ok: false as const, message })
    const converges = new Set<string>()
    let nodes = new Set<string>()
    let loops = new Set<string>()
    let arrivals = new Set<string>()
    for (const flowId of fork.outgoing) {
      const branch = walkFlow(flowId)
      switch (branch.kind) {
        case 'error':
          return refuse(branch.message)
        case 'end':
          return refuse(`gateway ${fork.id}: branch through flow ${flowId} reaches the end event without a converge gateway`)
        case 'loop':
          return refuse(`gateway ${fork.id}: branch through flow ${flowId} never reaches a converge gateway`)
        case 'converge':
          converges.add(branch.convergeId)
          arrivals = union(arrivals, branch.arrivals)
          nodes = union(nodes, branch.nodes)
          loops = union(loops, branch.loops)
      }
    }
    const [convergeId, ...others] = converges
    if (convergeId === undefined) return refuse(`gateway ${fork.id} has no outgoing flow`)
    if (others.length > 0) {
      return refuse(`gateway ${fork.id}: branches meet different converge gateways (${[...converges].join(', ')})`)
    }
    const converge = graph.nodes.get(convergeId)!
    const stranger = converge.incoming.find((flowId) => !arrivals.has(flowId))
    if (stranger !== undefined) {
      return refuse(`converge gateway ${convergeId} joins flow ${stranger}, which is not a branch of gateway ${fork.id}`)
    }
    const named = fork.gateway?.converge_gateway_id
    if (named !== undefined && named !== convergeId) {
      return refuse(`gateway ${fork.id} names converge gateway ${named}, but its branches meet at ${convergeId}`)
    }
    for (const nodeId of nodes) {
      for (const flowId of graph.nodes.get(nodeId)?.incoming ?? []) {
        const source = graph.flows.get(flowId)?.source
        if (source !== fork.id && (source === undefined || !nodes.has(source))) {
          return refuse(`node ${nodeId} inside gateway ${fork.id} is entered from outside by flow ${flowId}`)
        }
      }
    }
    for (const flowId of loops) {
      const target = graph.flows.get(flowId)?.target
      if (target === undefined || !nodes.has(target)) {
        return refuse(`flow ${flowId} loops from inside gateway ${fork.id} to outside it`)
      }
    }
    return { ok: true as const, convergeId, nodes }
  }

  const matches = new Map<string, ForkMatch>()
  for (const node of graph.nodes.values()) {
    if (!isFork(node)) continue
    const block = matchBlock(node)
    matches.set(node.id, block.ok ? { ok: true, convergeId: block.convergeId } : block)
  }
  return matches
}
