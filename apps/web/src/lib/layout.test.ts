import { createTreeBuilder } from '@stdops/core/testing'
import { describe, expect, it } from 'vitest'
import { toDrawGraph } from './graph'
import { LAYOUT_MARK, layoutGraph, nodeSize } from './layout'

/** A tree without the builder's own drawing coordinates, so that dagre lays it out. */
function unlocated(tree: Record<string, unknown>) {
  const { location: _location, line: _line, ...rest } = tree
  return rest
}

function chainOf(n: number) {
  const t = createTreeBuilder()
  const ids = Array.from({ length: n }, (_, i) => t.activity('set_variables', { name: `step ${i}` }))
  t.chain(t.startId, ...ids, t.endId)
  return { tree: unlocated(t.build()), ids, start: t.startId, end: t.endId }
}

const overlap = (a: { x: number; y: number; w: number; h: number }, b: typeof a) =>
  a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h

describe('layoutGraph', () => {
  it('lays a chain out left to right, start first, end last', () => {
    const { tree, ids, start, end } = chainOf(3)
    const pos = layoutGraph(toDrawGraph(tree)!)
    const xs = [start, ...ids, end].map((id) => pos.get(id)!.x)
    expect([...xs].sort((a, b) => a - b)).toEqual(xs)
  })

  it('places the lanes of a fork side by side without overlaps', () => {
    const t = createTreeBuilder()
    const fork = t.gateway('ParallelGateway')
    const join = t.gateway('ConvergeGateway')
    const lanes = [0, 1, 2].map(() => t.activity('sleep_timer'))
    t.flow(t.startId, fork)
    for (const l of lanes) {
      t.flow(fork, l)
      t.flow(l, join)
    }
    t.flow(join, t.endId)
    const g = toDrawGraph(unlocated(t.build()))!
    const pos = layoutGraph(g)
    const boxes = g.nodes.map((n) => ({ ...pos.get(n.id)!, w: nodeSize(n).width, h: nodeSize(n).height }))
    for (let i = 0; i < boxes.length; i++)
      for (let j = i + 1; j < boxes.length; j++) expect(overlap(boxes[i]!, boxes[j]!)).toBe(false)
    const laneXs = new Set(lanes.map((l) => pos.get(l)!.x))
    expect(laneXs.size).toBe(1) // one rank
    expect(new Set(lanes.map((l) => pos.get(l)!.y)).size).toBe(3)
  })

  it('uses the tree’s own coordinates when every node has them, and records each layout', () => {
    const { tree, ids, start, end } = chainOf(2)
    const location = [start, ...ids, end].map((id, i) => ({ id, x: i * 100, y: 50 }))
    const before = performance.getEntriesByName(LAYOUT_MARK).length
    const pos = layoutGraph(toDrawGraph({ ...tree, location })!)
    expect(pos.get(ids[1]!)).toEqual({ x: 200, y: 50 })
    expect(performance.getEntriesByName(LAYOUT_MARK).length).toBe(before + 1)
  })

  it('lays out 500 nodes', () => {
    const { tree } = chainOf(498)
    const pos = layoutGraph(toDrawGraph(tree)!)
    expect(pos.size).toBe(500)
  })
})
