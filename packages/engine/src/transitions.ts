/**
 * The engine's transitions: plain functions over one open transaction. Each locks the task row
 * first (lockTask), asks plan.ts what happens, and writes it through the store. None keeps state
 * between calls or touches the clock, the network or a component: the worker (worker.ts) and the
 * operation protocol (protocol.ts) call them and perform whatever has to happen after the commit.
 */
import { resolveConstants } from '@stdops/core'
import type { Executor } from '@stdops/db'
import type { Logger } from 'pino'
import {
  type ActivityOutcome,
  describeIssues,
  type Plan,
  type PlanContext,
  planActivityResult,
  planActivityStart,
  planDueNode,
  planGiveUp,
  planRevoke,
  planTaskStart,
  rowsReadFrom,
} from './plan'
import {
  type Applied,
  applyPlan,
  type ClaimedJob,
  claimTaskJobs,
  closeOpenHistories,
  deferHeldJob,
  deleteHeldJob,
  deleteJob,
  dropTaskJobs,
  enqueueCallback,
  fenceReason,
  type GraphCache,
  type LockedTask,
  loadNodes,
  lockTask,
  recordCallbackOutcome,
  recordFenced,
  releaseLeases,
  stillHeld,
} from './store'
import { type EngineTelemetry, reportPlan } from './telemetry'
import type { ComponentModule, ComponentRegistry, ComponentResult } from './types'

/** What every transition reads besides the transaction. */
export interface TransitionEnv {
  registry: ComponentRegistry
  graphs: GraphCache
  workerId: string
  logger: Logger
  telemetry: EngineTelemetry
}

/** An activity whose start has committed, ready to execute. */
export interface Started {
  module: ComponentModule
  inputs: unknown
  timeoutMs?: number | undefined
  /** The task's traceparent: the node's span links to it. */
  traceparent: string | null
}

export type StartOutcome =
  | { kind: 'held' | 'fenced' }
  | { kind: 'done'; applied: Applied }
  | ({ kind: 'run' } & Started)

function logBugs(env: TransitionEnv, taskId: number, plan: Plan) {
  for (const bug of plan.bugs) {
    env.logger.error({ taskId, bug }, 'engine bug: refused a state move')
    env.telemetry.error('bug')
  }
}

/** Writes a plan and reports what it did to the telemetry once the transaction commits. */
async function apply(
  env: TransitionEnv,
  tx: Executor,
  taskId: number,
  task: LockedTask,
  ctx: Pick<PlanContext, 'graph' | 'nodes'>,
  plan: Plan,
  at: number,
): Promise<Applied> {
  const applied = await applyPlan(tx, taskId, task, plan, at)
  reportPlan(env.telemetry, env.registry, tx, ctx, plan, task, at)
  return applied
}

/** What a decision about `nodeId` needs: the graph and the rows it can read (rowsReadFrom). */
async function planContext(
  env: TransitionEnv,
  tx: Executor,
  taskId: number,
  task: LockedTask,
  at: number,
  nodeId: string,
): Promise<PlanContext> {
  const graph = await env.graphs.get(tx, taskId)
  return {
    graph,
    nodes: await loadNodes(tx, taskId, { ids: rowsReadFrom(graph, nodeId) }),
    constants: task.constants,
    taskState: task.state,
    now: at,
    worker: env.workerId,
  }
}

/** The task just moved to RUNNING (in this transaction): run its start event and what follows inline. */
export async function startRun(env: TransitionEnv, tx: Executor, taskId: number, at: number): Promise<void> {
  const task = await lockTask(tx, taskId, { running: true })
  if (!task) throw new Error(`task ${taskId} is not RUNNING: cannot start it`)
  const resolved = resolveConstants(task.constants)
  if (!resolved.ok) throw new Error(`task ${taskId}: constants cannot be resolved: ${resolved.message}`)
  const graph = await env.graphs.get(tx, taskId)
  const ctx = await planContext(env, tx, taskId, task, at, graph.graph.startId)
  const plan = planTaskStart(ctx)
  logBugs(env, taskId, plan)
  await apply(env, tx, taskId, task, ctx, plan, at)
}

/**
 * The task just moved to REVOKED (in this transaction): drops its node and timer jobs, marks
 * READY, RUNNING and SUSPENDED nodes REVOKED, closes their history, enqueues the callback.
 */
export async function revokeRun(env: TransitionEnv, tx: Executor, taskId: number, at: number): Promise<void> {
  const task = await lockTask(tx, taskId)
  if (!task) throw new Error(`task ${taskId} does not exist`)
  await dropTaskJobs(tx, taskId)
  const ctx: PlanContext = {
    graph: await env.graphs.get(tx, taskId),
    nodes: await loadNodes(tx, taskId, { states: ['READY', 'RUNNING', 'SUSPENDED'] }),
    constants: task.constants,
    taskState: task.state,
    now: at,
    worker: env.workerId,
  }
  const plan = planRevoke(ctx)
  logBugs(env, taskId, plan)
  await closeOpenHistories(tx, taskId, 'REVOKED', at)
  await apply(env, tx, taskId, task, ctx, plan, at)
  await enqueueCallback(tx, taskId, task, at)
  tx.afterCommit(() =>
    env.telemetry.taskEnded({
      state: 'REVOKED',
      durationMs: task.startedAt === null ? null : at - task.startedAt,
    }),
  )
}

/** A claimed node job: the node start, under the task row's lock, requires the task to be RUNNING. */
export async function startNode(
  env: TransitionEnv,
  tx: Executor,
  job: ClaimedJob,
  at: number,
): Promise<StartOutcome> {
  const task = await lockTask(tx, job.taskId, { running: true })
  if (!task) {
    // Paused (or revoked) since the claim: the job waits, unleased, for resume.
    await releaseLeases(tx, env.workerId, [job.id])
    return { kind: 'held' }
  }
  if (!(await stillHeld(tx, job, env.workerId))) {
    await recordFenced(tx, job, env.workerId, await fenceReason(tx, job, env.workerId), at)
    tx.afterCommit(() => env.telemetry.error('fenced'))
    return { kind: 'fenced' }
  }
  const ctx = await planContext(env, tx, job.taskId, task, at, job.nodeId)
  const node = ctx.graph.graph.nodes.get(job.nodeId)
  if (node?.kind !== 'activity') {
    const plan = planDueNode(ctx, job.nodeId)
    logBugs(env, job.taskId, plan)
    await deleteHeldJob(tx, job, env.workerId)
    return { kind: 'done', applied: await apply(env, tx, job.taskId, task, ctx, plan, at) }
  }
  const plan = planActivityStart(ctx, job.nodeId, env.registry.get)
  logBugs(env, job.taskId, plan)
  if (!plan.run) await deleteHeldJob(tx, job, env.workerId)
  const applied = await apply(env, tx, job.taskId, task, ctx, plan, at)
  if (!plan.run) return { kind: 'done', applied }
  const module = env.registry.get(plan.run.code)
  if (!module) throw new Error(`component ${plan.run.code} vanished from the registry`)
  return {
    kind: 'run',
    module,
    inputs: plan.run.inputs,
    timeoutMs: plan.run.timeoutMs,
    traceparent: task.traceparent,
  }
}

/** A finished or failed step as the node records it (outputs validated by the component's schema). */
export function outcomeOf(
  module: ComponentModule | undefined,
  result: ComponentResult,
): ActivityOutcome | null {
  if (result.status === 'failed') return { status: 'failed', error: result.error }
  if (result.status !== 'finished') return null
  const parsed = module
    ? module.outputs.safeParse(result.outputs)
    : { success: true as const, data: result.outputs }
  if (!parsed.success) return { status: 'failed', error: describeIssues('output', parsed.error.issues) }
  if (typeof parsed.data !== 'object' || parsed.data === null || Array.isArray(parsed.data)) {
    return { status: 'failed', error: 'outputs must be an object' }
  }
  return { status: 'finished', outputs: parsed.data as Record<string, unknown> }
}

/** Whether, and how many of, the successors a completion may start itself (see recordResult). */
export interface Chaining {
  /** How many successors to start in this transaction; 0 or less: none. Read inside the transaction. */
  room(): number
  leaseMs: number
}

export interface Recorded {
  /** What the completion applied; null when it applied nothing (fenced, or a deferred wait). */
  applied: Applied | null
  /** Successors started in the same transaction, to execute now. */
  chained: Array<{ job: ClaimedJob; started: Started }>
}

/**
 * Applies a component's result, fenced by the job's lease: a `wait` turns the job into a timer, a
 * `callback` drops it (the node waits for its callback), a finished or failed step completes the
 * node and routes on. With `chaining`, the activities this result leads to are claimed and
 * started in this same transaction (while the task runs), instead of a claim and a start
 * transaction each; whatever is not taken stays a due job for any worker.
 */
export async function recordResult(
  env: TransitionEnv,
  tx: Executor,
  job: ClaimedJob,
  result: ComponentResult,
  outcome: ActivityOutcome | null,
  at: number,
  chaining: Chaining | null,
): Promise<Recorded> {
  const fence = async (): Promise<Recorded> => {
    const reason = await fenceReason(tx, job, env.workerId)
    await recordFenced(tx, job, env.workerId, reason, at)
    env.logger.warn({ taskId: job.taskId, nodeId: job.nodeId, jobId: job.id, reason }, 'result fenced')
    tx.afterCommit(() => env.telemetry.error('fenced'))
    return { applied: null, chained: [] }
  }
  if (result.status === 'wait') {
    return (await deferHeldJob(tx, job, env.workerId, result.until, 'timer'))
      ? { applied: null, chained: [] }
      : fence()
  }
  if (result.status === 'callback') {
    return (await deleteHeldJob(tx, job, env.workerId)) ? { applied: null, chained: [] } : fence()
  }
  const task = await lockTask(tx, job.taskId)
  if (!task || !(await deleteHeldJob(tx, job, env.workerId))) return fence()
  const ctx = await planContext(env, tx, job.taskId, task, at, job.nodeId)
  const plan = planActivityResult(ctx, job.nodeId, outcome!)
  logBugs(env, job.taskId, plan)
  const done = await apply(env, tx, job.taskId, task, ctx, plan, at)
  const room = chaining ? chaining.room() : 0
  if (!chaining || task.state !== 'RUNNING' || plan.jobs.length === 0 || room <= 0) {
    return { applied: done, chained: [] }
  }
  const claimed = await claimTaskJobs(
    tx,
    env.workerId,
    job.taskId,
    plan.jobs.slice(0, room),
    at,
    chaining.leaseMs,
  )
  const chained: Recorded['chained'] = []
  let more = 0
  for (const next of claimed) {
    const outcome = await startNode(env, tx, next, at)
    if (outcome.kind === 'run') chained.push({ job: next, started: outcome })
    if (outcome.kind === 'done') more += outcome.applied.jobs
  }
  return { applied: { ...done, jobs: done.jobs - claimed.length + more }, chained }
}

/**
 * A poison job: its transaction failed too often. Its node ends with `error` (FAILED, or FINISHED
 * with the error ignored for an error_ignorable activity) and the job is deleted; a callback_url
 * job records the callback as failed. Returns what was applied (null: fenced, nothing applied).
 */
export async function giveUpJob(
  env: TransitionEnv,
  tx: Executor,
  job: ClaimedJob,
  error: string,
  at: number,
): Promise<Applied | null> {
  if (job.kind === 'callback') {
    if (!(await deleteHeldJob(tx, job, env.workerId))) return null
    await recordCallbackOutcome(tx, job.taskId, { status: 'failed', attempts: job.attempts, error })
    return null
  }
  const task = await lockTask(tx, job.taskId)
  if (!task || !(await deleteHeldJob(tx, job, env.workerId))) return null
  const ctx = await planContext(env, tx, job.taskId, task, at, job.nodeId)
  const plan = planGiveUp(ctx, job.nodeId, error)
  logBugs(env, job.taskId, plan)
  return apply(env, tx, job.taskId, task, ctx, plan, at)
}

/** A timer or callback job for a node that is no longer RUNNING: dropped. */
export async function dropStaleJob(env: TransitionEnv, tx: Executor, job: ClaimedJob): Promise<void> {
  await deleteHeldJob(tx, job, env.workerId)
}

/**
 * Records one try of the task's callback_url. A success is recorded whatever became of the lease,
 * so that it is never sent again; a failure is retried at `retryAt` (null: it was the last try),
 * if this worker still holds the job.
 */
export async function recordCallbackTry(
  env: TransitionEnv,
  tx: Executor,
  job: ClaimedJob,
  error: string | null,
  retryAt: number | null,
): Promise<void> {
  if (error === null) {
    await recordCallbackOutcome(tx, job.taskId, { status: 'success', attempts: job.attempts, error: null })
    await deleteJob(tx, job.id)
    return
  }
  const held =
    retryAt === null
      ? await deleteHeldJob(tx, job, env.workerId)
      : await deferHeldJob(tx, job, env.workerId, retryAt, 'callback')
  if (!held) return
  await recordCallbackOutcome(tx, job.taskId, {
    status: retryAt === null ? 'failed' : 'pending',
    attempts: job.attempts,
    error,
  })
}
