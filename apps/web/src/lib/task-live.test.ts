import { describe, expect, it } from 'vitest'
import {
  createTaskStore,
  derive,
  displayedState,
  EMPTY_LIVE,
  type LiveEvent,
  reduceEvents,
} from './task-live'

let seq = 0
const at = (ms: number) => 1_700_000_000_000 + ms
const task = (state: string, t = 0): LiveEvent => ({
  seq: ++seq,
  type: 'task_state',
  node_id: null,
  state,
  data: null,
  created_at: at(t),
})
const node = (id: string, state: string, t = 0, data: unknown = null): LiveEvent => ({
  seq: ++seq,
  type: 'node_state',
  node_id: id,
  state,
  data,
  created_at: at(t),
})

describe('reduceEvents', () => {
  it('folds a run: task and node states, times, and the event list in seq order', () => {
    seq = 0
    const events = [
      task('CREATED'),
      task('RUNNING', 10),
      node('a', 'READY', 11),
      node('a', 'RUNNING', 12),
      node('a', 'FINISHED', 40),
      task('FINISHED', 41),
    ]
    const live = reduceEvents(EMPTY_LIVE, events)
    expect(live.taskState).toBe('FINISHED')
    expect(live).toMatchObject({ lastSeq: 6, createdAt: at(0), startedAt: at(10), finishedAt: at(41) })
    expect(live.nodes.a).toMatchObject({
      state: 'FINISHED',
      startedAt: at(12),
      finishedAt: at(40),
      retry: 0,
      runs: 1,
    })
    expect(live.events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6])
  })

  it('ignores events it has already applied, so a resumed stream never counts twice', () => {
    seq = 0
    const first = [task('CREATED'), task('RUNNING'), node('a', 'READY'), node('a', 'RUNNING')]
    const live = reduceEvents(EMPTY_LIVE, first)
    const again = reduceEvents(live, first.slice(2))
    expect(again).toBe(live)
    const more = reduceEvents(live, [...first.slice(3), node('a', 'FINISHED')])
    expect(more.events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5])
  })

  it('tells a retry and a skip from the moves of a failed node, and keeps the error while it stands', () => {
    seq = 0
    let live = reduceEvents(EMPTY_LIVE, [
      task('CREATED'),
      task('RUNNING'),
      node('a', 'READY'),
      node('a', 'RUNNING', 1),
      node('a', 'FAILED', 5, { error: 'disk full' }),
    ])
    expect(live.nodes.a).toMatchObject({ state: 'FAILED', error: 'disk full', retry: 0, finishedAt: at(5) })
    expect(displayedState(live)).toBe('FAILED')
    expect(derive(live, null).failed).toEqual(['a'])
    live = reduceEvents(live, [node('a', 'READY', 6)])
    expect(live.nodes.a).toMatchObject({
      state: 'READY',
      error: null,
      retry: 1,
      startedAt: null,
      finishedAt: null,
    })
    expect(displayedState(live)).toBe('RUNNING')
    live = reduceEvents(live, [node('a', 'RUNNING', 7), node('a', 'FAILED', 8, { error: 'still full' })])
    expect(live.nodes.a).toMatchObject({ error: 'still full', runs: 2, retry: 1 })
    live = reduceEvents(live, [node('a', 'FINISHED', 9)])
    expect(live.nodes.a).toMatchObject({ state: 'FINISHED', skip: true, error: null })
  })

  it('keeps the error of a failure the tree ignores', () => {
    seq = 0
    const live = reduceEvents(EMPTY_LIVE, [
      node('a', 'RUNNING'),
      node('a', 'FINISHED', 1, { error: 'boom', error_ignored: true }),
    ])
    expect(live.nodes.a).toMatchObject({ state: 'FINISHED', errorIgnored: true, error: 'boom', skip: false })
  })

  it('leaves untouched nodes the same objects (a repaint touches only what changed)', () => {
    seq = 0
    const live = reduceEvents(EMPTY_LIVE, [node('a', 'RUNNING'), node('b', 'RUNNING')])
    const next = reduceEvents(live, [node('b', 'FINISHED')])
    expect(next.nodes.a).toBe(live.nodes.a)
    expect(next.nodes.b).not.toBe(live.nodes.b)
  })
})

describe('createTaskStore', () => {
  it('applies a burst of events as one update, once per frame', () => {
    seq = 0
    const frames: Array<() => void> = []
    const store = createTaskStore(null, (fn) => frames.push(fn))
    let updates = 0
    store.subscribe(() => updates++)
    store.push([task('CREATED')])
    store.push([task('RUNNING'), node('a', 'READY')])
    expect(store.get().lastSeq).toBe(0)
    frames.shift()!()
    expect(updates).toBe(1)
    expect(store.get().lastSeq).toBe(3)
    expect(store.derived().displayed).toBe('RUNNING')
  })
})
