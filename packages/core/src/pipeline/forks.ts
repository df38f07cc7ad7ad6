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
 * them; nothing may enter the fork's block (what lies between the fork and C) from outside, and no
 * loop may leave it.
 */

export type ForkMatch = { ok: true; convergeId: string } | { ok: false; message: string }

type Walk =
  | { kind: 'converge'; convergeId: string; arrivals: ReadonlySet<string> }
  | { kind: 'end' | 'loop' }
  | { kind: 'error'; message: string }

const isFork = (node: GraphNode) => node.kind === 'parallel' || node.kind === 'conditional_parallel'

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
  const matches = new Map<string, ForkMatch>()

  /** Where a flow leads; memoised for each flow of the chain of activities it passes along. */
  const walkFlow = (first: string): Walk => {
    const passed: string[] = []
    let flowId = first
    let walk = walks.get(flowId)
    while (walk === undefined) {
      passed.push(flowId)
      if (loopFlows.has(flowId)) {
        walk = { kind: 'loop' }
        break
      }
      const node = graph.nodes.get(graph.flows.get(flowId)?.target ?? '')
      // A SubProcess is one step, as an activity is (its child tree is a whole of its own).
      if (node?.kind !== 'activity' && node?.kind !== 'subprocess') {
        walk = walkNode(flowId, node)
        break
      }
      flowId = node.outgoing[0] ?? ''
      walk = walks.get(flowId)
    }
    for (const id of passed) walks.set(id, walk)
    return walk
  }

  const walkNode = (flowId: string, node: GraphNode | undefined): Walk => {
    switch (node?.kind) {
      case 'start':
        return { kind: 'error', message: `flow ${flowId} leads back to the start event` }
      case 'end':
        return { kind: 'end' }
      case 'converge':
        return { kind: 'converge', convergeId: node.id, arrivals: new Set([flowId]) }
      case 'parallel':
      case 'conditional_parallel': {
        const match = matchFork(node)
        return match.ok
          ? pastConverge(graph.nodes.get(match.convergeId)!)
          : { kind: 'error', message: match.message }
      }
      case 'exclusive':
        return walkExclusive(node)
      default: // no such node (walkFlow follows activities itself)
        return { kind: 'error', message: `flow ${flowId} does not lead to a node` }
    }
  }

  /** From a converge gateway on along its one outgoing flow. */
  const pastConverge = (converge: GraphNode): Walk => {
    const [next] = converge.outgoing
    if (next === undefined || converge.outgoing.length !== 1) {
      return { kind: 'error', message: `converge gateway ${converge.id} must have exactly 1 outgoing flow` }
    }
    return walkFlow(next)
  }

  const walkExclusive = (gateway: GraphNode): Walk => {
    const converges = new Set<string>()
    const arrivals = new Set<string>()
    let reachesEnd = false
    for (const flowId of gateway.outgoing) {
      const branch = walkFlow(flowId)
      if (branch.kind === 'error') return branch
      if (branch.kind === 'end') reachesEnd = true
      if (branch.kind === 'converge') {
        converges.add(branch.convergeId)
        for (const arrival of branch.arrivals) arrivals.add(arrival)
      }
    }
    if (reachesEnd) return { kind: 'end' }
    const [convergeId, ...others] = converges
    if (convergeId === undefined) return { kind: 'loop' }
    if (others.length > 0) {
      const ids = [...converges].join(', ')
      return {
        kind: 'error',
        message: `branches of exclusive gateway ${gateway.id} meet different converge gateways (${ids})`,
      }
    }
    const converge = graph.nodes.get(convergeId)!
    const closes =
      converge.incoming.length === arrivals.size && converge.incoming.every((id) => arrivals.has(id))
    return closes ? pastConverge(converge) : { kind: 'converge', convergeId, arrivals }
  }

  const matchFork = (fork: GraphNode): ForkMatch => {
    let match = matches.get(fork.id)
    if (!match) {
      match = matchForkUncached(fork)
      matches.set(fork.id, match)
    }
    return match
  }

  const matchForkUncached = (fork: GraphNode): ForkMatch => {
    const refuse = (message: string) => ({ ok: false as const, message })
    const converges = new Set<string>()
    const arrivals = new Set<string>()
    for (const flowId of fork.outgoing) {
      const branch = walkFlow(flowId)
      switch (branch.kind) {
        case 'error':
          return refuse(branch.message)
        case 'end':
          return refuse(
            `gateway ${fork.id}: branch through flow ${flowId} reaches the end event without a converge gateway`,
          )
        case 'loop':
          return refuse(`gateway ${fork.id}: branch through flow ${flowId} never reaches a converge gateway`)
        case 'converge':
          converges.add(branch.convergeId)
          for (const arrival of branch.arrivals) arrivals.add(arrival)
      }
    }
    const [convergeId, ...others] = converges
    if (convergeId === undefined) return refuse(`gateway ${fork.id} has no outgoing flow`)
    if (others.length > 0) {
      return refuse(
        `gateway ${fork.id}: branches meet different converge gateways (${[...converges].join(', ')})`,
      )
    }
    const stranger = graph.nodes.get(convergeId)!.incoming.find((flowId) => !arrivals.has(flowId))
    if (stranger !== undefined) {
      return refuse(
        `converge gateway ${convergeId} joins flow ${stranger}, which is not a branch of gateway ${fork.id}`,
      )
    }
    const named = fork.gateway?.converge_gateway_id
    if (named !== undefined && named !== convergeId) {
      return refuse(
        `gateway ${fork.id} names converge gateway ${named}, but its branches meet at ${convergeId}`,
      )
    }
    return checkBlock(fork, convergeId) ?? { ok: true, convergeId }
  }

  /** The nodes between a fork and its converge are entered only from the fork, and loops stay inside. */
  const checkBlock = (fork: GraphNode, convergeId: string): ForkMatch | undefined => {
    const inside = new Set<string>()
    const queue = [fork]
    for (let node = queue.pop(); node; node = queue.pop()) {
      for (const flowId of node.outgoing) {
        const target = graph.flows.get(flowId)?.target
        if (loopFlows.has(flowId) || target === undefined || target === convergeId || inside.has(target))
          continue
        inside.add(target)
        queue.push(graph.nodes.get(target)!)
      }
    }
    for (const nodeId of inside) {
      const node = graph.nodes.get(nodeId)!
      for (const flowId of node.incoming) {
        const source = graph.flows.get(flowId)?.source
        if (source !== fork.id && !inside.has(source ?? '')) {
          return {
            ok: false,
            message: `node ${nodeId} inside gateway ${fork.id} is entered from outside by flow ${flowId}`,
          }
        }
      }
      for (const flowId of node.outgoing) {
        const target = graph.flows.get(flowId)?.target
        if (loopFlows.has(flowId) && !inside.has(target ?? '')) {
          return { ok: false, message: `flow ${flowId} loops from inside gateway ${fork.id} to outside it` }
        }
      }
    }
  }

  for (const node of graph.nodes.values()) if (isFork(node)) matchFork(node)
  return matches
}
