import { describe, expect, it } from 'vitest'
import { buildStatusTree, formatLegacyTime, type StatusTreeInput } from '../src/index'

const at = (time: string) => new Date(`2024-05-01T${time}Z`)
const node = (nodeId: string, overrides: Partial<StatusTreeInput['nodes'][number]> = {}) => ({
  nodeId,
  state: 'FINISHED' as const,
  retry: 0,
  skip: false,
  loop: 1,
  version: 1,
  errorIgnorable: false,
  errorIgnored: false,
  startedAt: at('10:00:00'),
  finishedAt: at('10:00:05'),
  ...overrides,
})

describe('buildStatusTree', () => {
  it("gives a task that never started bk-sops's exact CREATED shape", () => {
    const tree = buildStatusTree({
      task: { id: 7, name: 'deploy', state: 'CREATED', startedAt: null, finishedAt: null },
      nodes: [],
      names: {},
      now: at('10:00:00'),
    })
    expect(tree).toStrictEqual({
      id: 7,
      name: 'deploy',
      state: 'CREATED',
      retry: 0,
      skip: 0,
      elapsed_time: 0,
      start_time: null,
      finish_time: null,
      children: {},
    })
  })

  it('describes a running task and each node, with names from the tree', () => {
    const tree = buildStatusTree({
      task: { id: 7, name: 'deploy', state: 'RUNNING', startedAt: at('10:00:00'), finishedAt: null },
      nodes: [
        node('nstart'),
        node('nact', { state: 'RUNNING', finishedAt: null, retry: 2, version: 3, loop: 2 }),
      ],
      names: { nact: 'Deploy app' },
      now: at('10:01:30.900'),
    })
    expect(tree).toStrictEqual({
      id: 7,
      name: 'deploy',
      state: 'RUNNING',
      retry: 0,
      skip: false,
      loop: 1,
      version: 0,
      error_ignorable: false,
      error_ignored: false,
      elapsed_time: 90,
      start_time: at('10:00:00'),
      finish_time: null,
      running_nodes: 1,
      children: {
        nstart: {
          id: 'nstart',
          name: '',
          state: 'FINISHED',
          retry: 0,
          skip: false,
          loop: 1,
          version: 1,
          error_ignorable: false,
          error_ignored: false,
          elapsed_time: 5,
          start_time: at('10:00:00'),
          finish_time: at('10:00:05'),
          children: {},
        },
        nact: {
          id: 'nact',
          name: 'Deploy app',
          state: 'RUNNING',
          retry: 2,
          skip: false,
          loop: 2,
          version: 3,
          error_ignorable: false,
          error_ignored: false,
          elapsed_time: 90,
          start_time: at('10:00:00'),
          finish_time: null,
          children: {},
        },
      },
    })
  })

  it('shows a running task with a failed node as FAILED, and the node as failed', () => {
    const tree = buildStatusTree({
      task: { id: 1, name: 't', state: 'RUNNING', startedAt: at('10:00:00'), finishedAt: null },
      nodes: [node('nact', { state: 'FAILED' })],
      names: {},
      now: at('10:00:10'),
    })
    expect(tree.state).toBe('FAILED')
    expect(tree.children.nact?.state).toBe('FAILED')
  })

  it('counts the elapsed time of a finished task up to its end, not now', () => {
    const tree = buildStatusTree({
      task: {
        id: 1,
        name: 't',
        state: 'FINISHED',
        startedAt: at('10:00:00'),
        finishedAt: at('10:00:42.999'),
      },
      nodes: [],
      names: {},
      now: at('11:00:00'),
    })
    expect(tree).toMatchObject({ state: 'FINISHED', elapsed_time: 42, running_nodes: 0 })
  })

  it('reports a node that has not started with no elapsed time', () => {
    const tree = buildStatusTree({
      task: { id: 1, name: 't', state: 'SUSPENDED', startedAt: at('10:00:00'), finishedAt: null },
      nodes: [node('nwait', { state: 'READY', startedAt: null, finishedAt: null })],
      names: {},
      now: at('10:00:10'),
    })
    expect(tree.state).toBe('SUSPENDED')
    expect(tree.children.nwait).toMatchObject({ elapsed_time: 0, start_time: null, finish_time: null })
  })

  it('counts running nodes so a caller can wait for a paused task to be quiet', () => {
    const tree = buildStatusTree({
      task: { id: 1, name: 't', state: 'SUSPENDED', startedAt: at('10:00:00'), finishedAt: null },
      nodes: [node('a', { state: 'RUNNING' }), node('b', { state: 'RUNNING' }), node('c')],
      names: {},
      now: at('10:00:10'),
    })
    expect(tree).toMatchObject({ running_nodes: 2 })
  })

  it('reports ignored errors on a node', () => {
    const tree = buildStatusTree({
      task: { id: 1, name: 't', state: 'RUNNING', startedAt: at('10:00:00'), finishedAt: null },
      nodes: [node('a', { errorIgnorable: true, errorIgnored: true })],
      names: {},
      now: at('10:00:10'),
    })
    expect(tree.children.a).toMatchObject({ error_ignorable: true, error_ignored: true, state: 'FINISHED' })
    expect(tree.state).toBe('RUNNING')
  })
})

describe('formatLegacyTime', () => {
  it.each([
    [0, '2024-05-01 10:00:05 +0000'],
    [480, '2024-05-01 18:00:05 +0800'],
    [-300, '2024-05-01 05:00:05 -0500'],
    [330, '2024-05-01 15:30:05 +0530'],
    [840, '2024-05-02 00:00:05 +1400'],
  ])('writes the time at offset %i minutes as %s', (offset, expected) => {
    expect(formatLegacyTime(at('10:00:05.750'), offset)).toBe(expected)
  })

  it('keeps null', () => {
    expect(formatLegacyTime(null, 480)).toBeNull()
  })
})
