/**
 * The worker: claims due jobs, runs them in its slots, keeps their leases alive, wakes up on
 * notifications and timers, and stops in order (idle → starting → running → draining → stopped).
 * What a job does to the database is a transition (transitions.ts), run in one transaction here;
 * the worker itself holds no SQL and decides nothing about states.
 */

import { context, ROOT_CONTEXT } from '@opentelemetry/api'
import { CONSTANT_LIMITS, MAX_NESTING, nestingWithin, sizeWithin } from '@stdops/core'
import type { Db } from '@stdops/db'
import type { Logger } from 'pino'
import { CALLBACK_MAX_ATTEMPTS, callbackBackoff, postCallback } from './callback'
import type { OutboundClient } from './outbound'
import { describeIssues } from './plan'
import { type SecretBox, scrubbingLogger } from './secrets'
import {
  appendAttemptLog,
  type ClaimedJob,
  claimJobs,
  readCallbackTarget,
  readNodeInputs,
  recordJobFailure,
  releaseHeldJobsOfRunningTasks,
  releaseLeases,
  renewLeases,
} from './store'
import { inSpan, linksTo, tracer } from './tracing'
import {
  dropStaleJob,
  giveUpJob,
  outcomeOf,
  recordCallbackTry,
  recordResult,
  type Started,
  startNode,
  type TransitionEnv,
} from './transitions'
import type { ComponentContext, ComponentModule, ComponentResult, WorkerMode } from './types'

/** Wakes idle workers (payload: `<worker id> <task id>`). */
export const WORK_CHANNEL = 'stdops_work'
/** Aborts a revoked task's running components in every process (payload: task id). */
export const REVOKE_CHANNEL = 'stdops_revoke'

/**
 * What one attempt's log keeps of a component's ctx.log lines: at most `lines` lines and `chars`
 * characters (a longer line is cut at `lineChars`). Past either bound further lines are counted,
 * not stored, and one last line says how many were dropped.
 */
export const LOG_LIMITS = { lines: 1000, chars: 256 * 1024, lineChars: 4096 } as const

/** Where a run's log lines go, and what is not written yet. */
interface AttemptLog {
  loop: number
  attempt: number
  pending: string
  lines: number
  chars: number
  dropped: number
}

/** At most this many successors are started in their predecessor's completion (the rest are claimed as usual). */
const CHAIN_LIMIT = 8

/** PostgreSQL: at most this many of one task's transactions run at once in a worker process (byTask). */
const TASK_PARALLELISM = 4

/** How often a worker releases held jobs of RUNNING tasks (a safety net: resume releases its own). */
const HELD_SWEEP_MS = 30_000

/** A job whose transactions failed this many times is given up: its node ends with the last error. */
export const MAX_JOB_FAILURES = 8

/** The wait before a failed job's next try: base × 2^(failures − 1), at most a minute. */
export const jobBackoff = (failures: number, baseMs: number) =>
  Math.min(60_000, baseMs * 2 ** Math.max(0, failures - 1))

export interface WorkerOptions {
  db: Db
  env: TransitionEnv
  logger: Logger
  leaseMs: number
  pollMs: number
  revokeGraceMs: number
  concurrency: number
  /** At most this many of this worker's slots hold one project's jobs at once (fair sharing). */
  projectConcurrency: number
  http: OutboundClient
  /** Opens secret constants for a component step; without it sealed values reach components as they are. */
  secrets?: SecretBox | undefined
  callbackRetryMs: number
  callbackTimeoutMs: number
  /** Base of the backoff between a failed job transaction's tries (jobBackoff). */
  jobRetryMs: number
  now: () => number
  /** Fires the periodic and clocked tasks that are due (schedules.ts); called on every pass of the loop. */
  fireDueSchedules?: (() => Promise<unknown>) | undefined
}

export interface Worker {
  readonly mode: WorkerMode
  /** When the claim loop last went round (epoch ms); null before it started. */
  readonly loopAt: number | null
  start(): Promise<void>
  stop(opts?: { drainMs?: number }): Promise<void>
  /** There is due work for `taskId`: wake this worker, and (once per tick) the other processes. */
  notifyWork(taskId: number): void
  /** Aborts this process's running components of `taskId` (their results will be fenced). */
  abortTask(taskId: number, reason: string): void
  /** Aborts this process's running component of one node (forced_fail; its result will be fenced). */
  abortNode(taskId: number, nodeId: string, reason: string): void
}

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
  /** The attempt's log, once the run knows which attempt it is. */
  log?: AttemptLog
}

/**
 * Why a step's outputs cannot be kept, or null: they are stored, shown and may feed constants, so
 * they are held to what a request could carry (a parsed HTTP answer can nest thousands deep, past
 * what serialising them survives).
 */
function outputsProblem(outputs: unknown): string | null {
  if (!nestingWithin(outputs, MAX_NESTING))
    return `outputs nest deeper than ${MAX_NESTING} levels (the limit)`
  if (sizeWithin(outputs, CONSTANT_LIMITS.valueChars) > CONSTANT_LIMITS.valueChars)
    return `outputs are larger than ${CONSTANT_LIMITS.valueChars} characters (the limit)`
  return null
}

const errorMessage = (err: unknown) => (err instanceof Error ? err.message : String(err))
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

export function createWorker(o: WorkerOptions): Worker {
  const { db, env, logger, leaseMs, pollMs, revokeGraceMs, concurrency, now } = o
  const projectCap = Math.max(1, Math.min(concurrency, o.projectConcurrency))
  const workerId = env.workerId

  let mode: WorkerMode = 'idle'
  let loopAt: number | null = null
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
  const notifyWork = (taskId: number) => {
    wake()
    if (notifyQueued) return
    notifyQueued = true
    setImmediate(() => {
      notifyQueued = false
      // Signed with our id: this process woke itself already and ignores its own notification.
      db.notify(WORK_CHANNEL, `${workerId} ${taskId}`).catch((err) => {
        logger.warn({ err }, 'notify failed')
        env.telemetry.error('notify')
      })
    })
  }

  /**
   * Runs at most `perTask` of this process's transactions on one task at once (first come, first
   * served). On SQLite they would queue on the database's one writer anyway: one at a time. On
   * PostgreSQL a node step waits for another step of its task only where both write the same node
   * row (the branches of a fork at their converge gateway) and for the task row's lock held by one
   * write and its COMMIT; every waiting step holds a pooled connection, so a wide fork is kept to
   * a few at once and never takes every connection from the other tasks.
   */
  const perTask = db.provider === 'postgresql' ? TASK_PARALLELISM : 1
  const taskSlots = new Map<number, { running: number; waiting: Array<() => void> }>()
  const byTask = async <T>(taskId: number, fn: () => Promise<T>): Promise<T> => {
    let slot = taskSlots.get(taskId)
    if (!slot) {
      slot = { running: 0, waiting: [] }
      taskSlots.set(taskId, slot)
    }
    const mine = slot
    // A slot freed is handed to the first in line, its count unchanged.
    if (mine.running >= perTask) await new Promise<void>((resolve) => mine.waiting.push(resolve))
    else mine.running += 1
    try {
      return await fn()
    } finally {
      const next = mine.waiting.shift()
      if (next) next()
      else {
        mine.running -= 1
        if (mine.running === 0 && taskSlots.get(taskId) === mine) taskSlots.delete(taskId)
      }
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

  /** Slots each project's jobs hold in this worker now (what claims and chaining share out). */
  const projectLoad = () => {
    const load = new Map<number, number>()
    for (const run of inFlight.values()) load.set(run.job.projectId, (load.get(run.job.projectId) ?? 0) + 1)
    return load
  }
  const loadOf = (projectId: number) => {
    let n = 0
    for (const run of inFlight.values()) if (run.job.projectId === projectId) n += 1
    return n
  }

  const abortNode = (taskId: number, nodeId: string, reason: string) => {
    for (const run of inFlight.values()) {
      if (run.job.taskId === taskId && run.job.nodeId === nodeId && run.job.kind !== 'callback') {
        abortRun(run, reason)
      }
    }
  }

  // ---- attempt logs --------------------------------------------------------------------------

  const logLine = (run: Run, line: string) => {
    const log = run.log
    if (!log) return
    const text = `[${new Date(now()).toISOString()}] ${line.length > LOG_LIMITS.lineChars ? `${line.slice(0, LOG_LIMITS.lineChars)}…` : line}\n`
    if (log.lines >= LOG_LIMITS.lines || log.chars + text.length > LOG_LIMITS.chars) {
      log.dropped += 1
      return
    }
    log.lines += 1
    log.chars += text.length
    log.pending += text
  }

  /** Writes what the run logged since the last flush (and, at the end, how many lines were dropped). */
  const flushLog = async (run: Run, final: boolean) => {
    const log = run.log
    if (!log) return
    let text = log.pending
    log.pending = ''
    if (final && log.dropped > 0) {
      text += `[${new Date(now()).toISOString()}] ${log.dropped} more lines were dropped: an attempt's log keeps at most ${LOG_LIMITS.lines} lines and ${LOG_LIMITS.chars} characters\n`
      log.dropped = 0
    }
    if (text === '') return
    try {
      await appendAttemptLog(db, run.job.taskId, run.job.nodeId, log.loop, log.attempt, text)
    } catch (err) {
      logger.warn({ err, taskId: run.job.taskId, nodeId: run.job.nodeId }, 'writing a node log failed')
    }
  }

  // ---- executing jobs ------------------------------------------------------------------------

  const componentContext = (run: Run, callbackData: unknown): ComponentContext => ({
    signal: run.controller.signal,
    taskId: run.job.taskId,
    nodeId: run.job.nodeId,
    now,
    logger: logger.child({ taskId: run.job.taskId, nodeId: run.job.nodeId }),
    log: (line: string) => logLine(run, String(line)),
    http: o.http,
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
    // Secret constants are opened here, for this step only; what it returns is scrubbed of them.
    let opened: { value: unknown; secrets: string[] } = { value: inputs, secrets: [] }
    if (o.secrets) {
      try {
        opened = o.secrets.open(inputs)
      } catch (err) {
        return { status: 'failed', error: errorMessage(err) }
      }
    }
    const scrub = (r: ComponentResult): ComponentResult => {
      if (!o.secrets || opened.secrets.length === 0) return r
      if (r.status === 'finished') return { ...r, outputs: o.secrets.scrub(r.outputs, opened.secrets) }
      if (r.status === 'failed') return { ...r, error: o.secrets.scrub(r.error, opened.secrets) }
      return r
    }
    let result: ComponentResult
    try {
      const ctx = componentContext(run, callbackData)
      // the attempt's log is stored and shown: it never holds an opened secret
      if (o.secrets && opened.secrets.length > 0) {
        const box = o.secrets
        const secrets = opened.secrets
        const log = ctx.log
        ctx.log = (line: string) => log(box.scrub(String(line), secrets))
        // and what it writes to the server's log does not either
        ctx.logger = scrubbingLogger(ctx.logger, (v) => box.scrub(v, secrets))
      }
      result = (await fn.call(module, opened.value, ctx)) as ComponentResult
    } catch (err) {
      const why = run.controller.signal.aborted
        ? errorMessage(run.controller.signal.reason)
        : errorMessage(err)
      return scrub({ status: 'failed', error: `component ${module.code} ${step} threw: ${why}` })
    }
    switch (result?.status) {
      case 'finished': {
        const problem = outputsProblem(result.outputs)
        return problem
          ? { status: 'failed', error: `component ${module.code} ${step}: ${problem}` }
          : scrub(result)
      }
      case 'failed':
      case 'callback':
        return scrub(result)
      case 'wait':
        if (Number.isFinite(result.until)) return result
    }
    return { status: 'failed', error: `component ${module.code} ${step} returned no valid result` }
  }

  /** Applies a component's result (recordResult), then runs what it chained and wakes workers. */
  const complete = async (
    run: Run,
    module: ComponentModule | undefined,
    result: ComponentResult,
    timedOut?: 'forced_fail' | 'forced_fail_and_skip',
  ) => {
    const { job } = run
    await flushLog(run, true)
    if (run.released || mode === 'stopped') {
      logger.info(
        { taskId: job.taskId, nodeId: job.nodeId },
        'result dropped: the worker stopped and released the job',
      )
      return
    }
    const outcome = outcomeOf(module, result)
    if (timedOut && outcome?.status === 'failed') outcome.timedOut = timedOut
    const chaining = {
      // The completing job's own slot is counted in both: its successors may take it over.
      room: () =>
        mode === 'running'
          ? Math.min(CHAIN_LIMIT, concurrency - inFlight.size + 1, projectCap - loadOf(job.projectId) + 1)
          : 0,
      leaseMs,
    }
    // The result is kept here until it is recorded: a transaction that fails (a busy or lost
    // database) is retried with backoff while this worker holds the job, never by running the
    // component again. A result that cannot be recorded after MAX_JOB_FAILURES tries (a poison
    // result) fails its node with the error.
    let recorded: Awaited<ReturnType<typeof recordResult>>
    for (let failures = job.failures; ; ) {
      try {
        recorded = await byTask(job.taskId, () =>
          db.tx((tx) => recordResult(env, tx, job, result, outcome, now(), chaining)),
        )
        break
      } catch (err) {
        if (run.released || run.abandoned || (mode as WorkerMode) === 'stopped') throw err
        failures += 1
        const error = `recording the result failed: ${errorMessage(err)}`
        logger.warn(
          { err, taskId: job.taskId, nodeId: job.nodeId, jobId: job.id, failures },
          'recording a result failed; the result is kept and recorded again',
        )
        env.telemetry.error('job')
        await recordJobFailure(db, job, workerId, error, null).catch(() => undefined)
        if (failures >= MAX_JOB_FAILURES) {
          await giveUp(run, `${error} (${failures} tries)`)
          return
        }
        await sleep(jobBackoff(failures, o.jobRetryMs))
      }
    }
    for (const c of recorded.chained) launch(c.job, c.started)
    if (recorded.applied && recorded.applied.jobs > 0) notifyWork(job.taskId)
    if (result.status === 'wait') wakeAt(result.until)
  }

  /** A poison job: its node ends with `error` (giveUpJob), in a transaction of its own. */
  const giveUp = async (run: Run, error: string) => {
    const { job } = run
    logger.error(
      { taskId: job.taskId, nodeId: job.nodeId, jobId: job.id, error },
      'job failed too often: its node ends with the error',
    )
    const applied = await byTask(job.taskId, () => db.tx((tx) => giveUpJob(env, tx, job, error, now())))
    if (applied && applied.jobs > 0) notifyWork(job.taskId)
  }

  /**
   * A job's work threw (its transaction failed, or a read before it): the failure is counted on
   * the job with its error, and the job falls due again after a backoff, for any worker; after
   * MAX_JOB_FAILURES its node ends with the error instead.
   */
  const jobFailed = async (run: Run, err: unknown) => {
    const { job } = run
    const failures = job.failures + 1
    const error = errorMessage(err)
    logger.error(
      { err, taskId: job.taskId, nodeId: job.nodeId, jobId: job.id, failures },
      'job failed; it will be retried',
    )
    env.telemetry.error('job')
    try {
      if (failures >= MAX_JOB_FAILURES) await giveUp(run, `${error} (${failures} tries)`)
      else await recordJobFailure(db, job, workerId, error, now() + jobBackoff(failures, o.jobRetryMs))
    } catch (again) {
      logger.warn({ err: again, jobId: job.id }, 'recording the failure failed too; the lease will expire')
    }
  }

  const runNodeJob = async (run: Run) => {
    const started = await byTask(run.job.taskId, () => db.tx((tx) => startNode(env, tx, run.job, now())))
    if (started.kind === 'done' && started.applied.jobs > 0) notifyWork(run.job.taskId)
    if (started.kind !== 'run') return
    await runStarted(run, started)
  }

  /** One span per node execution (a component step and its completion), linked to the task's request. */
  const nodeSpan = <T>(run: Run, code: string, traceparent: string | null, fn: () => Promise<T>) =>
    inSpan(
      `stdops.node ${code}`,
      {
        attributes: {
          'stdops.task.id': run.job.taskId,
          'stdops.node.id': run.job.nodeId,
          'stdops.component': code,
        },
        links: linksTo(traceparent),
      },
      fn,
    )

  /** Executes a node whose start has committed (here, or chained in its predecessor's completion). */
  const runStarted = (run: Run, started: Started) =>
    nodeSpan(run, started.module.code, started.traceparent, () => executeStarted(run, started))

  const executeStarted = async (run: Run, started: Started) => {
    run.log = { loop: started.loop, attempt: started.attempt, pending: '', lines: 0, chars: 0, dropped: 0 }
    const execute = runStep(run, started.module, 'execute', started.inputs)
    let timer: NodeJS.Timeout | undefined
    let expired = false
    // The activity's `timeout_config` (or older `timeout`): past it the component is aborted and
    // the node fails (and, with forced_fail_and_skip, is skipped), whatever the component does
    // with its signal (a late result is ignored).
    const timedOut = started.timeoutMs
      ? new Promise<ComponentResult>((resolve) => {
          timer = setTimeout(() => {
            expired = true
            const error = `timed out after ${started.timeoutMs! / 1000} s (the activity's timeout)`
            logLine(run, `engine: ${error}; aborting the component`)
            run.controller.abort(new Error(error))
            resolve({ status: 'failed', error })
          }, started.timeoutMs)
        })
      : null
    const result = timedOut ? await Promise.race([execute, timedOut]) : await execute
    clearTimeout(timer)
    await complete(
      run,
      started.module,
      result,
      expired ? (started.timeoutAction ?? 'forced_fail') : undefined,
    )
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
      await db.tx((tx) => dropStaleJob(env, tx, job))
      return
    }
    const graph = await env.graphs.get(db, job.taskId)
    const code = graph.graph.nodes.get(job.nodeId)?.activity?.component.code ?? ''
    const module = env.registry.get(code)
    if (!module) {
      await complete(run, undefined, { status: 'failed', error: `component ${code} is not registered` })
      return
    }
    run.log = { loop: node.loop, attempt: node.attempt, pending: '', lines: 0, chars: 0, dropped: 0 }
    const payload = job.payload === null ? {} : (JSON.parse(job.payload) as { callback_data?: unknown })
    await nodeSpan(run, module.code, node.traceparent, async () => {
      let result: ComponentResult = { status: 'finished', outputs: {} }
      if (module.schedule) {
        const inputs = module.inputs.safeParse(node.inputs)
        result = inputs.success
          ? await runStep(run, module, 'schedule', inputs.data, payload.callback_data)
          : { status: 'failed', error: describeIssues('input', inputs.error.issues) }
      }
      await complete(run, module, result)
    })
  }

  const runCallbackJob = async (run: Run) => {
    const { job } = run
    const target = await readCallbackTarget(db, job.taskId, job.payload === null ? null : Number(job.payload))
    if (!target) {
      await db.tx((tx) => dropStaleJob(env, tx, job))
      return
    }
    const signal = run.controller.signal
    const error = await postCallback(o.http, target, signal, o.callbackTimeoutMs)
    if (run.released || mode === 'stopped') return
    const retryAt =
      error === null || job.attempts >= CALLBACK_MAX_ATTEMPTS
        ? null
        : now() + callbackBackoff(job.attempts, o.callbackRetryMs)
    await db.tx((tx) => recordCallbackTry(env, tx, job, error, retryAt, now()))
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
      : job.failures >= MAX_JOB_FAILURES
        ? (r: Run) => giveUp(r, `${job.lastError ?? 'failed'} (${job.failures} tries)`)
        : job.kind === 'callback'
          ? runCallbackJob
          : job.kind === 'timer'
            ? runTimerJob
            : runNodeJob
    // Each job's span starts a trace of its own (linked to its task's request), not a child of
    // whatever was active when it was launched (a predecessor's completion, for chained starts).
    run.done = context
      .with(ROOT_CONTEXT, () => work(run))
      .catch((err) => {
        if (mode === 'stopped' || run.released || run.abandoned) return
        return jobFailed(run, err)
      })
      .finally(() => {
        run.settled = true
        if (run.grace) clearTimeout(run.grace)
        const full = inFlight.size >= concurrency || loadOf(job.projectId) >= projectCap
        if (inFlight.get(job.id) === run) inFlight.delete(job.id)
        // A full worker (or a project at its share) stopped claiming: a freed slot lets it claim again.
        if (full && mode === 'running') wake()
      })
  }

  // ---- the loop, the heartbeat, start and stop ------------------------------------------------

  let sweptAt = 0
  const loop = async () => {
    while (mode === 'running') {
      loopAt = now()
      if (loopAt - sweptAt >= HELD_SWEEP_MS) {
        sweptAt = loopAt
        await releaseHeldJobsOfRunningTasks(db).catch((err) => {
          logger.warn({ err }, 'releasing held jobs of running tasks failed')
          env.telemetry.error('claim')
        })
      }
      // Due schedules are due work like jobs: claimed here, not by a loop of their own.
      if (o.fireDueSchedules) await o.fireDueSchedules()
      const free = concurrency - inFlight.size
      let claimed = 0
      if (free > 0) {
        let jobs: ClaimedJob[] = []
        try {
          const at = now()
          const began = new Date()
          jobs = await claimJobs(db, workerId, at, leaseMs, free, { cap: projectCap, load: projectLoad() })
          if (jobs.length > 0) {
            env.telemetry.claimed(jobs.map((j) => Math.max(0, at - j.dueAt)))
            // A span for a claim that took work (an idle poll is not a step worth tracing).
            tracer()
              .startSpan('stdops.claim', { startTime: began, attributes: { 'stdops.jobs': jobs.length } })
              .end()
          }
        } catch (err) {
          logger.error({ err }, 'claiming jobs failed')
          env.telemetry.error('claim')
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
    // A long run's log is visible while it runs: written with each heartbeat.
    for (const run of live) if (run.log?.pending) await flushLog(run, false)
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
      env.telemetry.error('lease_renewal')
    }
  }

  const start = async () => {
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
          // `<task id>` (revoke) or `<task id> <node id>` (forced_fail of one node).
          const [task, nodeId] = payload.split(' ', 2)
          const taskId = Number(task)
          if (!Number.isInteger(taskId)) return
          if (nodeId) abortNode(taskId, nodeId, `node ${nodeId} was forced to fail`)
          else abortTask(taskId, `task ${taskId} was revoked`)
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
    loopDone = loop().catch((err) => {
      logger.error({ err }, 'worker loop crashed')
      env.telemetry.error('loop')
    })
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
    get mode() {
      return mode
    },
    get loopAt() {
      return loopAt
    },
    start,
    stop,
    notifyWork,
    abortTask,
    abortNode,
  }
}
