import { describe, expect, it } from 'vitest'
import {
  buildTaskGraph,
  expandSubprocesses,
  PipelineTreeSchema,
  type SubprocessTemplate,
  subprocessStack,
} from '../src/index'
import { createTreeBuilder } from '../src/testing/trees'

const hasComponent = () => true

/** A child template: start → one set_variables step → end, reading `${x}` (its own constant). */
function childTree() {
  const b = createTreeBuilder()
  b.constant('x', 'default')
  b.chain(
    b.startId,
    b.activity('set_variables', { data: { variables: { hook: false, value: { v: '${x}' } } } }),
    b.endId,
  )
  return b.build() as unknown as Record<string, unknown>
}

describe('expandSubprocesses and buildTaskGraph', () => {
  it('copies the child trees in, with fresh ids where they clash, and lays them into one graph', async () => {
    const p = createTreeBuilder()
    const first = p.subprocess(7)
    const second = p.subprocess(7)
    p.chain(p.startId, first, second, p.endId)
    const templates: Record<number, SubprocessTemplate> = {
      7: { id: 7, name: 'child', tree: childTree(), version: '3' },
    }
    const expanded = await expandSubprocesses(
      p.build() as unknown as Record<string, unknown>,
      async (id) => templates[id] ?? null,
      { root: { id: 1, name: 'parent' }, hasComponent },
    )
    const tree = PipelineTreeSchema.parse(expanded)
    const graph = buildTaskGraph(tree)
    // Two copies of one template: every id of the task is still unique, each child node knows its SubProcess.
    const children = [...graph.nodes.keys()].filter((id) => graph.parentOf?.has(id))
    expect(children).toHaveLength(6)
    expect(new Set(children.map((id) => graph.parentOf!.get(id)))).toEqual(new Set([first, second]))
    const scope = graph.scopes!.get(second)!
    expect(graph.nodes.get(scope.startId)?.kind).toBe('start')
    expect(subprocessStack(graph, scope.endId)).toEqual([second])
    // Flows were renamed with their nodes: the copy's start leads to its own step.
    const flow = graph.flows.get(graph.nodes.get(scope.startId)!.outgoing[0]!)!
    expect(graph.parentOf!.get(flow.target)).toBe(second)
    expect((tree.activities[second] as { version?: string }).version).toBe('3')
  })

  it('names the cycle when templates include one another, and refuses a missing template', async () => {
    const including = (id: number) => {
      const b = createTreeBuilder()
      b.chain(b.startId, b.subprocess(id), b.endId)
      return b.build() as unknown as Record<string, unknown>
    }
    const templates: Record<number, SubprocessTemplate> = {
      1: { id: 1, name: 'a', tree: including(2), version: '1' },
      2: { id: 2, name: 'b', tree: including(1), version: '1' },
    }
    await expect(
      expandSubprocesses(including(2), async (id) => templates[id] ?? null, {
        root: { id: 1, name: 'a' },
        hasComponent,
      }),
    ).rejects.toThrow('subprocesses make a cycle of templates: template[1] a → template[2] b → template[1] a')
    await expect(
      expandSubprocesses(including(9), async () => null, { root: null, hasComponent }),
    ).rejects.toThrow(/names template\[9\], which does not exist in this project/)
  })
})
