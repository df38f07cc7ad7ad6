import { describe, expect, it } from 'vitest'
import { actionsFor, nodeActions, type PanelNode } from './node-actions'

const activity = (over: Partial<PanelNode> = {}): PanelNode => ({
  id: 'n1',
  kind: 'activity',
  code: 'http',
  retryable: true,
  skippable: true,
  state: 'FAILED',
  held: false,
  wait: null,
  ...over,
})
const enabled = (list: ReturnType<typeof nodeActions>) => list.filter((a) => a.enabled).map((a) => a.action)

describe('nodeActions', () => {
  it('offers retry and skip on a failed activity, and says why the others are off', () => {
    const list = nodeActions('RUNNING', activity(), 'operator')
    expect(enabled(list)).toEqual(['retry', 'skip'])
    const forced = list.find((a) => a.action === 'forced_fail')!
    expect(forced).toEqual({
      action: 'forced_fail',
      enabled: false,
      why: { kind: 'state', message: 'node[n1] is FAILED; forced_fail needs RUNNING' },
    })
  })

  it('follows the activity’s retryable and skippable', () => {
    const list = nodeActions('RUNNING', activity({ retryable: false, skippable: false }), 'operator')
    expect(enabled(list)).toEqual([])
    expect(list.find((a) => a.action === 'retry')).toMatchObject({
      why: { message: 'node[n1] is not retryable' },
    })
  })

  it('forces a running activity to fail, and calls back one that waits', () => {
    expect(enabled(nodeActions('RUNNING', activity({ state: 'RUNNING' }), 'operator'))).toEqual([
      'forced_fail',
    ])
    expect(
      enabled(nodeActions('RUNNING', activity({ state: 'RUNNING', wait: 'callback' }), 'operator')),
    ).toEqual(['forced_fail', 'callback', 'resume'])
  })

  it('approves or rejects an approval point that waits, and holds one not yet reached', () => {
    const approval = activity({ code: 'pause_node', state: 'RUNNING', wait: 'callback' })
    expect(actionsFor(approval)).toEqual(['approve', 'reject', 'pause', 'resume', 'retry', 'skip'])
    expect(enabled(nodeActions('RUNNING', approval, 'operator'))).toEqual(['approve', 'reject', 'resume'])
    const ahead = activity({ code: 'pause_node', state: null })
    expect(enabled(nodeActions('RUNNING', ahead, 'operator'))).toEqual(['pause'])
    expect(enabled(nodeActions('RUNNING', { ...ahead, held: true }, 'operator'))).toEqual(['resume'])
  })

  it('picks a branch of a failed exclusive gateway; nothing on events and plain gateways', () => {
    const gate: PanelNode = { ...activity(), kind: 'exclusive', code: null }
    expect(enabled(nodeActions('RUNNING', gate, 'operator'))).toEqual(['skip_exg'])
    expect(actionsFor({ kind: 'start', code: null })).toEqual([])
    expect(actionsFor({ kind: 'parallel', code: null })).toEqual([])
  })

  it('offers nothing on a task that is not running or paused, whatever the node', () => {
    for (const state of ['CREATED', 'FINISHED', 'REVOKED'] as const) {
      const list = nodeActions(state, activity(), 'admin')
      expect(enabled(list)).toEqual([])
      expect(list[0]).toMatchObject({ why: { message: `task with state ${state} cannot operate nodes` } })
    }
  })

  it('a viewer sees the actions the state allows disabled for their role', () => {
    const list = nodeActions('RUNNING', activity(), 'viewer')
    expect(enabled(list)).toEqual([])
    expect(list.find((a) => a.action === 'retry')).toEqual({
      action: 'retry',
      enabled: false,
      why: { kind: 'role', role: 'viewer' },
    })
  })
})
