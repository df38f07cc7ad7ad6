import { LegacyCode } from './errors'
import type { NodeKind } from './pipeline/graph'
import type { NodeState, TaskState } from './states'

/**
 * The node actions an operator may take (operate_node's `action`, bamboo-engine's names).
 *
 * Subprocesses add `pause_subproc`, `resume_subproc` and `retry_subprocess`: each gets a row in
 * NODE_ACTION_RULES below (applies to kind `subprocess`, needs RUNNING / SUSPENDED / FAILED), a
 * case in the engine's planNodeAction (packages/engine/src/plan.ts) and nothing else: the
 * protocol (operateNode), the API services, the legacy route and the CLI dispatch on this list.
 */
export const NODE_ACTIONS = [
  'retry',
  'skip',
  'skip_exg',
  'skip_cpg',
  'forced_fail',
  'callback',
  'pause',
  'resume',
  'pause_subproc',
  'resume_subproc',
  'retry_subprocess',
] as const
export type NodeAction = (typeof NODE_ACTIONS)[number]

export const isNodeAction = (action: string): action is NodeAction =>
  (NODE_ACTIONS as readonly string[]).includes(action)

/** What a precondition is decided on: the node in the tree and its row (null: the run has not reached it). */
export interface NodeFacts {
  id: string
  kind: NodeKind
  /** The activity's `retryable` / `skippable` (absent: true). */
  retryable?: boolean | undefined
  skippable?: boolean | undefined
  state: NodeState | null
  /** Held by `pause`. */
  held: boolean
  /** What a RUNNING node waits for: `callback`, `retry` (an automatic retry's interval), or nothing. */
  wait: string | null
  /** A SubProcess's child tree: whether a node in it is FAILED, and whether one is RUNNING. */
  failedInside?: boolean | undefined
  runningInside?: boolean | undefined
}

export type NodeActionCheck =
  | { ok: true }
  | {
      ok: false
      code: typeof LegacyCode.INVALID_OPERATION | typeof LegacyCode.REQUEST_PARAM_INVALID
      message: string
    }

const KIND_NAMES: Record<NodeKind, string> = {
  start: 'a start event',
  end: 'an end event',
  activity: 'an activity',
  parallel: 'a ParallelGateway',
  exclusive: 'an ExclusiveGateway',
  conditional_parallel: 'a ConditionalParallelGateway',
  converge: 'a ConvergeGateway',
  subprocess: 'a SubProcess',
}

interface Rule {
  kinds: readonly NodeKind[]
  /** The states it needs; `null` stands for "not yet reached" (no row). */
  states: readonly (NodeState | null)[]
  /** What the refusal says it needs. */
  needs: string
  /** A further condition on the node, with the refusal's text. */
  also?: (n: NodeFacts) => string | null
}

/** bamboo-engine's preconditions, one row per action: the one table every door decides on. */
export const NODE_ACTION_RULES: Record<NodeAction, Rule> = {
  retry: {
    kinds: ['activity'],
    states: ['FAILED'],
    needs: 'FAILED',
    also: (n) => (n.retryable === false ? `node[${n.id}] is not retryable` : null),
  },
  skip: {
    kinds: ['activity'],
    states: ['FAILED'],
    needs: 'FAILED',
    also: (n) => (n.skippable === false ? `node[${n.id}] is not skippable` : null),
  },
  skip_exg: { kinds: ['exclusive'], states: ['FAILED'], needs: 'FAILED' },
  skip_cpg: { kinds: ['conditional_parallel'], states: ['FAILED'], needs: 'FAILED' },
  forced_fail: {
    kinds: ['activity'],
    states: ['RUNNING'],
    needs: 'RUNNING',
    also: (n) =>
      n.wait === 'retry' ? `node[${n.id}] is waiting for an automatic retry; forced_fail needs a run` : null,
  },
  callback: {
    kinds: ['activity'],
    states: ['RUNNING'],
    needs: 'RUNNING and waiting for a callback',
    also: (n) => (n.wait === 'callback' ? null : `node[${n.id}] is RUNNING but not waiting for a callback`),
  },
  pause: {
    kinds: ['activity'],
    states: ['READY', null],
    needs: 'READY or not yet reached',
    also: (n) => (n.held ? `node[${n.id}] is already paused` : null),
  },
  // Also bk-sops's way to pass an approval point: a RUNNING node waiting for a callback is
  // resumed as if called back with no data.
  resume: {
    kinds: ['activity'],
    states: ['READY', 'SUSPENDED', 'RUNNING', null],
    needs: 'a node paused by pause, or waiting for a callback',
    also: (n) =>
      n.held || (n.state === 'RUNNING' && n.wait === 'callback')
        ? null
        : `node[${n.id}] is ${n.state === 'RUNNING' ? 'RUNNING but not waiting for a callback' : 'not paused'}`,
  },
  // A subprocess paused as a task is: nodes running in it finish, nothing new starts in it.
  pause_subproc: { kinds: ['subprocess'], states: ['RUNNING'], needs: 'RUNNING' },
  resume_subproc: { kinds: ['subprocess'], states: ['SUSPENDED'], needs: 'SUSPENDED' },
  // A SubProcess displays FAILED while a node of its child tree is FAILED (its own row RUNNING),
  // or is FAILED itself (its child could not start). It re-runs from its start once nothing in it runs.
  retry_subprocess: {
    kinds: ['subprocess'],
    states: ['FAILED', 'RUNNING'],
    needs: 'FAILED',
    also: (n) =>
      n.state === 'RUNNING' && !n.failedInside
        ? `node[${n.id}] is RUNNING with no failed node in it; retry_subprocess needs FAILED`
        : n.runningInside
          ? `node[${n.id}] still has running nodes in it; retry_subprocess needs them ended (forced_fail them)`
          : null,
  },
}

const refuse = (message: string): NodeActionCheck => ({
  ok: false,
  code: LegacyCode.INVALID_OPERATION,
  message,
})

/**
 * May `action` be taken on this node of a task in `taskState`? Pure: the refusal is what the APIs
 * answer (3545000), naming the node, its state and the rule.
 */
export function checkNodeAction(action: string, taskState: TaskState, node: NodeFacts): NodeActionCheck {
  if (!isNodeAction(action)) {
    return {
      ok: false,
      code: LegacyCode.REQUEST_PARAM_INVALID,
      message: `invalid param: action: must be one of ${NODE_ACTIONS.join(', ')}`,
    }
  }
  if (taskState !== 'RUNNING' && taskState !== 'SUSPENDED') {
    return refuse(`task with state ${taskState} cannot operate nodes`)
  }
  const rule = NODE_ACTION_RULES[action]
  if (!rule.kinds.includes(node.kind)) {
    const wanted = rule.kinds.map((k) => KIND_NAMES[k]).join(' or ')
    return refuse(`node[${node.id}] is ${KIND_NAMES[node.kind]}; ${action} applies to ${wanted}`)
  }
  if (!rule.states.includes(node.state)) {
    return refuse(`node[${node.id}] is ${node.state ?? 'not yet reached'}; ${action} needs ${rule.needs}`)
  }
  const also = rule.also?.(node)
  return also ? refuse(also) : { ok: true }
}
