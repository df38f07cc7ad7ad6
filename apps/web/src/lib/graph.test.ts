import type { NodeState } from '@stdops/core'
import { createTreeBuilder } from '@stdops/core/testing'
import { describe, expect, it } from 'vitest'
import { toDrawGraph, wontRun } from './graph'

/** start → exclusive(x) → [a | b] → converge → c → end */
function branching() {
  const t = createTreeBuilder()
  const gw = t.gateway('ExclusiveGateway')
  const a = t.activity('set_variables', { name: 'A' })
  const b = t.activity('set_variables', { name: 'B' })
  const join = t.gateway('ConvergeGateway')
  const c = t.activity('set_variables', { name: 'C' })
  t.flow(t.startId, gw)
  t.flow(gw, a, { condition: '${x} == 1' })
  t.flow(gw, b, { isDefault: true })
  t.flow(a, join)
  t.flow(b, join)
  t.chain(join, c, t.endId)
  t.constant('x', '1')
  return { tree: t.build(), ids: { start: t.startId, gw, a, b, join, c, end: t.endId } }
}

describe('toDrawGraph', () => {
  it('draws every node with its kind and every flow with its condition', () => {
    const { tree, ids } = branching()
    const g = toDrawGraph(tree)!
    expect(g.nodes).toHaveLength(7)
    expect(g.byId.get(ids.gw)?.kind).toBe('exclusive')
    expect(g.byId.get(ids.join)?.kind).toBe('converge')
    expect(g.byId.get(ids.a)).toMatchObject({
      kind: 'activity',
      name: 'A',
      code: 'set_variables',
      retryable: true,
    })
    const fromGw = g.edges.filter((e) => e.source === ids.gw)
    expect(fromGw.map((e) => [e.target, e.condition, e.isDefault]).sort()).toEqual(
      [
        [ids.a, '${x} == 1', false],
        [ids.b, null, true],
      ].sort(),
    )
  })

  it('keeps the tree’s own location coordinates when it has them', () => {
    const { tree, ids } = branching()
    const located = { ...tree, location: [{ id: ids.a, x: 300, y: 120, type: 'tasknode' }] }
    expect(toDrawGraph(located)!.byId.get(ids.a)?.location).toEqual({ x: 300, y: 120 })
    expect(toDrawGraph(located)!.byId.get(ids.b)?.location).toBeNull()
  })

  it('is null for something that is not a pipeline tree', () => {
    expect(toDrawGraph({ nodes: [] })).toBeNull()
  })
})

describe('wontRun', () => {
  const { tree, ids } = branching()
  const g = toDrawGraph(tree)!
  const states = (s: Record<string, NodeState>) => (id: string) => s[id]

  it('marks the branch an exclusive gateway did not take, and nothing past the converge', () => {
    const out = wontRun(
      g,
      states({ [ids.start]: 'FINISHED', [ids.gw]: 'FINISHED', [ids.a]: 'RUNNING' }),
      false,
    )
    expect([...out]).toEqual([ids.b])
  })

  it('marks nothing while the gateway has not chosen', () => {
    expect(wontRun(g, states({ [ids.start]: 'FINISHED' }), false).size).toBe(0)
  })

  it('marks every node never reached once the task has ended', () => {
    const out = wontRun(
      g,
      states({ [ids.start]: 'FINISHED', [ids.gw]: 'FINISHED', [ids.a]: 'REVOKED' }),
      true,
    )
    expect([...out].sort()).toEqual([ids.b, ids.join, ids.c, ids.end].sort())
  })

  it('follows a ruled-out branch down to where it rejoins live flows', () => {
    // start → exclusive → [a → a2 → join | b → join] : a taken; b alone is out.
    const t = createTreeBuilder()
    const gw = t.gateway('ExclusiveGateway')
    const a = t.activity('set_variables')
    const b1 = t.activity('set_variables')
    const b2 = t.activity('set_variables')
    const join = t.gateway('ConvergeGateway')
    t.flow(t.startId, gw)
    t.flow(gw, a, { condition: '1 == 1' })
    t.flow(gw, b1, { isDefault: true })
    t.flow(a, join)
    t.chain(b1, b2, join)
    t.chain(join, t.endId)
    const graph = toDrawGraph(t.build())!
    const out = wontRun(graph, states({ [t.startId]: 'FINISHED', [gw]: 'FINISHED', [a]: 'READY' }), false)
    expect([...out].sort()).toEqual([b1, b2].sort())
  })
})
