import { describe, expect, it } from 'vitest'
import { applicableTo, taskActions } from './actions'

const enabled = (list: ReturnType<typeof taskActions>) => list.filter((a) => a.enabled).map((a) => a.action)

describe('taskActions: the state machine and the role check the API applies', () => {
  it('offers what each state allows to an operator', () => {
    expect(enabled(taskActions('CREATED', 'operator'))).toEqual(['start'])
    expect(enabled(taskActions('RUNNING', 'operator'))).toEqual(['pause', 'revoke'])
    expect(enabled(taskActions('SUSPENDED', 'admin'))).toEqual(['resume', 'revoke'])
    expect(enabled(taskActions('FINISHED', 'admin'))).toEqual([])
    expect(enabled(taskActions('REVOKED', 'admin'))).toEqual([])
  })

  it('says why with the API’s own refusal', () => {
    const running = taskActions('RUNNING', 'operator')
    expect(running.find((a) => a.action === 'start')).toEqual({
      action: 'start',
      enabled: false,
      why: { kind: 'state', message: 'task already started' },
    })
    expect(running.find((a) => a.action === 'resume')).toMatchObject({
      why: { message: 'task is not suspended' },
    })
    expect(taskActions('FINISHED', 'admin').find((a) => a.action === 'revoke')).toMatchObject({
      why: { message: 'task with state FINISHED cannot be revoked' },
    })
  })

  it('disables everything for a viewer, or a user without a role, naming the role', () => {
    expect(enabled(taskActions('RUNNING', 'viewer'))).toEqual([])
    expect(taskActions('RUNNING', 'viewer').find((a) => a.action === 'pause')).toMatchObject({
      why: { kind: 'role', role: 'viewer' },
    })
    expect(taskActions('CREATED', null).find((a) => a.action === 'start')).toMatchObject({
      why: { kind: 'role', role: null },
    })
  })

  it('counts the tasks of a selection an action applies to (a FAILED one is running)', () => {
    expect(applicableTo('pause', ['RUNNING', 'FAILED', 'SUSPENDED', 'FINISHED'])).toBe(2)
    expect(applicableTo('revoke', ['RUNNING', 'SUSPENDED', 'CREATED'])).toBe(2)
  })
})
