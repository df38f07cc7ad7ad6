import { Graph, layout } from '@dagrejs/dagre'
import type { DrawGraph, DrawNode } from './graph'

/** The size each kind of node is drawn at (the canvas's node components use the same). */
export function nodeSize(node: Pick<DrawNode, 'kind'>): { width: number; height: number } {
  switch (node.kind) {
    case 'activity':
      return { width: 184, height: 56 }
    case 'start':
    case 'end':
      return { width: 40, height: 40 }
    default:
      return { width: 48, height: 48 }
  }
}

export const LAYOUT_MARK = 'stdops:layout'

/**
 * Top-left positions of every node: the tree's own `location` coordinates when every node has
 * one (as bk-sops's editor saves them), otherwise a left-to-right dagre layout. Each call leaves
 * a `stdops:layout` performance measure, so a page (and its tests) can tell a repaint from a new
 * layout.
 */
export function layoutGraph(graph: DrawGraph): Map<string, { x: number; y: number }> {
  const started = performance.now()
  const positions = new Map<string, { x: number; y: number }>()
  if (graph.nodes.length > 0 && graph.nodes.every((n) => n.location !== null)) {
    for (const n of graph.nodes) positions.set(n.id, n.location!)
  } else {
    const g = new Graph()
    g.setGraph({ rankdir: 'LR', nodesep: 28, ranksep: 56, marginx: 16, marginy: 16 })
    g.setDefaultEdgeLabel(() => ({}))
    for (const n of graph.nodes) g.setNode(n.id, nodeSize(n))
    for (const e of graph.edges) g.setEdge(e.source, e.target)
    layout(g)
    for (const n of graph.nodes) {
      const p = g.node(n.id) as { x: number; y: number }
      const { width, height } = nodeSize(n)
      positions.set(n.id, { x: p.x - width / 2, y: p.y - height / 2 })
    }
  }
  performance.measure(LAYOUT_MARK, { start: started, end: performance.now() })
  return positions
}
