import { createTreeBuilder } from '@stdops/core/testing'
import { act, cleanup, render, screen } from '@testing-library/react'
import { Profiler } from 'react'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { setUpI18n } from '../i18n'
import { toDrawGraph } from '../lib/graph'
import { LAYOUT_MARK } from '../lib/layout'
import { createTaskStore, type LiveEvent } from '../lib/task-live'
import { PipelineCanvas } from './canvas'

/**
 * The canvas component in a DOM: what it draws for each node state, and that an event repaints
 * the nodes it touched without laying the graph out again or re-rendering the canvas around them.
 * jsdom has no layout engine: the few browser APIs React Flow measures with get sizes here.
 */
beforeAll(() => {
  setUpI18n()
  globalThis.ResizeObserver ??= class {
    observe() {}
    unobserve() {}
    disconnect() {}
  } as unknown as typeof ResizeObserver
  Object.defineProperties(HTMLElement.prototype, {
    offsetWidth: { configurable: true, get: () => 1200 },
    offsetHeight: { configurable: true, get: () => 800 },
  })
  ;(globalThis as { DOMMatrixReadOnly?: unknown }).DOMMatrixReadOnly ??= class {
    m22: number
    constructor(transform?: string) {
      const scale = transform?.match(/scale\(([0-9.]+)\)/)?.[1]
      this.m22 = scale === undefined ? 1 : Number(scale)
    }
  }
})
afterEach(cleanup)

function exclusiveTree() {
  const b = createTreeBuilder()
  const gate = b.gateway('ExclusiveGateway', { name: 'Which way' })
  const join = b.gateway('ConvergeGateway')
  const left = b.activity('set_variables', { name: 'Left' })
  const right = b.activity('set_variables', { name: 'Right' })
  b.flow(b.startId, gate)
  b.flow(gate, left, { condition: '1 == 1' })
  b.flow(gate, right, { condition: '1 == 0' })
  b.chain(left, join)
  b.chain(right, join)
  b.flow(join, b.endId)
  const { location: _l, line: _line, ...tree } = b.build() as Record<string, unknown>
  return { tree, gate, left, right, start: b.startId }
}

let seq = 0
const nodeEvent = (node_id: string, state: string): LiveEvent => ({
  seq: ++seq,
  type: 'node_state',
  node_id,
  state,
  data: null,
  created_at: Date.now(),
})

describe('PipelineCanvas', () => {
  it('draws every node, gateways in their own shape, and repaints a node on its event without a new layout', () => {
    const { tree, gate, left, right, start } = exclusiveTree()
    const graph = toDrawGraph(tree)!
    const store = createTaskStore(graph, (fn) => fn())
    let commits = 0
    const layoutsBefore = performance.getEntriesByName(LAYOUT_MARK).length
    render(
      <Profiler id="canvas" onRender={() => commits++}>
        <PipelineCanvas graph={graph} store={store} selected={null} onSelect={() => {}} label="canvas" />
      </Profiler>,
    )
    const nodes = document.querySelectorAll('[data-node-id]')
    expect(nodes).toHaveLength(graph.nodes.length)
    expect(screen.getByRole('button', { name: 'Left: not reached' })).toHaveProperty('dataset.state', 'NONE')
    expect(document.querySelector(`[data-node-id="${gate}"]`)!.className).toContain('node-exclusive')
    const layouts = performance.getEntriesByName(LAYOUT_MARK).length
    expect(layouts).toBe(layoutsBefore + 1)

    const commitsBefore = commits
    act(() =>
      store.push([nodeEvent(start, 'FINISHED'), nodeEvent(gate, 'FINISHED'), nodeEvent(left, 'RUNNING')]),
    )
    expect(screen.getByRole('button', { name: 'Left: RUNNING' }).dataset.state).toBe('RUNNING')
    expect(document.querySelector(`[data-node-id="${left}"]`)!.className).toContain('state-RUNNING')
    // The branch the gateway ruled out is marked so.
    expect(screen.getByRole('button', { name: "Right: won't run" }).dataset.state).toBe('WONT_RUN')
    expect(document.querySelector(`[data-node-id="${right}"]`)!.className).toContain('wont-run')
    expect(performance.getEntriesByName(LAYOUT_MARK).length, 'no new layout').toBe(layouts)
    // One commit for the whole batch of events (they are applied together).
    expect(commits - commitsBefore).toBe(1)
  })

  it('marks retries and skips on the node', () => {
    const { tree, gate, left, start } = exclusiveTree()
    const graph = toDrawGraph(tree)!
    const store = createTaskStore(graph, (fn) => fn())
    render(<PipelineCanvas graph={graph} store={store} selected={left} onSelect={() => {}} label="canvas" />)
    act(() =>
      store.push([
        nodeEvent(start, 'FINISHED'),
        nodeEvent(gate, 'FINISHED'),
        nodeEvent(left, 'RUNNING'),
        nodeEvent(left, 'FAILED'),
        nodeEvent(left, 'READY'),
        nodeEvent(left, 'RUNNING'),
        nodeEvent(left, 'FAILED'),
        nodeEvent(left, 'FINISHED'),
      ]),
    )
    const face = screen.getByRole('button', { name: 'Left: FINISHED' })
    expect(face.textContent).toContain('retried 1×')
    expect(face.textContent).toContain('skipped')
    expect(face.getAttribute('aria-pressed')).toBe('true')
  })
})
