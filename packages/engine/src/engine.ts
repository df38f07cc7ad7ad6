import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import { resolveConstants } from '@stdops/core'
import { type Db, type Executor, sql } from '@stdops/db'
import pino, { type Logger } from 'pino'
import { CALLBACK_MAX_ATTEMPTS, callbackBackoff, callbackTarget, postCallback } from './callback'
import { createComponentRegistry } from './components'
import {
  type ActivityOutcome,
  describeIssues,
  type Plan,
  type PlanContext,
  planActivityResult,
  planActivityStart,
  planDueNode,
  planRevoke,
  planTaskStart,
  rowsReadFrom,
} from './plan'
import {
  type Applied,
  applyPlan,
  type ClaimedJob,
  claimJobs,
  claimTaskJobs,
  closeOpenHistories,
  countRunningNodes,
  deferHeldJob,
  deleteHeldJob,
  dropTaskJobs,
  enqueueCallback,
  fenceReason,
  GraphCache,
  type LockedTask,
  loadNodes,
  lockTask,
  readNodeInputs,
  recordFenced,
  releaseLeases,
  renewLeases,
  stillHeld,
} from './store'
import type {
  ComponentContext,
  ComponentModule,
  ComponentResult,
  Engine,
  EngineDeps,
  TaskAction,
  WorkerMode,
} from './types'

/** Wakes idle workers (payload: task id). */
export const WORK_CHANNEL = 'stdops_work'
/** Aborts a revoked task's running components in every process (payload: task id). */
export const REVOKE_CHANNEL = 'stdops_revoke'

/** One claimed job being worked on by this process. */
interface Run {
  job: ClaimedJob
  controller: AbortController
  settled: boolean
  /** Given up after the grace period: no longer counted, its result fenced. */
  abandoned: boolean
  /** Its lease was released by stop(): its result is dropped without touching the database. */
  released: boolean
  done?: Promise<void>
  grace?: NodeJS.Timeout
}

/** An activity whose start has committed, ready to execute. */
interface Started {
  module: ComponentModule
  inputs: unknown
  timeoutMs?: number | undefined
}

type StartOutcome =
  | { kind: 'held' | 'fenced' }
  | { kind: 'done'; applied: Applied }
  | ({ kind: 'run' } & Started)

/** At most this many successors are started in their predecessor's completion (the rest are claimed as usual). */
const CHAIN_LIMIT = 8

const errorMessage = (err: unknown) => (err instanceof Error ? err.message : String(err))

export function createEngine(deps: EngineDeps): Engine {
  const db: Db = deps.db
  const logger: Logger = deps.logger ?? pino({ level: 'silent' })
  const registry = createComponentRegistry(deps.components ?? [])
  const workerId = deps.workerId ?? `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`
  const leaseMs = deps.leaseMs ?? 30_000
  const pollMs = deps.pollMs ?? 200
  const revokeGraceMs = deps.revokeGraceMs ?? 10_000
  const concurrency = Math.max(1, deps.concurrency ?? 32)
  const fetchImpl = deps.fetch ?? globalThis.fetch.bind(globalThis)
  const callbackRetryMs = deps.callbackRetryMs ?? 1000
  const callbackTimeoutMs = deps.callbackTimeoutMs ?? 10_000
  const now = deps.now ?? Date.now
  const graphs = new GraphCache()

  let mode: WorkerMode = 'idle'
  const inFlight = new Map<number, Run>()
  const unlisteners: Array<() => Promise<void>> = []
  let heartbeat: NodeJS.Timeout | undefined
  let loopDone: Promise<void> = Promise.resolve()
  let stopping: Promise<void> | undefined

  // ---- waking ---------------------------------------------------------------------------------

  let wakePending = false
  let wakeIdle: (() => void) | null = null
  const wake = () => {
    if (wakeIdle) wakeIdle()
    else wakePending = true
  }
  const idle = () =>
    new Promise<void>((resolve) => {
      if (wakePending) {
        wakePending = false
        resolve()
        return
      }
      const timer = setTimeout(done, pollMs)
      function done() {
        clearTimeout(timer)
        wakeIdle = null
        resolve()
      }
      wakeIdle = done
    })

  /** A timer due before the next poll would find it: wake for it on time (this process only). */
  const wakeAt = (until: number) => {
    const delay = until - now()
    if (delay > 60_000) return
    setTimeout(() => {
      if (mode === 'running') wake()
    }, Math.max(0, delay) + 1).unref()
  }

  let notifyQueued = false
  /** Tells other processes there is due work (coalesced: one NOTIFY per tick). */
  const notifyWork = (taskId: number) => {
    wake()
    if (notifyQueued) return
    notifyQueued = true
    setImmediate(() => {
      notifyQueued = false
      // Signed with our id: this process woke itself already and ignores its own notification.
      db.notify(WORK_CHANNEL, `${workerId} ${taskId}`).catch((err) => logger.warn({ err }, 'notify failed'))
    })
  }

  /**
   * Runs this process's transactions on one task one at a time. They would queue on the task
   * row's lock anyway, each holding a pooled connection while it waits: a wide fork would then
   * take every connection and starve the other tasks.
   */
  const taskQueues = new Map<number, Promise<void>>()
  const serialByTask = <T>(taskId: number, fn: () => Promise<T>): Promise<T> => {
    const result = (taskQueues.get(taskId) ?? Promise.resolve()).then(fn)
    const tail = result.then(
      () => undefined,
      () => undefined,
    )
    taskQueues.set(taskId, tail)
    void tail.then(() => {
      if (taskQueues.get(taskId) === tail) taskQueues.delete(taskId)
    })
    return result
  }

  const logBugs = (taskId: number, plan: Plan) => {
    for (const bug of plan.bugs) logger.error({ taskId, bug }, 'engine bug: refused a state move')
  }

  /** What a decision about `nodeId` needs: the graph and the rows it can read (rowsReadFrom). */
  const planContext = async (
    tx: Executor,
    taskId: number,
    task: LockedTask,
    at: number,
    nodeId: string,
  ): Promise<PlanContext> => {
    const graph = await graphs.get(tx, taskId)
    return {
      graph,
      nodes: await loadNodes(tx, taskId, { ids: rowsReadFrom(graph, nodeId) }),
      constants: task.constants,
      taskState: task.state,
      now: at,
      worker: workerId,
    }
  }

  // ---- the API's hooks (inside its transaction) -------------------------------------------------

  const onStarted = async (tx: Executor, taskId: number, at: number) => {
    const task = await lockTask(tx, taskId, { running: true })
    if (!task) throw new Error(`task ${taskId} is not RUNNING: cannot start it`)
    const resolved = resolveConstants(task.constants)
    if (!resolved.ok) throw new Error(`task ${taskId}: constants cannot be resolved: ${resolved.message}`)
    const graph = await graphs.get(tx, taskId)
    const plan = planTaskStart(await planContext(tx, taskId, task, at, graph.graph.startId))
    logBugs(taskId, plan)
    await applyPlan(tx, taskId, task, plan, at)
  }

  const onRevoked = async (tx: Executor, taskId: number, at: number) => {
    const task = await lockTask(tx, taskId)
    if (!task) throw new Error(`task ${taskId} does not exist`)
    await dropTaskJobs(tx, taskId)
    const ctx: PlanContext = {
      graph: await graphs.get(tx, taskId),
      nodes: await loadNodes(tx, taskId, { states: ['READY', 'RUNNING', 'SUSPENDED'] }),
      constants: task.constants,
      taskState: task.state,
      now: at,
      worker: workerId,
    }
    const plan = planRevoke(ctx)
    logBugs(taskId, plan)
    await closeOpenHistories(tx, taskId, 'REVOKED', at)
    await applyPlan(tx, taskId, task, plan, at)
    await enqueueCallback(tx, taskId, task, at)
  }

  const afterCommit = (taskId: number, action: TaskAction) => {
    switch (action) {
      case 'start':
      case 'resume':
        notifyWork(taskId)
        return
      case 'pause':
        return
      case 'revoke':
        abortTask(taskId, `task ${taskId} was revoked`)
        db.notify(REVOKE_CHANNEL, String(taskId)).catch((err) => logger.warn({ err }, 'notify failed'))
        notifyWork(taskId)
        return
    }
  }

  // ---- cancellation --------------------------------------------------------------------------

  const abortRun = (run: Run, reason: string) => {
    if (run.settled || run.controller.signal.aborted) return
    logger.info(
      { taskId: run.job.taskId, nodeId: run.job.nodeId, jobId: run.job.id, reason },
      'aborting a running component',
    )
    run.controller.abort(new Error(reason))
    run.grace = setTimeout(() => {
      if (run.settled) return
      run.abandoned = true
      if (inFlight.get(run.job.id) === run) inFlight.delete(run.job.id)
      logger.warn(
        { taskId: run.job.taskId, nodeId: run.job.nodeId, graceMs: revokeGraceMs },
        'component ignored abort: abandoned, its result will be ignored',
      )
      wake()
    }, revokeGraceMs)
    run.grace.unref()
  }

  const abortTask = (taskId: number, reason: string) => {
    for (const run of inFlight.values()) {
      if (run.job.taskId === taskId && run.job.kind !== 'callback') abortRun(run, reason)
    }
  }

  // ---- executing jobs ------------------------------------------------------------------------

  /** A node job: the node start, under the task row's lock, requires the task to be RUNNING. */
  const startNode = async (tx: Executor, job: ClaimedJob): Promise<StartOutcome> => {
    const at = now()
    const task = await lockTask(tx, job.taskId, { running: true })
    if (!task) {
      // Paused (or revoked) since the claim: the job waits, unleased, for resume.
      await releaseLeases(tx, workerId, [job.id])
      return { kind: 'held' }
    }
    if (!(await stillHeld(tx, job, workerId))) {
      await recordFenced(tx, job, workerId, await fenceReason(tx, job, workerId), at)
      return { kind: 'fenced' }
    }
    const ctx = await planContext(tx, job.taskId, task, at, job.nodeId)
    const node = ctx.graph.graph.nodes.get(job.nodeId)
    if (node?.kind !== 'activity') {
      const plan = planDueNode(ctx, job.nodeId)
      logBugs(job.taskId, plan)
      await deleteHeldJob(tx, job, workerId)
      return { kind: 'done', applied: await applyPlan(tx, job.taskId, task, plan, at) }
    }
    const plan = planActivityStart(ctx, job.nodeId, registry.get)
    logBugs(job.taskId, plan)
    if (!plan.run) await deleteHeldJob(tx, job, workerId)
    const applied = await applyPlan(tx, job.taskId, task, plan, at)
    if (!plan.run) return { kind: 'done', applied }
    const module = registry.get(plan.run.code)
    if (!module) throw new Error(`component ${plan.run.code} vanished from the registry`)
    return { kind: 'run', module, inputs: plan.run.inputs, timeoutMs: plan.run.timeoutMs }
  }

  const componentContext = (run: Run, callbackData: unknown): ComponentContext => ({
    signal: run.controller.signal,
    taskId: run.job.taskId,
    nodeId: run.job.nodeId,
    now,
    logger: logger.child({ taskId: run.job.taskId, nodeId: run.job.nodeId }),
    fetch: fetchImpl,
    ...(callbackData === undefined ? {} : { callbackData }),
  })

  /** Runs one step of a component; whatever it throws or returns malformed becomes a failure. */
  const runStep = async (
    run: Run,
    module: ComponentModule,
    step: 'execute' | 'schedule',
    inputs: unknown,
    callbackData?: unknown,
  ): Promise<ComponentResult> => {
    const fn = step === 'execute' ? module.execute : module.schedule
    if (!fn) return { status: 'finished', outputs: {} }
    let result: ComponentResult
    try {
      result = (await fn.call(module, inputs, componentContext(run, callbackData))) as ComponentResult
    } catch (err) {
      const why = run.controller.signal.aborted
        ? errorMessage(run.controller.signal.reason)
        : errorMessage(err)
      return { status: 'failed', error: `component ${module.code} ${step} threw: ${why}` }
    }
    switch (result?.status) {
      case 'finished':
      case 'failed':
      case 'callback':
        return result
      case 'wait':
        if (Number.isFinite(result.until)) return result
    }
    return { status: 'failed', error: `component ${module.code} ${step} returned no valid result` }
  }

  /** Applies a component's result, fenced by the job's lease. */
  const complete = async (run: Run, module: ComponentModule | undefined, result: ComponentResult) => {
    const { job } = run
    if (run.released || mode === 'stopped') {
      logger.info(
        { taskId: job.taskId, nodeId: job.nodeId },
        'result dropped: the worker stopped and released the job',
      )
      return
    }
    let outcome: ActivityOutcome | null = null
    if (result.status === 'finished') {
      const parsed = module
        ? module.outputs.safeParse(result.outputs)
        : { success: true as const, data: result.outputs }
      if (!parsed.success)
        outcome = { status: 'failed', error: describeIssues('output', parsed.error.issues) }
      else if (typeof parsed.data !== 'object' || parsed.data === null || Array.isArray(parsed.data)) {
        outcome = { status: 'failed', error: 'outputs must be an object' }
      } else outcome = { status: 'finished', outputs: parsed.data as Record<string, unknown> }
    } else if (result.status === 'failed') outcome = { status: 'failed', error: result.error }

    const chained: Array<{ job: ClaimedJob; started: Started }> = []
    const applied = await serialByTask(job.taskId, () =>
      db.tx(async (tx): Promise<Applied | null> => {
        chained.length = 0 // a retried transaction starts again
        const at = now()
        const fence = async () => {
          const reason = await fenceReason(tx, job, workerId)
          await recordFenced(tx, job, workerId, reason, at)
          logger.warn({ taskId: job.taskId, nodeId: job.nodeId, jobId: job.id, reason }, 'result fenced')
          return null
        }
        if (result.status === 'wait') {
          return (await deferHeldJob(tx, job, workerId, result.until, 'timer')) ? null : fence()
        }
        if (result.status === 'callback') {
          return (await deleteHeldJob(tx, job, workerId)) ? null : fence()
        }
        const task = await lockTask(tx, job.taskId)
        if (!task || !(await deleteHeldJob(tx, job, workerId))) return fence()
        const plan = planActivityResult(
          await planContext(tx, job.taskId, task, at, job.nodeId),
          job.nodeId,
          outcome!,
        )
        logBugs(job.taskId, plan)
        const done = await applyPlan(tx, job.taskId, task, plan, at)
        // Chain: start the activities this result leads to in this same transaction and run them
        // here at once, instead of a claim and a start transaction each (while the task runs
        // and this worker has room; whatever is not taken stays a due job for any worker).
        const room = Math.min(CHAIN_LIMIT, concurrency - inFlight.size + 1)
        if (mode === 'running' && task.state === 'RUNNING' && plan.jobs.length > 0 && room > 0) {
          const claimed = await claimTaskJobs(tx, workerId, job.taskId, plan.jobs.slice(0, room), at, leaseMs)
          let more = 0
          for (const next of claimed) {
            const outcome = await startNode(tx, next)
            if (outcome.kind === 'run') chained.push({ job: next, started: outcome })
            if (outcome.kind === 'done') more += outcome.applied.jobs
          }
          return { ...done, jobs: done.jobs - claimed.length + more }
        }
        return done
      }),
    )
    for (const c of chained) launch(c.job, c.started)
    if (applied && applied.jobs > 0) notifyWork(job.taskId)
    if (result.status === 'wait') wakeAt(result.until)
  }

  const runNodeJob = async (run: Run) => {
    const started = await serialByTask(run.job.taskId, () => db.tx((tx) => startNode(tx, run.job)))
    if (started.kind === 'done' && started.applied.jobs > 0) notifyWork(run.job.taskId)
    if (started.kind !== 'run') return
    await runStarted(run, started)
  }

  /** Executes a node whose start has committed (here, or chained in its predecessor's completion). */
  const runStarted = async (run: Run, started: Started) => {
    const execute = runStep(run, started.module, 'execute', started.inputs)
    let timer: NodeJS.Timeout | undefined
    // The activity's `timeout`: past it the component is aborted and the node fails, whatever
    // the component does with its signal (a late result is ignored).
    const timedOut = started.timeoutMs
      ? new Promise<ComponentResult>((resolve) => {
          timer = setTimeout(() => {
            const error = `timed out after ${started.timeoutMs! / 1000} s (the activity's timeout)`
            run.controller.abort(new Error(error))
            resolve({ status: 'failed', error })
          }, started.timeoutMs)
        })
      : null
    const result = timedOut ? await Promise.race([execute, timedOut]) : await execute
    clearTimeout(timer)
    await complete(run, started.module, result)
  }

  /** A due timer (or a delivered callback): the node is RUNNING; run its `schedule` step. */
  const runTimerJob = async (run: Run) => {
    const { job } = run
    const node = await readNodeInputs(db, job.taskId, job.nodeId)
    if (node?.state !== 'RUNNING') {
      logger.warn(
        { taskId: job.taskId, nodeId: job.nodeId, state: node?.state },
        'timer for a node that is not running: dropped',
      )
      await db.tx((tx) => deleteHeldJob(tx, job, workerId))
      return
    }
    const graph = await graphs.get(db, job.taskId)
    const code = graph.graph.nodes.get(job.nodeId)?.activity?.component.code ?? ''
    const module = registry.get(code)
    if (!module) {
      await complete(run, undefined, { status: 'failed', error: `component ${code} is not registered` })
      return
    }
    const payload = job.payload === null ? {} : (JSON.parse(job.payload) as { callback_data?: unknown })
    let result: ComponentResult = { status: 'finished', outputs: {} }
    if (module.schedule) {
      const inputs = module.inputs.safeParse(node.inputs)
      result = inputs.success
        ? await runStep(run, module, 'schedule', inputs.data, payload.callback_data)
        : { status: 'failed', error: describeIssues('input', inputs.error.issues) }
    }
    await complete(run, module, result)
  }

  const runCallbackJob = async (run: Run) => {
    const { job } = run
    const target = await callbackTarget(db, job.taskId)
    if (!target) {
      await db.tx((tx) => deleteHeldJob(tx, job, workerId))
      return
    }
    const signal = AbortSignal.any([run.controller.signal, AbortSignal.timeout(callbackTimeoutMs)])
    const error = await postCallback(fetchImpl, target, signal)
    if (run.released || mode === 'stopped') return
    const at = now()
    await db.tx(async (tx) => {
      if (error === null) {
        // Sent: record it whatever became of the lease, so that it is never sent again.
        await tx.execute(sql`UPDATE tasks SET callback_status = 'success', callback_attempts = ${job.attempts},
          callback_error = NULL WHERE id = ${job.taskId}`)
        await tx.execute(sql`DELETE FROM jobs WHERE id = ${job.id}`)
        return
      }
      const last = job.attempts >= CALLBACK_MAX_ATTEMPTS
      const held = last
        ? await deleteHeldJob(tx, job, workerId)
        : await deferHeldJob(
            tx,
            job,
            workerId,
            at + callbackBackoff(job.attempts, callbackRetryMs),
            'callback',
          )
      if (!held) return
      await tx.execute(sql`UPDATE tasks SET callback_status = ${last ? 'failed' : 'pending'}, callback_attempts = ${job.attempts},
        callback_error = ${error} WHERE id = ${job.taskId}`)
    })
    if (error !== null)
      logger.warn({ taskId: job.taskId, attempt: job.attempts, error }, 'callback_url failed')
  }

  const launch = (job: ClaimedJob, started?: Started) => {
    const previous = inFlight.get(job.id)
    if (previous) {
      // Our own lease had expired and we claimed the job again: the older run is stale.
      abortRun(previous, 'claimed again under a new attempt')
      previous.abandoned = true
    }
    const run: Run = {
      job,
      controller: new AbortController(),
      settled: false,
      abandoned: false,
      released: false,
    }
    inFlight.set(job.id, run)
    const work = started
      ? (r: Run) => runStarted(r, started)
      : job.kind === 'callback'
        ? runCallbackJob
        : job.kind === 'timer'
          ? runTimerJob
          : runNodeJob
    run.done = work(run)
      .catch((err) => {
        if (mode === 'stopped' || run.released) return
        logger.error(
          { err, taskId: job.taskId, nodeId: job.nodeId, jobId: job.id },
          'job failed; its lease will expire',
        )
      })
      .finally(() => {
        run.settled = true
        if (run.grace) clearTimeout(run.grace)
        const full = inFlight.size >= concurrency
        if (inFlight.get(job.id) === run) inFlight.delete(job.id)
        // A full worker stopped claiming: a freed slot lets it claim again.
        if (full && mode === 'running') wake()
      })
  }

  // ---- the worker loop -----------------------------------------------------------------------

  const loop = async () => {
    while (mode === 'running') {
      const free = concurrency - inFlight.size
      let claimed = 0
      if (free > 0) {
        let jobs: ClaimedJob[] = []
        try {
          jobs = await claimJobs(db, workerId, now(), leaseMs, free)
        } catch (err) {
          logger.error({ err }, 'claiming jobs failed')
        }
        if (mode !== 'running') {
          await releaseLeases(
            db,
            workerId,
            jobs.map((j) => j.id),
          ).catch(() => undefined)
          break
        }
        for (const job of jobs) launch(job)
        claimed = jobs.length
      }
      // Claims are capped per task (claimJobs): while they still find work, claim again.
      if (claimed > 0 && inFlight.size < concurrency) continue
      await idle()
    }
  }

  const renew = async () => {
    const live = [...inFlight.values()].filter((r) => !r.abandoned && !r.released && !r.settled)
    if (live.length === 0) return
    try {
      const alive = await renewLeases(
        db,
        workerId,
        live.map((r) => r.job.id),
        now() + leaseMs,
      )
      for (const run of live) {
        if (!alive.has(run.job.id) && inFlight.get(run.job.id) === run)
          abortRun(run, 'job revoked or lease lost')
      }
    } catch (err) {
      logger.warn({ err }, 'renewing leases failed')
    }
  }

  const startWorker = async () => {
    if (mode !== 'idle') throw new Error(`the worker cannot start: it is ${mode}`)
    mode = 'starting'
    try {
      unlisteners.push(
        await db.listen(WORK_CHANNEL, (payload) => {
          if (!payload.startsWith(`${workerId} `)) wake()
        }),
      )
      unlisteners.push(
        await db.listen(REVOKE_CHANNEL, (payload) => {
          const taskId = Number(payload)
          if (Number.isInteger(taskId)) abortTask(taskId, `task ${taskId} was revoked`)
        }),
      )
    } catch (err) {
      mode = 'stopped'
      throw err
    }
    heartbeat = setInterval(() => void renew(), Math.max(50, Math.floor(leaseMs / 3)))
    heartbeat.unref()
    mode = 'running'
    logger.info({ workerId, concurrency }, 'worker running')
    loopDone = loop().catch((err) => logger.error({ err }, 'worker loop crashed'))
  }

  const stop = (opts: { drainMs?: number } = {}): Promise<void> => {
    if (mode === 'idle') {
      mode = 'stopped'
      return Promise.resolve()
    }
    stopping ??= (async () => {
      while (mode === 'starting') await new Promise((r) => setTimeout(r, 5))
      mode = 'draining'
      wake()
      await loopDone
      const drainMs = opts.drainMs ?? 10_000
      const pending = [...inFlight.values()].map((r) => r.done)
      let timer: NodeJS.Timeout | undefined
      await Promise.race([
        Promise.allSettled(pending),
        new Promise((r) => {
          timer = setTimeout(r, drainMs)
        }),
      ])
      clearTimeout(timer)
      clearInterval(heartbeat)
      const left = [...inFlight.values()].filter((r) => !r.settled)
      if (left.length > 0) {
        for (const run of left) run.released = true
        await releaseLeases(
          db,
          workerId,
          left.map((r) => r.job.id),
        ).catch((err) => logger.warn({ err }, 'releasing leases failed; they will expire'))
        for (const run of left) {
          run.controller.abort(new Error('the worker stopped'))
          if (run.grace) clearTimeout(run.grace)
        }
        logger.warn({ jobs: left.map((r) => r.job.id) }, 'stopped with work in flight: leases released')
      }
      inFlight.clear()
      for (const unlisten of unlisteners.splice(0)) await unlisten().catch(() => undefined)
      mode = 'stopped'
      logger.info({ workerId }, 'worker stopped')
    })()
    return stopping
  }

  return {
    components: registry,
    get mode() {
      return mode
    },
    workerId,
    onStarted,
    writesInTransaction: (action) => action === 'start' || action === 'revoke',
    onPaused: async () => {
      // Nothing to write: node starts check the task's state under its row lock, and the claim
      // filter leaves the task's node jobs alone until it is RUNNING again.
    },
    onResumed: async () => {
      // The held jobs are rows already; afterCommit wakes the workers.
    },
    onRevoked,
    afterCommit,
    runningNodes: countRunningNodes,
    startWorker,
    stop,
  }
}
