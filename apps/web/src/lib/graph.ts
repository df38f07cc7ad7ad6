import { buildGraph, type NodeKind, type NodeState, PipelineTreeSchema } from '@stdops/core'

/**
 * A pipeline tree as the canvas draws it: every node (events, activities, gateways) and every
 * flow, read with the same schema and graph code the server validates trees with.
 */

export interface DrawNode {
  id: string
  name: string
  kind: NodeKind
  /** an activity's component code */
  code: string | null
  retryable: boolean
  skippable: boolean
  /** the tree's own drawing position (bk-sops's `location`), when it has one */
  location: { x: number; y: number } | null
}

export interface DrawEdge {
  id: string
  source: string
  target: string
  isDefault: boolean
  /** a gateway's condition on this flow */
  condition: string | null
}

export interface DrawGraph {
  nodes: DrawNode[]
  edges: DrawEdge[]
  byId: Map<string, DrawNode>
}

function locations(tree: unknown): Map<string, { x: number; y: number }> {
  const out = new Map<string, { x: number; y: number }>()
  const raw = (tree as { location?: unknown }).location
  if (!Array.isArray(raw)) return out
  for (const item of raw) {
    const l = item as { id?: unknown; x?: unknown; y?: unknown }
    if (typeof l.id === 'string' && typeof l.x === 'number' && typeof l.y === 'number')
      out.set(l.id, { x: l.x, y: l.y })
  }
  return out
}

/** The drawable graph of a tree, or null when it is not a pipeline tree at all. */
export function toDrawGraph(tree: unknown): DrawGraph | null {
  const parsed = PipelineTreeSchema.safeParse(tree)
  if (!parsed.success) return null
  const graph = buildGraph(parsed.data)
  const where = locations(tree)
  const nodes: DrawNode[] = [...graph.nodes.values()].map((n) => ({
    id: n.id,
    name: n.name,
    kind: n.kind,
    code: n.activity?.component.code ?? null,
    retryable: n.activity?.retryable !== false,
    skippable: n.activity?.skippable !== false,
    location: where.get(n.id) ?? null,
  }))
  const edges: DrawEdge[] = [...graph.flows.values()].map((f) => ({
    id: f.id,
    source: f.source,
    target: f.target,
    isDefault: f.isDefault,
    condition: graph.nodes.get(f.source)?.gateway?.conditions?.[f.id]?.evaluate ?? null,
  }))
  return { nodes, edges, byId: new Map(nodes.map((n) => [n.id, n])) }
}

const CHOOSING: ReadonlySet<NodeKind> = new Set(['exclusive', 'conditional_parallel'])

/**
 * The nodes that will not run: once the task has ended, every node it never reached; while it
 * runs, the nodes only reachable through flows a gateway ruled out. A flow is ruled out when its
 * gateway chose (finished) without taking it, or when its source will not run; a node is ruled
 * out when every flow into it is. Nodes on a loop that could still come round are left alone.
 */
export function wontRun(
  graph: DrawGraph,
  stateOf: (id: string) => NodeState | undefined,
  taskEnded: boolean,
): Set<string> {
  const out = new Set<string>()
  if (taskEnded) {
    for (const n of graph.nodes) if (stateOf(n.id) === undefined) out.add(n.id)
    return out
  }
  const incoming = new Map<string, DrawEdge[]>()
  for (const e of graph.edges) incoming.set(e.target, [...(incoming.get(e.target) ?? []), e])
  const dead = (e: DrawEdge) => {
    if (out.has(e.source)) return true
    const source = graph.byId.get(e.source)
    return (
      source !== undefined &&
      CHOOSING.has(source.kind) &&
      stateOf(source.id) === 'FINISHED' &&
      stateOf(e.target) === undefined
    )
  }
  for (let changed = true; changed; ) {
    changed = false
    for (const n of graph.nodes) {
      if (out.has(n.id) || stateOf(n.id) !== undefined) continue
      const into = incoming.get(n.id) ?? []
      if (into.length > 0 && into.every(dead)) {
        out.add(n.id)
        changed = true
      }
    }
  }
  return out
}
