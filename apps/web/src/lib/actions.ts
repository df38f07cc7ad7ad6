import {
  type Role,
  roleAllows,
  TASK_ACTIONS,
  type TaskAction,
  type TaskState,
  transitionTask,
} from '@stdops/core'

/**
 * Which task actions the header offers now, and why the others are not: the same two rules the
 * API applies, from the same code (the task state machine and the role check of core), so a
 * button is enabled exactly when the API would accept the call.
 */

export type Availability =
  | { action: TaskAction; enabled: true }
  | {
      action: TaskAction
      enabled: false
      why: { kind: 'state'; message: string } | { kind: 'role'; role: Role | null }
    }

export function taskActions(state: TaskState | null, role: Role | null): Availability[] {
  return TASK_ACTIONS.map((action): Availability => {
    if (state === null) return { action, enabled: false, why: { kind: 'state', message: 'loading' } }
    const t = transitionTask(state, action)
    if (!t.ok) return { action, enabled: false, why: { kind: 'state', message: t.message } }
    if (!roleAllows(role, 'task_operate')) return { action, enabled: false, why: { kind: 'role', role } }
    return { action, enabled: true }
  })
}

/** Of several tasks, which a bulk action would apply to (the others are reported as refused). */
export function applicableTo(action: TaskAction, states: ReadonlyArray<TaskState | 'FAILED'>): number {
  return states.filter((s) => transitionTask(s === 'FAILED' ? 'RUNNING' : s, action).ok).length
}
