import { describe, expect, it } from 'vitest'
import {
  excludeTaskNodes,
  exclusionForExecuteList,
  exclusionForSchemes,
  validatePipelineTree,
} from '../src/index'
import { createTreeBuilder } from '../src/testing/trees'

// biome-ignore lint/suspicious/noExplicitAny: the assertions read trees as plain JSON
type J = any

const hasComponent = () => true

/** start → a → b → c → end, all three optional; `${x}` feeds b's input only, `${y}` a constant of `${x}`. */
function threeOptional() {
  const b = createTreeBuilder()
  b.constant('y', 'why')
  b.constant('x', 'ex ${y}')
  b.constant('unused', 'u')
  const a = b.activity('set_variables', { name: 'a', optional: true })
  const mid = b.activity('set_variables', {
    name: 'b',
    optional: true,
    data: { variables: { hook: true, value: { v: '${x}' } } },
  })
  const c = b.activity('set_variables', { name: 'c', optional: true })
  const [f1, f2, f3, f4] = b.chain(b.startId, a, mid, c, b.endId) as [string, string, string, string]
  b.constant('out', '', { source_type: 'component_outputs', source_info: { [mid]: ['v'] } })
  b.output('out')
  return {
    tree: b.build() as Record<string, J>,
    a,
    mid,
    c,
    flows: [f1, f2, f3, f4],
    start: b.startId,
    end: b.endId,
  }
}

describe('excludeTaskNodes', () => {
  it('excluding one of three optional activities keeps the other two and joins the flows around it', () => {
    const t = threeOptional()
    const r = excludeTaskNodes(t.tree, [t.mid])
    if (!r.ok) throw new Error(r.message)
    const tree = r.tree as Record<string, J>
    expect(Object.keys(tree.activities).sort()).toEqual([t.a, t.c].sort())
    // a's outgoing flow (f2) now enters c; b's outgoing flow (f3) is gone
    const [, f2, f3] = t.flows
    expect(tree.flows[f2!]).toMatchObject({ source: t.a, target: t.c })
    expect(tree.flows[f3!]).toBeUndefined()
    expect(tree.activities[t.c].incoming).toEqual([f2])
    // drawing follows: the line retargeted, b's location and its line gone
    expect(tree.line.find((l: J) => l.id === f2).target.id).toBe(t.c)
    expect(tree.line.some((l: J) => l.id === f3)).toBe(false)
    expect(tree.location.some((l: J) => l.id === t.mid)).toBe(false)
    // the tree is valid and the input untouched
    expect(validatePipelineTree(tree, { hasComponent }).ok).toBe(true)
    expect(Object.keys(t.tree.activities)).toHaveLength(3)
  })

  it('drops the constants only the excluded activity referred to and reports them apart', () => {
    const t = threeOptional()
    const r = excludeTaskNodes(t.tree, [t.mid])
    if (!r.ok) throw new Error(r.message)
    const tree = r.tree as Record<string, J>
    expect(Object.keys(r.constantsNotReferred).sort()).toEqual(['${unused}', '${x}', '${y}'])
    // an output-fed constant stays, without the excluded node in its source_info
    expect(Object.keys(tree.constants)).toEqual(['${out}'])
    expect(tree.constants['${out}']).toMatchObject({ index: 0, source_info: {} })
    expect(tree.outputs).toEqual(['${out}'])
  })

  it('keeps constants still referred to, transitively, and renumbers their index', () => {
    const t = threeOptional()
    const r = excludeTaskNodes(t.tree, [t.a])
    if (!r.ok) throw new Error(r.message)
    const constants = (r.tree as Record<string, J>).constants
    expect(Object.keys(constants).sort()).toEqual(['${out}', '${x}', '${y}'])
    expect(
      Object.values(constants)
        .map((c: J) => c.index)
        .sort(),
    ).toEqual([0, 1, 2])
    expect(Object.keys(r.constantsNotReferred)).toEqual(['${unused}'])
  })

  it('excludes consecutive activities and the first and last of a chain', () => {
    const t = threeOptional()
    const r = excludeTaskNodes(t.tree, [t.a, t.mid, t.c])
    if (!r.ok) throw new Error(r.message)
    const tree = r.tree as Record<string, J>
    expect(tree.activities).toEqual({})
    const [f1] = t.flows
    expect(tree.flows[f1!]).toMatchObject({ source: t.start, target: t.end })
    expect(tree.end_event.incoming).toEqual([f1])
    expect(validatePipelineTree(tree, { hasComponent }).ok).toBe(true) // start straight to end runs and finishes
  })

  it('refuses a node that is not optional, and one that is not an activity, naming it', () => {
    const b = createTreeBuilder()
    const fixed = b.activity('set_variables', { optional: false })
    b.chain(b.startId, fixed, b.endId)
    const tree = b.build()
    expect(excludeTaskNodes(tree, [fixed])).toEqual({
      ok: false,
      message: `task node[id=${fixed}] is not optional`,
    })
    expect(excludeTaskNodes(tree, ['nope'])).toEqual({
      ok: false,
      message: 'task node[id=nope] is not in template pipeline tree',
    })
  })

  it('removes a parallel gateway and its converge when every branch was excluded, and only the emptied branch otherwise', () => {
    const b = createTreeBuilder()
    const before = b.activity('set_variables', { name: 'before' })
    const fork = b.gateway('ParallelGateway')
    const join = b.gateway('ConvergeGateway')
    const left = b.activity('set_variables', { name: 'left', optional: true })
    const right = b.activity('set_variables', { name: 'right', optional: true })
    const after = b.activity('set_variables', { name: 'after' })
    b.chain(b.startId, before, fork)
    b.chain(fork, left, join)
    b.chain(fork, right, join)
    b.chain(join, after, b.endId)
    const tree = b.build()

    const one = excludeTaskNodes(tree, [left])
    if (!one.ok) throw new Error(one.message)
    const oneTree = one.tree as Record<string, J>
    expect(Object.keys(oneTree.gateways).sort()).toEqual([fork, join].sort())
    expect(oneTree.gateways[fork].outgoing).toHaveLength(1)
    expect(oneTree.gateways[join].incoming).toHaveLength(1)
    expect(validatePipelineTree(oneTree, { hasComponent }).ok).toBe(true)

    const both = excludeTaskNodes(tree, [left, right])
    if (!both.ok) throw new Error(both.message)
    const bothTree = both.tree as Record<string, J>
    expect(bothTree.gateways).toEqual({})
    expect(Object.keys(bothTree.activities).sort()).toEqual([before, after].sort())
    const checked = validatePipelineTree(bothTree, { hasComponent })
    expect(checked.ok).toBe(true)
    // before now leads straight to after
    const flow = bothTree.flows[bothTree.activities[before].outgoing]
    expect(flow.target).toBe(after)
    expect(bothTree.location.some((l: J) => l.id === fork || l.id === join)).toBe(false)
  })

  it('excluding nothing gives the tree back unchanged', () => {
    const t = threeOptional()
    const r = excludeTaskNodes(t.tree, [])
    expect(r).toEqual({ ok: true, tree: t.tree, constantsNotReferred: {} })
  })
})

describe('exclusion from schemes and from execute lists', () => {
  it('a scheme runs its optional activities and every activity that is not optional', () => {
    const b = createTreeBuilder()
    const fixed = b.activity('set_variables')
    const o1 = b.activity('set_variables', { optional: true })
    const o2 = b.activity('set_variables', { optional: true })
    b.chain(b.startId, fixed, o1, o2, b.endId)
    const tree = b.build()
    expect(exclusionForSchemes(tree, [[fixed, o1]])).toEqual([o2])
    expect(exclusionForSchemes(tree, [[o1], [o2]])).toEqual([])
    expect(exclusionForSchemes(tree, [[]])).toEqual([o1, o2])
    expect(exclusionForSchemes(tree, [])).toEqual([])
    expect(exclusionForExecuteList(tree, [o2])).toEqual([o1])
  })
})
