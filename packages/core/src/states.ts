import { LegacyCode } from './errors'

export const TASK_STATES = ['CREATED', 'RUNNING', 'SUSPENDED', 'FINISHED', 'REVOKED'] as const
export type TaskState = (typeof TASK_STATES)[number]

export const NODE_STATES = ['READY', 'RUNNING', 'SUSPENDED', 'FINISHED', 'FAILED', 'REVOKED'] as const
export type NodeState = (typeof NODE_STATES)[number]

/** The operations a caller may ask for (operate_task's `action`). */
export const TASK_ACTIONS = ['start', 'pause', 'resume', 'revoke'] as const
export type TaskAction = (typeof TASK_ACTIONS)[number]

export type TaskTransition =
  | { ok: true; next: TaskState }
  | { ok: false; code: typeof LegacyCode.INVALID_OPERATION; message: string }

const refuse = (message: string): TaskTransition => ({
  ok: false,
  code: LegacyCode.INVALID_OPERATION,
  message,
})

const PAST_TENSE = { pause: 'paused', resume: 'resumed', revoke: 'revoked' } as const

/**
 * The one decision on a task's (root) state: the caller's actions (start, pause, resume, revoke)
 * and the engine's `finish`. Pure: returns the next state or the refusal the API answers with.
 */
export function transitionTask(state: TaskState, action: string): TaskTransition {
  switch (action) {
    case 'start':
      return state === 'CREATED' ? { ok: true, next: 'RUNNING' } : refuse('task already started')
    case 'finish':
      return state === 'RUNNING'
        ? { ok: true, next: 'FINISHED' }
        : refuse(`task with state ${state} cannot be finished`)
    case 'pause':
    case 'resume':
    case 'revoke':
      switch (state) {
        case 'CREATED':
          return refuse('task not started')
        case 'FINISHED':
        case 'REVOKED':
          return refuse(`task with state ${state} cannot be ${PAST_TENSE[action]}`)
        case 'RUNNING':
          if (action === 'resume') return refuse('task is not suspended')
          return { ok: true, next: action === 'pause' ? 'SUSPENDED' : 'REVOKED' }
        case 'SUSPENDED':
          if (action === 'pause') return refuse('task is already suspended')
          return { ok: true, next: action === 'resume' ? 'RUNNING' : 'REVOKED' }
      }
      break
  }
  return refuse('task command is invalid')
}

const NODE_MOVES: Record<NodeState, readonly NodeState[]> = {
  READY: ['RUNNING', 'SUSPENDED', 'REVOKED'],
  RUNNING: ['FINISHED', 'FAILED', 'REVOKED', 'SUSPENDED'],
  SUSPENDED: ['READY', 'RUNNING', 'REVOKED'],
  FAILED: ['READY', 'FINISHED'],
  FINISHED: ['RUNNING'],
  REVOKED: [],
}

/** bamboo-engine's node rules, plus READY → REVOKED for a node scheduled but not started at revoke. */
export function transitionNode(
  from: NodeState,
  to: NodeState,
): { ok: true; next: NodeState } | { ok: false; message: string } {
  return NODE_MOVES[from].includes(to)
    ? { ok: true, next: to }
    : { ok: false, message: `node cannot move from ${from} to ${to}` }
}

/** The state a task list shows: FAILED while the root runs and a node waits after failing. */
export function displayedTaskState<S extends TaskState>(
  root: S,
  nodeStates: Iterable<NodeState>,
): S | 'FAILED' {
  if (root !== 'RUNNING') return root
  for (const state of nodeStates) if (state === 'FAILED') return 'FAILED'
  return root
}

/**
 * The state get_task_status shows: as displayedTaskState, and NODE_SUSPENDED while the root runs
 * and the run has reached a node held by the node action `pause` (a SUSPENDED node: nothing else
 * suspends one).
 */
export function displayedStatusState<S extends TaskState>(
  root: S,
  nodeStates: Iterable<NodeState>,
): S | 'FAILED' | 'NODE_SUSPENDED' {
  const states = [...nodeStates]
  const shown = displayedTaskState(root, states)
  if (shown !== 'RUNNING') return shown
  return states.includes('SUSPENDED') ? 'NODE_SUSPENDED' : shown
}
