/**
 * Firing periodic and clocked tasks: due schedules are claimed by the worker like other due work.
 *
 * A firing is one transaction: take the schedule's row (PostgreSQL: `FOR UPDATE SKIP LOCKED`, so
 * two workers never hold the same schedule; SQLite: one writer), record the firing (periodic: a
 * row unique on (periodic task, due time); clocked: its state leaving `not_started`), create and
 * start the task through the API's hook, and move the schedule on. All of it commits or none of
 * it does: a process that dies in between leaves the schedule due, and the next claim fires it,
 * once.
 */
import { PipelineTreeSchema } from '@stdops/core'
import type { Db, Executor } from '@stdops/db'
import type { Logger } from 'pino'
import { latestDue, nextDue, wallClockStamp } from './cron'
import type { Effect } from './protocol'
import {
  advancePeriodic,
  anyScheduleDue,
  insertFiring,
  lockDueClocked,
  lockDuePeriodic,
  recordClockedFiring,
  recordFiring,
} from './store'

export interface ScheduledStart {
  kind: 'periodic' | 'clocked'
  /** The periodic or clocked task's id. */
  scheduleId: number
  projectId: number
  templateId: number
  /** Where templateId points: `project` or `common`. */
  templateSource: string
  /** clocked: the execution schemes to run (task_parameters.template_schemes_id); periodic: none (its snapshot has them applied). */
  schemes: Array<number | string>
  /** periodic: `<name>_<YYYYmmddHHMMSS>` of the due time (wall clock, schedule's zone); clocked: its task_name. */
  taskName: string
  /** Who the task is created and started as: the schedule's creator. */
  creator: string
  /** periodic: the tree every firing runs (the snapshot taken at creation); clocked: null, the template's. */
  pipelineTree: Record<string, unknown> | null
  /** Constant overrides (clocked: task_parameters.constants). */
  constants: Record<string, unknown>
  dueAt: number
}

/** A task created and started, or why none could be (recorded on the firing; the schedule moves on). */
export type ScheduledStartResult = { taskId: number } | { error: string }

/** Creates and starts the task inside `tx`, the firing's transaction. */
export type StartScheduledTask = (tx: Executor, s: ScheduledStart) => Promise<ScheduledStartResult>

/** Where the test-only fault hook is called: the task exists, the firing is not yet recorded. */
export const FAULT_AFTER_TASK_CREATED = 'schedule:task-created'

export interface SchedulerDeps {
  db: Db
  worker: string
  timeZone: string
  now: () => number
  logger: Logger
  start: StartScheduledTask
  /** The engine's afterCommit: a firing that started a task wakes the workers for it. */
  afterCommit: (effects: readonly Effect[]) => void
  fault?: ((point: string) => void) | undefined
}

/** At most this many firings per pass, so that one pass never holds the worker loop for long. */
const PER_PASS = 20
/**
 * A busy worker loops once per claim: it looks for due schedules at most this often (real time),
 * so that a stream of claims does not pay a schedule read each. An idle worker loops every poll.
 */
const CHECK_EVERY_MS = 100
/** After an unexpected error, schedules are left alone this long (the error is logged once per pass). */
const ERROR_PAUSE_MS = 5000

type Outcome = { taskId: number | null; error: string | null }
const outcomeOf = (r: ScheduledStartResult): Outcome =>
  'taskId' in r ? { taskId: r.taskId, error: null } : { taskId: null, error: r.error }

/**
 * One periodic firing inside `tx`, or null when no periodic task is due at `at`. After downtime
 * several due times may have passed: it fires once, for the latest of them, and the schedule
 * moves on to the first due time after `at`.
 */
export async function firePeriodic(deps: SchedulerDeps, tx: Executor, at: number): Promise<Outcome | null> {
  const p = await lockDuePeriodic(tx, at)
  if (!p) return null
  const latest = latestDue(p.cron, deps.timeZone, at)
  const due = latest !== null && latest >= p.nextRunAt ? latest : p.nextRunAt
  const firingId = await insertFiring(tx, { periodicTaskId: p.id, dueAt: due, worker: deps.worker, at })
  let outcome: Outcome = { taskId: null, error: null }
  if (firingId !== null) {
    outcome = outcomeOf(
      await deps.start(tx, {
        kind: 'periodic',
        scheduleId: p.id,
        projectId: p.projectId,
        templateId: p.templateId,
        templateSource: p.templateSource,
        schemes: [],
        taskName: `${p.name}_${wallClockStamp(due, deps.timeZone)}`,
        creator: p.creator,
        pipelineTree: PipelineTreeSchema.parse(JSON.parse(p.pipelineTree)) as Record<string, unknown>,
        constants: {},
        dueAt: due,
      }),
    )
    if (outcome.taskId !== null) deps.fault?.(FAULT_AFTER_TASK_CREATED)
    await recordFiring(tx, firingId, outcome)
  }
  await advancePeriodic(tx, {
    id: p.id,
    nextRunAt: nextDue(p.cron, deps.timeZone, at),
    ranAt: outcome.taskId !== null ? at : null,
  })
  if (outcome.error !== null)
    deps.logger.warn(
      { periodicTaskId: p.id, dueAt: due, error: outcome.error },
      'periodic firing created no task',
    )
  return outcome
}

/** One clocked task fired inside `tx`, or null when none is due at `at`. */
export async function fireClocked(deps: SchedulerDeps, tx: Executor, at: number): Promise<Outcome | null> {
  const c = await lockDueClocked(tx, at)
  if (!c) return null
  const params = JSON.parse(c.taskParameters) as {
    constants?: Record<string, unknown>
    template_schemes_id?: Array<number | string>
  }
  const outcome = outcomeOf(
    await deps.start(tx, {
      kind: 'clocked',
      scheduleId: c.id,
      projectId: c.projectId,
      templateId: c.templateId,
      templateSource: c.templateSource,
      schemes: params.template_schemes_id ?? [],
      taskName: c.taskName,
      creator: c.creator,
      pipelineTree: null,
      constants: params.constants ?? {},
      dueAt: c.planStartAt,
    }),
  )
  if (outcome.taskId !== null) deps.fault?.(FAULT_AFTER_TASK_CREATED)
  await recordClockedFiring(tx, { id: c.id, ...outcome, worker: deps.worker, at })
  if (outcome.error !== null)
    deps.logger.warn({ clockedTaskId: c.id, error: outcome.error }, 'clocked task created no task')
  return outcome
}

/** What the worker calls on every pass of its loop. */
export function createScheduler(deps: SchedulerDeps) {
  let pausedUntil = 0
  let checkedAt = Number.NEGATIVE_INFINITY

  /** Fires what is due now, up to PER_PASS firings of each kind, each in its own transaction; returns how many tasks it started. */
  const fireDue = async (): Promise<number> => {
    if (deps.now() < pausedUntil) return 0
    const real = performance.now()
    if (real - checkedAt < CHECK_EVERY_MS) return 0
    checkedAt = real
    let started = 0
    try {
      if (!(await anyScheduleDue(deps.db, deps.now()))) return 0
      for (const fire of [firePeriodic, fireClocked]) {
        for (let i = 0; i < PER_PASS; i++) {
          const outcome = await deps.db.tx((tx) => fire(deps, tx, deps.now()))
          if (!outcome) break
          if (outcome.taskId !== null) {
            started += 1
            deps.afterCommit([{ kind: 'wake', taskId: outcome.taskId }])
          }
        }
      }
    } catch (err) {
      pausedUntil = deps.now() + ERROR_PAUSE_MS
      deps.logger.error({ err }, 'firing schedules failed; trying again in a few seconds')
    }
    return started
  }

  return { fireDue }
}
