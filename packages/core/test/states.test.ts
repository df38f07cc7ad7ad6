import { describe, expect, it } from 'vitest'
import {
  displayedTaskState,
  LegacyCode,
  NODE_STATES,
  type NodeState,
  TASK_STATES,
  type TaskState,
  transitionNode,
  transitionTask,
} from '../src/index'

// Every cell of the task state table (docs/engine.md): a next state, or the refusal message.
const TASK_TABLE: Record<TaskState, Record<'start' | 'pause' | 'resume' | 'revoke' | 'finish', string>> = {
  CREATED: {
    start: '→ RUNNING',
    pause: 'task not started',
    resume: 'task not started',
    revoke: 'task not started',
    finish: 'task with state CREATED cannot be finished',
  },
  RUNNING: {
    start: 'task already started',
    pause: '→ SUSPENDED',
    resume: 'task is not suspended',
    revoke: '→ REVOKED',
    finish: '→ FINISHED',
  },
  SUSPENDED: {
    start: 'task already started',
    pause: 'task is already suspended',
    resume: '→ RUNNING',
    revoke: '→ REVOKED',
    finish: 'task with state SUSPENDED cannot be finished',
  },
  FINISHED: {
    start: 'task already started',
    pause: 'task with state FINISHED cannot be paused',
    resume: 'task with state FINISHED cannot be resumed',
    revoke: 'task with state FINISHED cannot be revoked',
    finish: 'task with state FINISHED cannot be finished',
  },
  REVOKED: {
    start: 'task already started',
    pause: 'task with state REVOKED cannot be paused',
    resume: 'task with state REVOKED cannot be resumed',
    revoke: 'task with state REVOKED cannot be revoked',
    finish: 'task with state REVOKED cannot be finished',
  },
}

const taskCells = TASK_STATES.flatMap((state) =>
  Object.entries(TASK_TABLE[state]).map(([action, expected]) => ({ state, action, expected })),
)

describe('transitionTask', () => {
  it.each(taskCells)('$action on a $state task: $expected', ({ state, action, expected }) => {
    const result = transitionTask(state, action)
    if (expected.startsWith('→ ')) expect(result).toEqual({ ok: true, next: expected.slice(2) })
    else expect(result).toEqual({ ok: false, code: LegacyCode.INVALID_OPERATION, message: expected })
  })

  const invalid = TASK_STATES.flatMap((state) =>
    ['', 'unknown', 'START', 'Pause', 'callback', 'start '].map((action) => ({ state, action })),
  )
  it.each(invalid)('action "$action" on a $state task is an invalid command', ({ state, action }) => {
    expect(transitionTask(state, action)).toEqual({
      ok: false,
      code: 3545000,
      message: 'task command is invalid',
    })
  })
})

// from → allowed targets (bamboo-engine's rules, plus READY → REVOKED)
const NODE_TABLE: Record<NodeState, NodeState[]> = {
  READY: ['RUNNING', 'SUSPENDED', 'REVOKED'],
  RUNNING: ['FINISHED', 'FAILED', 'REVOKED', 'SUSPENDED'],
  SUSPENDED: ['READY', 'RUNNING', 'REVOKED'],
  FAILED: ['READY', 'FINISHED'],
  FINISHED: ['RUNNING'],
  REVOKED: [],
}

const nodeCells = NODE_STATES.flatMap((from) =>
  NODE_STATES.map((to) => ({ from, to, allowed: NODE_TABLE[from].includes(to) })),
)

describe('transitionNode', () => {
  it.each(nodeCells)('$from → $to allowed: $allowed', ({ from, to, allowed }) => {
    expect(transitionNode(from, to)).toEqual(
      allowed ? { ok: true, next: to } : { ok: false, message: `node cannot move from ${from} to ${to}` },
    )
  })
})

describe('displayedTaskState', () => {
  it('shows a running task with a failed node as FAILED', () => {
    expect(displayedTaskState('RUNNING', ['FINISHED', 'FAILED', 'READY'])).toBe('FAILED')
  })

  it('shows a running task without failed nodes as RUNNING', () => {
    expect(displayedTaskState('RUNNING', ['FINISHED', 'RUNNING'])).toBe('RUNNING')
  })

  it.each([
    'CREATED',
    'SUSPENDED',
    'FINISHED',
    'REVOKED',
  ] as const)('shows a %s task as its own state even with a failed node', (state) => {
    expect(displayedTaskState(state, ['FAILED'])).toBe(state)
  })

  it('accepts any iterable of node states', () => {
    expect(displayedTaskState('RUNNING', new Set<NodeState>(['FAILED']))).toBe('FAILED')
  })
})
