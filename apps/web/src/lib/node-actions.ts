import {
  checkNodeAction,
  type NodeAction,
  type NodeKind,
  type NodeState,
  type Role,
  roleAllows,
  type TaskState,
} from '@stdops/core'

/**
 * Which node actions the panel offers for a node, and why the others are off: core's own
 * precondition table (the one every API door decides on) and the role check, so a button is
 * enabled exactly when the server would take the call.
 */

export interface PanelNode {
  id: string
  kind: NodeKind
  /** the activity's component code (`pause_node` is an approval point) */
  code: string | null
  retryable: boolean
  skippable: boolean
  /** null: the run has not reached it */
  state: NodeState | null
  held: boolean
  /** what a RUNNING node waits for (`callback`, `retry`) */
  wait: string | null
}

/** The panel's buttons. `approve` and `reject` are how an approval point is passed or stopped. */
export type PanelAction = NodeAction | 'approve' | 'reject'

/** What each panel button sends: approve is a callback carrying the decision, reject a forced fail. */
export const SENDS: Record<PanelAction, NodeAction> = {
  retry: 'retry',
  skip: 'skip',
  skip_exg: 'skip_exg',
  skip_cpg: 'skip_cpg',
  forced_fail: 'forced_fail',
  callback: 'callback',
  pause: 'pause',
  resume: 'resume',
  pause_subproc: 'pause_subproc',
  resume_subproc: 'resume_subproc',
  retry_subprocess: 'retry_subprocess',
  approve: 'callback',
  reject: 'forced_fail',
}

export type NodeAvailability =
  | { action: PanelAction; enabled: true }
  | {
      action: PanelAction
      enabled: false
      why: { kind: 'state'; message: string } | { kind: 'role'; role: Role | null }
    }

/** The buttons that make sense for a node of this kind (the others are not shown at all). */
export function actionsFor(node: Pick<PanelNode, 'kind' | 'code'>): PanelAction[] {
  switch (node.kind) {
    case 'activity':
      return node.code === 'pause_node'
        ? ['approve', 'reject', 'pause', 'resume', 'retry', 'skip']
        : ['retry', 'skip', 'forced_fail', 'callback', 'pause', 'resume']
    case 'exclusive':
      return ['skip_exg']
    case 'conditional_parallel':
      return ['skip_cpg']
    default:
      return []
  }
}

export function nodeActions(
  taskState: TaskState | null,
  node: PanelNode,
  role: Role | null,
): NodeAvailability[] {
  return actionsFor(node).map((action): NodeAvailability => {
    if (taskState === null) return { action, enabled: false, why: { kind: 'state', message: 'loading' } }
    const check = checkNodeAction(SENDS[action], taskState, {
      id: node.id,
      kind: node.kind,
      retryable: node.retryable,
      skippable: node.skippable,
      state: node.state,
      held: node.held,
      wait: node.wait,
    })
    if (!check.ok) return { action, enabled: false, why: { kind: 'state', message: check.message } }
    if (!roleAllows(role, 'task_operate')) return { action, enabled: false, why: { kind: 'role', role } }
    return { action, enabled: true }
  })
}
