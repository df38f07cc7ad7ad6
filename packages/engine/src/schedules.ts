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
import { type CronSpec, PipelineTreeSchema } from '@stdops/core'
import { type Db, type Executor, empty, sql } from '@stdops/db'
import type { Logger } from 'pino'
import { latestDue, nextDue, wallClockStamp } from './cron'

export interface ScheduledStart {
  kind: 'periodic' | 'clocked'
  /** The periodic or clocked task's id. */
  scheduleId: number
  projectId: number
  templateId: number
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
  /** After a firing's transaction committed with a started task. */
  onStarted: (taskId: number) => void
  fault?: ((point: string) => void) | undefined
}

/** At most this many firings per pass, so that one pass never holds the worker loop for long. */
const PER_PASS = 20
/** After an unexpected error, schedules are left alone this long (the error is logged once per pass). */
const ERROR_PAUSE_MS = 5000

interface PeriodicRow {
  id: number
  project_id: number
  template_id: number
  name: string
  creator: string
  cron_minute: string
  cron_hour: string
  cron_day_of_week: string
  cron_day_of_month: string
  cron_month_of_year: string
  pipeline_tree: string
  next_run_at: number | string
}

interface ClockedRow {
  id: number
  project_id: number
  template_id: number
  task_name: string
  creator: string
  task_parameters: string
  plan_start_at: number | string
}

const cronOfRow = (r: PeriodicRow): CronSpec => ({
  minute: r.cron_minute,
  hour: r.cron_hour,
  day_of_week: r.cron_day_of_week,
  day_of_month: r.cron_day_of_month,
  month_of_year: r.cron_month_of_year,
})

type Fired = { taskId: number | null } | null

export function createScheduler(deps: SchedulerDeps) {
  const { db, worker, timeZone, logger } = deps
  const lock = db.provider === 'postgresql' ? sql`FOR UPDATE SKIP LOCKED` : empty
  let pausedUntil = 0

  const outcome = (r: ScheduledStartResult) =>
    'taskId' in r ? { taskId: r.taskId, error: null } : { taskId: null, error: r.error }

  /** One periodic firing in `tx`, or null when no periodic task is due. */
  const firePeriodic = async (tx: Executor, at: number): Promise<Fired> => {
    const [row] = await tx.query<PeriodicRow>(
      sql`SELECT id, project_id, template_id, name, creator, cron_minute, cron_hour, cron_day_of_week,
                 cron_day_of_month, cron_month_of_year, pipeline_tree, next_run_at
          FROM periodic_tasks WHERE enabled = ${true} AND next_run_at <= ${at}
          ORDER BY next_run_at, id LIMIT 1 ${lock}`,
    )
    if (!row) return null
    const spec = cronOfRow(row)
    const scheduled = Number(row.next_run_at)
    // After downtime several due times may have passed: fire once, for the latest of them.
    const latest = latestDue(spec, timeZone, at)
    const due = latest !== null && latest >= scheduled ? latest : scheduled
    const next = nextDue(spec, timeZone, at)
    const [firing] = await tx.query<{ id: number }>(
      sql`INSERT INTO periodic_firings (periodic_task_id, due_at, worker, created_at)
          VALUES (${row.id}, ${due}, ${worker}, ${at})
          ON CONFLICT (periodic_task_id, due_at) DO NOTHING RETURNING id`,
    )
    let result: { taskId: number | null; error: string | null } = { taskId: null, error: null }
    if (firing) {
      result = outcome(
        await deps.start(tx, {
          kind: 'periodic',
          scheduleId: row.id,
          projectId: row.project_id,
          templateId: row.template_id,
          taskName: `${row.name}_${wallClockStamp(due, timeZone)}`,
          creator: row.creator,
          pipelineTree: PipelineTreeSchema.parse(JSON.parse(row.pipeline_tree)) as Record<string, unknown>,
          constants: {},
          dueAt: due,
        }),
      )
      if (result.taskId !== null) deps.fault?.(FAULT_AFTER_TASK_CREATED)
      await tx.execute(
        sql`UPDATE periodic_firings SET task_id = ${result.taskId}, error = ${result.error} WHERE id = ${firing.id}`,
      )
    }
    const ran = result.taskId !== null
    await tx.execute(
      sql`UPDATE periodic_tasks SET next_run_at = ${next},
            last_run_at = CASE WHEN ${ran} THEN ${at} ELSE last_run_at END,
            total_run_count = total_run_count + ${ran ? 1 : 0}
          WHERE id = ${row.id}`,
    )
    if (result.error !== null)
      logger.warn(
        { periodicTaskId: row.id, dueAt: due, error: result.error },
        'periodic firing created no task',
      )
    return { taskId: result.taskId }
  }

  /** One clocked task fired in `tx`, or null when none is due. */
  const fireClocked = async (tx: Executor, at: number): Promise<Fired> => {
    const [row] = await tx.query<ClockedRow>(
      sql`SELECT id, project_id, template_id, task_name, creator, task_parameters, plan_start_at
          FROM clocked_tasks WHERE state = 'not_started' AND plan_start_at <= ${at}
          ORDER BY plan_start_at, id LIMIT 1 ${lock}`,
    )
    if (!row) return null
    const params = JSON.parse(row.task_parameters) as { constants?: Record<string, unknown> }
    const result = outcome(
      await deps.start(tx, {
        kind: 'clocked',
        scheduleId: row.id,
        projectId: row.project_id,
        templateId: row.template_id,
        taskName: row.task_name,
        creator: row.creator,
        pipelineTree: null,
        constants: params.constants ?? {},
        dueAt: Number(row.plan_start_at),
      }),
    )
    if (result.taskId !== null) deps.fault?.(FAULT_AFTER_TASK_CREATED)
    await tx.execute(
      sql`UPDATE clocked_tasks SET state = ${result.taskId !== null ? 'started' : 'failed'}, task_id = ${result.taskId},
            error = ${result.error}, fired_at = ${at}, worker = ${worker}
          WHERE id = ${row.id} AND state = 'not_started'`,
    )
    if (result.error !== null)
      logger.warn({ clockedTaskId: row.id, error: result.error }, 'clocked task created no task')
    return { taskId: result.taskId }
  }

  /** True when a schedule is due: one cheap read, so that an idle worker opens no write transaction. */
  const anyDue = async (at: number) => {
    const [row] = await db.query<{ p: number | string | null; c: number | string | null }>(
      sql`SELECT (SELECT MIN(next_run_at) FROM periodic_tasks WHERE enabled = ${true}) AS p,
                 (SELECT MIN(plan_start_at) FROM clocked_tasks WHERE state = 'not_started') AS c`,
    )
    const due = (v: number | string | null | undefined) => v !== null && v !== undefined && Number(v) <= at
    return due(row?.p) || due(row?.c)
  }

  /** Fires what is due now, up to PER_PASS firings; returns how many tasks it started. */
  const fireDue = async (): Promise<number> => {
    if (deps.now() < pausedUntil) return 0
    let started = 0
    try {
      if (!(await anyDue(deps.now()))) return 0
      for (const fire of [firePeriodic, fireClocked]) {
        for (let i = 0; i < PER_PASS; i++) {
          const fired = await db.tx((tx) => fire(tx, deps.now()))
          if (!fired) break
          if (fired.taskId !== null) {
            started += 1
            deps.onStarted(fired.taskId)
          }
        }
      }
    } catch (err) {
      pausedUntil = deps.now() + ERROR_PAUSE_MS
      logger.error({ err }, 'firing schedules failed; trying again in a few seconds')
    }
    return started
  }

  return { fireDue }
}
