/**
 * The operation protocol: how a caller (the API's two doors, the CLI through them, the tests)
 * changes a task. Every operation has the same shape:
 *
 * 1. decide with a pure function of core (transitionTask) on the state last read;
 * 2. compare-and-set the row's `version`; when it moved on, read again and decide again, so the
 *    loser of a race answers as if it had come second;
 * 3. in the same transaction: the state event, the operate record, and the engine's own writes
 *    (a start runs the start event on, a revoke drops the work and revokes the nodes);
 * 4. after the commit: the effects (wake the workers here and in other processes; abort running
 *    components on revoke).
 *
 * Node actions (operateNode) are more actions of this same protocol; subprocess actions will be too.
 */
import {
  InvalidOperationError,
  isNodeAction,
  type NodeState,
  NotFoundError,
  StdopsError,
  TASK_ACTIONS,
  type TaskAction,
  type TaskState,
  transitionTask,
} from '@stdops/core'
import type { Db, Executor } from '@stdops/db'
import {
  compareAndSetTask,
  compareAndSetTaskInOneStatement,
  holdTaskJobs,
  insertEvents,
  insertOperateRecord,
  type OperateRecordInput,
  readTaskVersion,
  type TaskVersion,
} from './store'
import { activeTraceparent, inSpan } from './tracing'
import {
  applyNodeAction,
  type NodeActionRequest,
  revokeRun,
  startRun,
  type TransitionEnv,
} from './transitions'

/** Who asks, from where, in which project: what the operate record says. */
export interface Operator {
  /** The user the record names. */
  operator: string
  /** `api` for the ESB routes, `app` for tRPC and the CLI (bk-sops's operate_source). */
  source: string
  projectId: number
  /** The app that made the call (a trusted or user-skip app acts for the user it names). */
  appCode?: string
}

export interface TaskOperationRequest extends Operator {
  taskId: number
  /** Checked here: anything but start, pause, resume, revoke is `task command is invalid`. */
  action: string
  /** The caller's read of the task: the compare-and-set's first guess (read here when absent). */
  seen?: TaskVersion
}

/** What has to happen once the operation's transaction committed (Engine.afterCommit). */
export type Effect =
  | { kind: 'wake'; taskId: number }
  | { kind: 'abort'; taskId: number; reason: string }
  /** forced_fail: abort one node's running component, here and in every other process. */
  | { kind: 'abortNode'; taskId: number; nodeId: string; reason: string }

/** A node action (operate_node, node_callback): who asks, and what (transitions.ts NodeActionRequest). */
export interface NodeOperationRequest extends Operator, Omit<NodeActionRequest, 'operator'> {}

export interface NodeOperationResult {
  /** The node's state and version after the action. */
  state: NodeState
  version: number
  at: number
  effects: Effect[]
}

export interface OperationResult {
  /** The task's state after the operation. */
  state: TaskState
  /** The time the operation took effect: read once the row was ours (later than anything committed before it). */
  at: number
  effects: Effect[]
}

export interface ProtocolDeps {
  db: Db
  env: TransitionEnv
  now: () => number
  afterCommit(effects: readonly Effect[]): void
}

/** The operate record's single place: every operation, and task creation, write it through here. */
export function writeOperateRecord(tx: Executor, record: OperateRecordInput): Promise<void> {
  return insertOperateRecord(tx, record)
}

function effectsOf(taskId: number, action: TaskAction): Effect[] {
  switch (action) {
    case 'start':
    case 'resume':
      return [{ kind: 'wake', taskId }]
    case 'pause':
      // Nothing to write or wake: node starts check the task's state under its row lock, and the
      // claim filter leaves the task's node jobs alone until it is RUNNING again.
      return []
    case 'revoke':
      return [
        { kind: 'abort', taskId, reason: `task ${taskId} was revoked` },
        { kind: 'wake', taskId },
      ]
  }
}

function checkedAction(action: string): TaskAction {
  // `finish` is the engine's own move, never a caller's command.
  if (!(TASK_ACTIONS as readonly string[]).includes(action)) {
    throw new InvalidOperationError('task command is invalid')
  }
  return action as TaskAction
}

async function firstGuess(exec: Executor, req: TaskOperationRequest): Promise<TaskVersion> {
  const seen = req.seen ?? (await readTaskVersion(exec, req.taskId))
  if (!seen) throw new NotFoundError(`task[id=${req.taskId}] does not exist`)
  return seen
}

async function readAgain(exec: Executor, taskId: number): Promise<TaskVersion> {
  const again = await readTaskVersion(exec, taskId)
  if (!again) throw new Error(`task ${taskId} vanished during an operation`)
  return again
}

export function createProtocol(deps: ProtocolDeps) {
  const { db, env, now } = deps

  /** The operation's decision and writes, inside `tx`. */
  const operateInTx = async (
    tx: Executor,
    req: TaskOperationRequest,
    traceparent: string | null,
  ): Promise<OperationResult> => {
    const action = checkedAction(req.action)
    let current = await firstGuess(tx, req)
    for (;;) {
      const t = transitionTask(current.state, action)
      if (!t.ok) throw new InvalidOperationError(t.message)
      const decidedAt = now()
      const seq = await compareAndSetTask(tx, req.taskId, current.version, {
        next: t.next,
        ...(action === 'start' ? { started: { at: decidedAt, executor: req.operator, traceparent } } : {}),
        ...(t.next === 'REVOKED' ? { finishedAt: decidedAt } : {}),
      })
      if (seq !== null) {
        // Taken after the row is ours: later than any node start that committed before this change.
        const at = now()
        await insertEvents(tx, req.taskId, seq, [{ type: 'task_state', state: t.next }], at)
        await writeOperateRecord(tx, {
          taskId: req.taskId,
          projectId: req.projectId,
          operator: req.operator,
          appCode: req.appCode ?? '',
          type: action,
          source: req.source,
          at,
        })
        if (action === 'pause' || action === 'resume') await holdTaskJobs(tx, req.taskId, action === 'pause')
        if (action === 'start') await startRun(env, tx, req.taskId, at)
        if (action === 'revoke') await revokeRun(env, tx, req.taskId, at)
        return { state: t.next, at, effects: effectsOf(req.taskId, action) }
      }
      current = await readAgain(tx, req.taskId)
    }
  }

  /**
   * Pause and resume write nothing beyond the row, its event, its record and the hold on its node
   * jobs: on PostgreSQL they are one autocommit statement (compareAndSetTaskInOneStatement), with
   * the same retry.
   */
  const operateInOneStatement = async (req: TaskOperationRequest, action: 'pause' | 'resume') => {
    let current = await firstGuess(db, req)
    for (;;) {
      const t = transitionTask(current.state, action)
      if (!t.ok) throw new InvalidOperationError(t.message)
      const at = await compareAndSetTaskInOneStatement(db, req.taskId, current.version, t.next, {
        projectId: req.projectId,
        operator: req.operator,
        appCode: req.appCode ?? '',
        type: action,
        source: req.source,
      })
      if (at !== null) return { state: t.next, at, effects: effectsOf(req.taskId, action) }
      current = await readAgain(db, req.taskId)
    }
  }

  /** Reports an operation's outcome and latency (after its commit when it was applied). */
  const reporter = (req: TaskOperationRequest) => {
    const began = performance.now()
    return (result: 'ok' | 'refused' | 'error') =>
      env.telemetry.operation({
        // A label from a fixed set: an unknown action is reported as `invalid`, not by its text.
        action: (TASK_ACTIONS as readonly string[]).includes(req.action) ? req.action : 'invalid',
        result,
        durationMs: performance.now() - began,
      })
  }
  const operationSpanName = (req: TaskOperationRequest) =>
    `stdops.operation ${(TASK_ACTIONS as readonly string[]).includes(req.action) ? req.action : 'invalid'}`
  const failure = (err: unknown) => (err instanceof StdopsError ? 'refused' : 'error')

  /**
   * A task operation inside the caller's transaction (task creation starts its task this way).
   * The caller runs `afterCommit(result.effects)` once it committed.
   */
  const operateTaskInTx = async (tx: Executor, req: TaskOperationRequest): Promise<OperationResult> => {
    const report = reporter(req)
    // The request's context, read before the operation's own span: what a started task keeps.
    const traceparent = activeTraceparent()
    return inSpan(operationSpanName(req), { attributes: { 'stdops.task.id': req.taskId } }, async () => {
      try {
        const result = await operateInTx(tx, req, traceparent)
        tx.afterCommit(() => report('ok'))
        return result
      } catch (err) {
        report(failure(err))
        throw err
      }
    })
  }

  /** A task operation in its own transaction, its effects performed after the commit. */
  const operateTask = async (req: TaskOperationRequest): Promise<OperationResult> => {
    const report = reporter(req)
    const traceparent = activeTraceparent()
    return inSpan(operationSpanName(req), { attributes: { 'stdops.task.id': req.taskId } }, async () => {
      let result: OperationResult
      try {
        const action = checkedAction(req.action)
        result =
          db.provider === 'postgresql' && (action === 'pause' || action === 'resume')
            ? await operateInOneStatement(req, action)
            : await db.tx((tx) => operateInTx(tx, req, traceparent))
      } catch (err) {
        report(failure(err))
        throw err
      }
      report('ok')
      deps.afterCommit(result.effects)
      return result
    })
  }

  /**
   * A node action: the same protocol on one node. Decided (core's checkNodeAction) and planned
   * under the task row's lock, one compare-and-set on the node's version, its events and its
   * operate record (`node_id`, `extra_info`) in one transaction; wake-ups and aborts after it.
   */
  const operateNode = async (req: NodeOperationRequest): Promise<NodeOperationResult> => {
    const began = performance.now()
    const label = isNodeAction(req.action) ? `node_${req.action}` : 'invalid'
    const report = (result: 'ok' | 'refused' | 'error') =>
      env.telemetry.operation({ action: label, result, durationMs: performance.now() - began })
    return inSpan(
      `stdops.operation ${label}`,
      { attributes: { 'stdops.task.id': req.taskId, 'stdops.node.id': req.nodeId } },
      async () => {
        let result: NodeOperationResult
        try {
          result = await db.tx(async (tx) => {
            const at = now()
            const applied = await applyNodeAction(env, tx, req, at)
            await writeOperateRecord(tx, {
              taskId: req.taskId,
              projectId: req.projectId,
              operator: req.operator,
              appCode: req.appCode ?? '',
              type: applied.action,
              source: req.source,
              nodeId: req.nodeId,
              extraInfo: extraInfoOf(req),
              at,
            })
            const effects: Effect[] = []
            if (applied.abort) {
              effects.push({
                kind: 'abortNode',
                taskId: req.taskId,
                nodeId: req.nodeId,
                reason: `The node has been terminated by ${req.operator}.`,
              })
            }
            if (applied.wake || applied.abort) effects.push({ kind: 'wake', taskId: req.taskId })
            return { state: applied.state, version: applied.version, at, effects }
          })
        } catch (err) {
          report(failure(err))
          throw err
        }
        report('ok')
        deps.afterCommit(result.effects)
        return result
      },
    )
  }

  return { operateTask, operateTaskInTx, operateNode }
}

/** What the operate record keeps of a node action: what it took (the callback data's keys, not its values). */
function extraInfoOf(req: NodeOperationRequest): Record<string, unknown> {
  const info: Record<string, unknown> = { action: req.action }
  if (req.inputs !== undefined) info.inputs = req.inputs
  if (req.flowId !== undefined) info.flow_id = req.flowId
  if (req.flowIds !== undefined) info.flow_ids = req.flowIds
  if (req.convergeGatewayId !== undefined) info.converge_gateway_id = req.convergeGatewayId
  if (req.data !== undefined) info.callback_data_keys = Object.keys(req.data)
  if (req.version !== undefined) info.version = req.version
  return info
}

export type Protocol = ReturnType<typeof createProtocol>
