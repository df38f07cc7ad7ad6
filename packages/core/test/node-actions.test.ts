import { describe, expect, it } from 'vitest'
import { checkNodeAction, displayedStatusState, type NodeFacts } from '../src/index'

const activity = (over: Partial<NodeFacts> = {}): NodeFacts => ({
  id: 'n1',
  kind: 'activity',
  state: 'FAILED',
  held: false,
  wait: null,
  ...over,
})

describe('checkNodeAction: bamboo-engine preconditions, as data', () => {
  it('accepts each action in the state it needs', () => {
    expect(checkNodeAction('retry', 'RUNNING', activity())).toEqual({ ok: true })
    expect(checkNodeAction('skip', 'SUSPENDED', activity())).toEqual({ ok: true })
    expect(checkNodeAction('skip_exg', 'RUNNING', activity({ kind: 'exclusive' }))).toEqual({ ok: true })
    expect(checkNodeAction('skip_cpg', 'RUNNING', activity({ kind: 'conditional_parallel' }))).toEqual({
      ok: true,
    })
    expect(checkNodeAction('forced_fail', 'RUNNING', activity({ state: 'RUNNING' }))).toEqual({ ok: true })
    expect(checkNodeAction('callback', 'RUNNING', activity({ state: 'RUNNING', wait: 'callback' }))).toEqual({
      ok: true,
    })
    expect(checkNodeAction('pause', 'RUNNING', activity({ state: null }))).toEqual({ ok: true })
    expect(checkNodeAction('pause', 'RUNNING', activity({ state: 'READY' }))).toEqual({ ok: true })
    expect(checkNodeAction('resume', 'RUNNING', activity({ state: 'SUSPENDED', held: true }))).toEqual({
      ok: true,
    })
    expect(checkNodeAction('resume', 'RUNNING', activity({ state: 'RUNNING', wait: 'callback' }))).toEqual({
      ok: true,
    })
  })

  it('refuses with 3545000 naming the node, its state and the rule', () => {
    const refused = (message: string) => ({ ok: false, code: 3545000, message })
    expect(checkNodeAction('retry', 'RUNNING', activity({ state: 'RUNNING' }))).toEqual(
      refused('node[n1] is RUNNING; retry needs FAILED'),
    )
    expect(checkNodeAction('retry', 'RUNNING', activity({ retryable: false }))).toEqual(
      refused('node[n1] is not retryable'),
    )
    expect(checkNodeAction('skip', 'RUNNING', activity({ skippable: false }))).toEqual(
      refused('node[n1] is not skippable'),
    )
    expect(checkNodeAction('skip_exg', 'RUNNING', activity())).toEqual(
      refused('node[n1] is an activity; skip_exg applies to an ExclusiveGateway'),
    )
    expect(checkNodeAction('forced_fail', 'RUNNING', activity({ state: 'RUNNING', wait: 'retry' }))).toEqual(
      refused('node[n1] is waiting for an automatic retry; forced_fail needs a run'),
    )
    expect(checkNodeAction('callback', 'RUNNING', activity({ state: 'RUNNING' }))).toEqual(
      refused('node[n1] is RUNNING but not waiting for a callback'),
    )
    expect(checkNodeAction('pause', 'RUNNING', activity({ state: 'FINISHED' }))).toEqual(
      refused('node[n1] is FINISHED; pause needs READY or not yet reached'),
    )
    expect(checkNodeAction('pause', 'RUNNING', activity({ state: 'READY', held: true }))).toEqual(
      refused('node[n1] is already paused'),
    )
    expect(checkNodeAction('resume', 'RUNNING', activity({ state: 'READY' }))).toEqual(
      refused('node[n1] is not paused'),
    )
    for (const task of ['CREATED', 'FINISHED', 'REVOKED'] as const) {
      expect(checkNodeAction('retry', task, activity())).toEqual(
        refused(`task with state ${task} cannot operate nodes`),
      )
    }
  })

  it('an unknown action is a parameter error naming the actions', () => {
    expect(checkNodeAction('jump', 'RUNNING', activity())).toMatchObject({
      ok: false,
      code: 3540000,
      message: expect.stringContaining('must be one of retry, skip, skip_exg'),
    })
  })
})

describe('displayedStatusState', () => {
  it('NODE_SUSPENDED while a reached node is held; FAILED first; the root otherwise', () => {
    expect(displayedStatusState('RUNNING', ['FINISHED', 'SUSPENDED'])).toBe('NODE_SUSPENDED')
    expect(displayedStatusState('RUNNING', ['SUSPENDED', 'FAILED'])).toBe('FAILED')
    expect(displayedStatusState('SUSPENDED', ['SUSPENDED'])).toBe('SUSPENDED')
    expect(displayedStatusState('RUNNING', ['RUNNING'])).toBe('RUNNING')
  })
})
