/**
 * The engine's transitions: plain functions over one open transaction. Each locks the task row
 * first (lockTask; on PostgreSQL a node's start or completion is a step of three statements that
 * takes the task row in its write only, see stepOnPostgres), asks plan.ts what happens, and writes
 * it through the store. None keeps state
 * between calls or touches the clock, the network or a component: the worker (worker.ts) and the
 * operation protocol (protocol.ts) call them and perform whatever has to happen after the commit.
 */
import {
  checkNodeAction,
  InvalidOperationError,
  LegacyCode,
  type NodeAction,
  type NodeState,
  NotFoundError,
  ParamInvalidError,
  resolveConstants,
} from '@stdops/core'
import type { Executor } from '@stdops/db'
import type { Logger } from 'pino'
import {
  type ActivityOutcome,
  describeIssues,
  type NodeActionInput,
  type Plan,
  type PlanContext,
  planActivityResult,
  planActivityStart,
  planDueNode,
  planGiveUp,
  planHoldInSubprocess,
  planNodeAction,
  planRevoke,
  planTaskStart,
  rowsReadFrom,
  stepReadsFrom,
  type TaskGraph,
} from './plan'
import {
  type Applied,
  applyPlan,
  type ClaimedJob,
  claimTaskJobs,
  closeOpenHistories,
  compareAndSetNode,
  deferHeldJob,
  deleteHeldJob,
  deleteJob,
  dropNodeJobs,
  dropTaskJobs,
  enqueueCallbackEvent,
  enqueueNodeCallback,
  fenceReason,
  type GraphCache,
  hasNodeJob,
  type LockedTask,
  loadNodes,
  lockStep,
  lockTask,
  readStep,
  recordCallbackOutcome,
  recordFenced,
  releaseLeases,
  type StepWrite,
  setNodeWait,
  stillHeld,
  writeStep,
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
  /**
   * The clock (epoch ms). A PostgreSQL node step reads it again once its locks are taken: a step
   * that waited for another step of its task (at a converge gateway) is then timed after it.
   */
  now?: (() => number) | undefined
}

/** An activity whose start has committed, ready to execute. */
export interface Started {
  module: ComponentModule
  inputs: unknown
  /** The pass and attempt this run is: where its log lines go. */
  loop: number
  attempt: number
  timeoutMs?: number | undefined
  timeoutAction?: 'forced_fail' | 'forced_fail_and_skip' | undefined
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
  for (let i = 0; i < plan.autoRetried; i++) tx.afterCommit(() => env.telemetry.nodeRetried('automatic'))
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
    scopeConstants: task.scopeConstants,
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
    scopeConstants: task.scopeConstants,
    taskState: task.state,
    now: at,
    worker: env.workerId,
  }
  const plan = planRevoke(ctx)
  logBugs(env, taskId, plan)
  await closeOpenHistories(tx, taskId, 'REVOKED', at)
  await apply(env, tx, taskId, task, ctx, plan, at)
  await enqueueCallbackEvent(
    tx,
    taskId,
    task,
    'revoked',
    '',
    { task_id: taskId, task_success: false, task_status: 'REVOKED', task_outputs: [] },
    at,
  )
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
  if (tx.provider === 'postgresql') {
    const step = await stepOnPostgres(env, tx, job, at, { kind: 'start' })
    if (step) {
      const started = step.started
      return started ? { kind: 'run', ...started } : { kind: 'done', applied: step.applied }
    }
  }
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
  const held = planHoldInSubprocess(ctx, job.nodeId)
  if (held) {
    // Due before its subprocess was paused: kept, not started, until resume_subproc.
    await deleteHeldJob(tx, job, env.workerId)
    return { kind: 'done', applied: await apply(env, tx, job.taskId, task, ctx, held, at) }
  }
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
    loop: plan.run.loop,
    attempt: plan.run.attempt,
    timeoutMs: plan.run.timeoutMs,
    timeoutAction: plan.run.timeoutAction,
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
    if (!(await deleteHeldJob(tx, job, env.workerId))) return fence()
    // From now on the node takes a callback (the node action `callback`, or node_callback).
    await setNodeWait(tx, job.taskId, job.nodeId, 'callback')
    return { applied: null, chained: [] }
  }
  if (tx.provider === 'postgresql') {
    const step = await stepOnPostgres(env, tx, job, at, { kind: 'result', outcome: outcome!, chaining })
    if (step) return { applied: step.applied, chained: step.chained }
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

/** What a start decides: the plan, and whether the activity runs now (its job is kept, leased). */
function decideStart(env: TransitionEnv, taskId: number, ctx: PlanContext, nodeId: string): Plan {
  // Due before its subprocess was paused: kept, not started, until resume_subproc.
  const held = planHoldInSubprocess(ctx, nodeId)
  if (held) return held
  const plan =
    ctx.graph.graph.nodes.get(nodeId)?.kind === 'activity'
      ? planActivityStart(ctx, nodeId, env.registry.get)
      : planDueNode(ctx, nodeId)
  logBugs(env, taskId, plan)
  return plan
}

/** The context a later decision of the same transaction sees: `ctx` once `plan` is written. */
function afterPlan(ctx: PlanContext, plan: Plan): PlanContext {
  const nodes = new Map(ctx.nodes)
  for (const { nodeId, inputs: _inputs, outputs: _outputs, ...row } of plan.rows) nodes.set(nodeId, row)
  return {
    ...ctx,
    nodes,
    constants: plan.constants ?? ctx.constants,
    scopeConstants: plan.scopeConstants ?? ctx.scopeConstants,
    taskState: plan.finish ? 'FINISHED' : ctx.taskState,
  }
}

function startedFrom(env: TransitionEnv, plan: Plan, task: LockedTask): Started {
  const run = plan.run!
  const module = env.registry.get(run.code)
  if (!module) throw new Error(`component ${run.code} vanished from the registry`)
  return {
    module,
    inputs: run.inputs,
    loop: run.loop,
    attempt: run.attempt,
    timeoutMs: run.timeoutMs,
    timeoutAction: run.timeoutAction,
    traceparent: task.traceparent,
  }
}

type StepKind = { kind: 'start' } | { kind: 'result'; outcome: ActivityOutcome; chaining: Chaining | null }

interface StepDone {
  applied: Applied
  /** A start that runs: what to execute. */
  started?: Started
  chained: Recorded['chained']
}

/**
 * The node rows a start may write, whose locks it takes (lockStep): its own row, unless its start
 * can go on past it (an error_ignorable activity that fails to start finishes and routes on, and
 * an event or gateway runs inline): then every row its decision reads.
 */
function startWrites(graph: TaskGraph, nodeId: string): readonly string[] {
  const node = graph.graph.nodes.get(nodeId)
  return node?.kind === 'activity' && node.activity?.error_ignorable !== true
    ? [nodeId]
    : rowsReadFrom(graph, nodeId)
}

/** How many times a step reads and decides again when the task moved on under it, before it takes the task row's lock instead. */
const STEP_TRIES = 3

/**
 * PostgreSQL: a node's start, or its completion with the starts it chains, as one transaction of
 * three statements, none of which waits for another step of the task unless both write the same
 * node row:
 * 1. lockStep: the task's advisory lock shared, and an exclusive advisory lock per node row the
 *    step may write (its node; for a completion also the rows its walk reaches, a converge gateway
 *    among them, where the branches of a fork meet and are counted);
 * 2. readStep: the task row, whether the job is still held, and the node rows the decisions read;
 * 3. writeStep: one statement that takes the task row's lock on condition that its state and
 *    constants are as read (a pause that committed in between fails it: nothing is written, and
 *    the step reads and decides again), deletes (or keeps) the held job, and writes every row.
 * The decisions are made in memory between 2 and 3, each chained start on the rows as the
 * decisions before it left them, so nothing is read back. The task row is locked only by that
 * last statement, until the COMMIT that follows it: the steps of a fork hold it one after the
 * other for that time only. Returns null, having written nothing, when the step needs what only
 * the statement-per-part path does (the task is not RUNNING for a start, the job is no longer
 * held: fenced, a callback_url event to record, a history row opened and closed in the same step,
 * the task moving on under it STEP_TRIES times); the caller then goes on with that path in the
 * same transaction.
 */
async function stepOnPostgres(
  env: TransitionEnv,
  tx: Executor,
  job: ClaimedJob,
  at: number,
  step: StepKind,
): Promise<StepDone | null> {
  const graph = await env.graphs.get(tx, job.taskId)
  const chaining = step.kind === 'result' ? step.chaining : null
  const reads = chaining ? stepReadsFrom(graph, job.nodeId) : rowsReadFrom(graph, job.nodeId)
  await lockStep(tx, job.taskId, step.kind === 'start' ? startWrites(graph, job.nodeId) : reads)
  // Timed from here: a branch that waited for a sibling's step at their converge is later than it.
  at = Math.max(at, env.now?.() ?? at)
  for (let tries = 0; tries < STEP_TRIES; tries++) {
    const read = await readStep(tx, job, env.workerId, reads)
    if (!read?.held) return null
    const task = read.task
    if (step.kind === 'start' && task.state !== 'RUNNING') return null
    let ctx: PlanContext = {
      graph,
      nodes: read.nodes,
      constants: task.constants,
      scopeConstants: task.scopeConstants,
      taskState: task.state,
      now: at,
      worker: env.workerId,
    }
    const first =
      step.kind === 'result'
        ? planActivityResult(ctx, job.nodeId, step.outcome)
        : decideStart(env, job.taskId, ctx, job.nodeId)
    if (step.kind === 'result') logBugs(env, job.taskId, first)
    const runs = step.kind === 'start' && first.run !== undefined
    const decisions: Array<{ ctx: PlanContext; plan: Plan }> = [{ ctx, plan: first }]
    // The successors this completion starts itself (chaining), while the task runs.
    const room = chaining ? chaining.room() : 0
    // (A node due twice is started once here; its second job stays due, as after a claim.)
    const chains = !first.finish && ctx.taskState === 'RUNNING'
    const chainedIds: string[] = []
    const dueJobs: string[] = []
    for (const nodeId of first.jobs) {
      if (chains && chainedIds.length < room && !chainedIds.includes(nodeId)) chainedIds.push(nodeId)
      else dueJobs.push(nodeId)
    }
    const leased: string[] = []
    for (const nodeId of chainedIds) {
      ctx = afterPlan(ctx, decisions[decisions.length - 1]!.plan)
      const plan = decideStart(env, job.taskId, ctx, nodeId)
      decisions.push({ ctx, plan })
      if (plan.run) leased.push(nodeId)
      dueJobs.push(...plan.jobs)
    }
    const plans = decisions.map((d) => d.plan)
    if (task.callbackUrl !== null && plans.some((p) => p.failedNodes.length > 0 || p.finish)) return null
    // Merged in order: a node's row as the last decision left it (inputs and outputs kept from an
    // earlier one unless set again), one history close per attempt, none of an attempt opened here.
    const rows = new Map<string, Plan['rows'][number]>()
    const closes = new Set<string>()
    const opened = new Set<string>()
    const attemptKey = (h: { nodeId: string; loop: number; attempt: number }) =>
      `${h.nodeId}\u0000${h.loop}\u0000${h.attempt}`
    for (const plan of plans) {
      for (const r of plan.rows) {
        const before = rows.get(r.nodeId)
        const inputs = r.inputs ?? before?.inputs
        const outputs = r.outputs ?? before?.outputs
        rows.set(r.nodeId, {
          ...r,
          ...(inputs === undefined ? {} : { inputs }),
          ...(outputs === undefined ? {} : { outputs }),
        })
      }
      for (const h of plan.historyCloses) {
        const key = attemptKey(h)
        if (closes.has(key) || opened.has(key)) return null
        closes.add(key)
      }
      for (const h of plan.historyInserts) opened.add(attemptKey(h))
    }
    const last = <K extends 'constants' | 'scopeConstants' | 'finish'>(key: K): Plan[K] =>
      plans.reduce<Plan[K]>((found, p) => p[key] ?? found, undefined as Plan[K])
    const write: StepWrite = {
      task,
      job,
      worker: env.workerId,
      keepJob: runs,
      rows: [...rows.values()],
      historyCloses: plans.flatMap((p) => p.historyCloses),
      historyInserts: plans.flatMap((p) => p.historyInserts),
      events: plans.flatMap((p) => p.events),
      jobs: dueJobs,
      laterJobs: plans.flatMap((p) => p.laterJobs),
      leased: { until: at + (chaining?.leaseMs ?? 0), nodeIds: leased },
      constants: last('constants'),
      scopeConstants: last('scopeConstants'),
      finish: last('finish'),
    }
    const ids = await writeStep(tx, write, at)
    // The task moved on since the read (a pause, a sibling's constants): read and decide again.
    if (!ids) continue
    for (const d of decisions) {
      reportPlan(env.telemetry, env.registry, tx, d.ctx, d.plan, task, at)
      for (let i = 0; i < d.plan.autoRetried; i++)
        tx.afterCommit(() => env.telemetry.nodeRetried('automatic'))
    }
    const chained: Recorded['chained'] = []
    for (const d of decisions.slice(1)) {
      if (!d.plan.run) continue
      const nodeId = d.plan.run.nodeId
      const id = ids.get(nodeId)
      if (id === undefined) throw new Error(`the job started for node ${nodeId} was not inserted`)
      const next: ClaimedJob = {
        id,
        taskId: job.taskId,
        projectId: task.projectId,
        nodeId,
        kind: 'node',
        attempts: 1,
        failures: 0,
        lastError: null,
        payload: null,
        dueAt: at,
      }
      chained.push({ job: next, started: startedFrom(env, d.plan, task) })
    }
    return {
      applied: { jobs: dueJobs.length, finished: write.finish !== undefined, callbackEnqueued: false },
      ...(runs ? { started: startedFrom(env, first, task) } : {}),
      chained,
    }
  }
  return null
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
    const callbackId = job.payload === null ? null : Number(job.payload)
    await recordCallbackOutcome(tx, job.taskId, callbackId, {
      status: 'failed',
      attempts: job.attempts,
      error,
      at,
    })
    return null
  }
  const task = await lockTask(tx, job.taskId, { steps: 'exclude' })
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
  at: number,
): Promise<void> {
  const callbackId = job.payload === null ? null : Number(job.payload)
  if (error === null) {
    await recordCallbackOutcome(tx, job.taskId, callbackId, {
      status: 'success',
      attempts: job.attempts,
      error: null,
      at,
    })
    await deleteJob(tx, job.id)
    return
  }
  const held =
    retryAt === null
      ? await deleteHeldJob(tx, job, env.workerId)
      : await deferHeldJob(tx, job, env.workerId, retryAt, 'callback')
  if (!held) return
  await recordCallbackOutcome(tx, job.taskId, callbackId, {
    status: retryAt === null ? 'failed' : 'pending',
    attempts: job.attempts,
    error,
    at,
  })
}

// ---- node operations ------------------------------------------------------------------------------

/** A node action as a caller asks for it (operate_node, node_callback, the node.* procedures). */
export interface NodeActionRequest {
  taskId: number
  nodeId: string
  action: string
  operator: string
  /** retry: inputs replacing the rendered ones, for this and later attempts. */
  inputs?: Record<string, unknown> | undefined
  /** skip_exg: the flow to take. */
  flowId?: string | undefined
  /** skip_cpg: the flows to fork, and the fork's converge gateway. */
  flowIds?: readonly string[] | undefined
  convergeGatewayId?: string | undefined
  /** callback: the data delivered, and the version the caller saw (refused when not current). */
  data?: Record<string, unknown> | undefined
  version?: number | undefined
}

export interface NodeActionApplied {
  action: NodeAction
  /** The node's state and version after the action. */
  state: NodeState
  version: number
  /** Jobs due now (wake workers); a running component to abort (forced_fail). */
  wake: boolean
  abort: boolean
}

/** The checks on what the action takes beyond the node (3540000 naming the field). */
function actionInput(
  req: NodeActionRequest,
  action: NodeAction,
  node: { outgoing: readonly string[]; convergeId?: string | undefined },
  reached: boolean,
): NodeActionInput {
  switch (action) {
    case 'retry':
      return { action, inputs: req.inputs }
    case 'skip':
    case 'callback':
    case 'resume':
    case 'pause_subproc':
    case 'resume_subproc':
    case 'retry_subprocess':
      return { action }
    case 'skip_exg':
      if (req.flowId === undefined || !node.outgoing.includes(req.flowId))
        throw new ParamInvalidError(
          `invalid param: flow_id: must be one of node[${req.nodeId}]'s outgoing flows (${node.outgoing.join(', ')})`,
        )
      return { action, flowId: req.flowId }
    case 'skip_cpg': {
      const flowIds = [...new Set(req.flowIds ?? [])]
      if (flowIds.length === 0 || flowIds.some((f) => !node.outgoing.includes(f)))
        throw new ParamInvalidError(
          `invalid param: flow_ids: must be a non-empty list of node[${req.nodeId}]'s outgoing flows (${node.outgoing.join(', ')})`,
        )
      if (req.convergeGatewayId !== node.convergeId)
        throw new ParamInvalidError(
          `invalid param: converge_gateway_id: must be ${node.convergeId ?? 'its converge gateway'}`,
        )
      return { action, flowIds }
    }
    case 'forced_fail':
      return { action, operator: req.operator }
    case 'pause':
      return { action, reached }
  }
}

/**
 * One node action, inside `tx`: lock the task row, decide with core's checkNodeAction on the rows
 * as they are, plan it (plan.ts planNodeAction), compare-and-set the node's version, and write
 * the plan with its events. The caller writes the operate record in the same transaction and
 * performs the effects after the commit. Nothing is written when it is refused.
 */
export async function applyNodeAction(
  env: TransitionEnv,
  tx: Executor,
  req: NodeActionRequest,
  at: number,
): Promise<NodeActionApplied> {
  const task = await lockTask(tx, req.taskId, { steps: 'exclude' })
  if (!task) throw new NotFoundError(`task[id=${req.taskId}] does not exist`)
  const graph = await env.graphs.get(tx, req.taskId)
  const node = graph.graph.nodes.get(req.nodeId)
  if (!node) throw new ParamInvalidError(`task[${req.taskId}] does not have node[${req.nodeId}]`)
  let ctx = await planContext(env, tx, req.taskId, task, at, req.nodeId)
  // A subprocess action decides on, and may change, every node of its child tree.
  const inside: string[] = []
  if (node.kind === 'subprocess') {
    ctx = { ...ctx, nodes: await loadNodes(tx, req.taskId) }
    for (const id of ctx.nodes.keys()) {
      for (let p = graph.graph.parentOf?.get(id); p !== undefined; p = graph.graph.parentOf?.get(p)) {
        if (p === req.nodeId) inside.push(id)
      }
    }
  }
  const row = ctx.nodes.get(req.nodeId) ?? null
  const check = checkNodeAction(req.action, task.state, {
    id: req.nodeId,
    kind: node.kind,
    retryable: node.activity?.retryable,
    skippable: node.activity?.skippable,
    state: row?.state ?? null,
    held: row?.held ?? false,
    wait: row?.wait ?? null,
    failedInside: inside.some((id) => ctx.nodes.get(id)?.state === 'FAILED'),
    runningInside: inside.some(
      (id) => ctx.nodes.get(id)?.state === 'RUNNING' && graph.graph.nodes.get(id)?.kind !== 'subprocess',
    ),
  })
  if (!check.ok) {
    throw check.code === LegacyCode.REQUEST_PARAM_INVALID
      ? new ParamInvalidError(check.message)
      : new InvalidOperationError(check.message)
  }
  const action = req.action as NodeAction
  if (action === 'callback' && req.version !== undefined && req.version !== row?.version) {
    throw new InvalidOperationError(`node[${req.nodeId}] version ${req.version} is not current`)
  }
  const reached =
    action === 'pause' && row?.state === 'READY' && (await hasNodeJob(tx, req.taskId, req.nodeId))
  const plan = planNodeAction(ctx, req.nodeId, actionInput(req, action, node, reached))
  logBugs(env, req.taskId, plan)
  const written = plan.rows.find((r) => r.nodeId === req.nodeId)
  if (!written || plan.bugs.length > 0) {
    throw new Error(`node action ${action} on node[${req.nodeId}] planned no change: ${plan.bugs.join('; ')}`)
  }
  // The task row is ours, so nothing moves the node meanwhile: this holds unless the engine has a
  // bug, and then the action is refused rather than applied twice.
  if (!(await compareAndSetNode(tx, req.taskId, req.nodeId, row?.version ?? null, written.version))) {
    throw new InvalidOperationError(`node[${req.nodeId}] changed during the operation; try again`)
  }
  if (action === 'forced_fail' || (action === 'pause' && reached)) {
    await dropNodeJobs(tx, req.taskId, req.nodeId)
  }
  // The child tree starts over: what was due in it from its last run is dropped.
  if (action === 'retry_subprocess') for (const id of inside) await dropNodeJobs(tx, req.taskId, id)
  const callsBack = action === 'callback' || (action === 'resume' && row?.state === 'RUNNING')
  if (callsBack) await enqueueNodeCallback(tx, req.taskId, req.nodeId, req.data ?? {}, at)
  const applied = await apply(env, tx, req.taskId, task, ctx, plan, at)
  if (action === 'retry') tx.afterCommit(() => env.telemetry.nodeRetried('manual'))
  return {
    action,
    state: written.state,
    version: written.version,
    wake: applied.jobs > 0 || callsBack,
    abort: action === 'forced_fail',
  }
}
