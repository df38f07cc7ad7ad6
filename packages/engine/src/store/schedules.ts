/** Periodic and clocked tasks as the worker fires them: the due-schedule claims and the firing records. */
import type { CronSpec } from '@stdops/core'
import { type Db, type Executor, empty, type Sql, sql } from '@stdops/db'

export interface DuePeriodic {
  id: number
  projectId: number
  templateId: number
  /** `project` (templates) or `common` (common_templates) */
  templateSource: string
  name: string
  creator: string
  cron: CronSpec
  /** The tree every firing runs (JSON). */
  pipelineTree: string
  /** The due time the schedule was waiting for. */
  nextRunAt: number
}

export interface DueClocked {
  id: number
  projectId: number
  templateId: number
  templateSource: string
  taskName: string
  creator: string
  /** task_parameters (JSON): `{constants, template_schemes_id}`. */
  taskParameters: string
  planStartAt: number
}

/** PostgreSQL: the row is this transaction's, and other workers skip it. SQLite has one writer. */
const forUpdate = (exec: Executor): Sql =>
  exec.provider === 'postgresql' ? sql`FOR UPDATE SKIP LOCKED` : empty

/**
 * True when some schedule is due at `at`: one cheap read (two indexed MINs), so that an idle
 * worker opens no write transaction on every pass of its loop.
 */
export async function anyScheduleDue(db: Db, at: number): Promise<boolean> {
  const [row] = await db.query<{ p: number | string | null; c: number | string | null }>(
    sql`SELECT (SELECT MIN(next_run_at) FROM periodic_tasks WHERE enabled = ${true}) AS p,
               (SELECT MIN(plan_start_at) FROM clocked_tasks WHERE state = 'not_started') AS c`,
  )
  const due = (v: number | string | null | undefined) => v !== null && v !== undefined && Number(v) <= at
  return due(row?.p) || due(row?.c)
}

/** Takes the enabled periodic task due first at `at` for this transaction, or null when none is. */
export async function lockDuePeriodic(tx: Executor, at: number): Promise<DuePeriodic | null> {
  const [r] = await tx.query<{
    id: number
    project_id: number
    template_id: number
    template_source: string
    name: string
    creator: string
    cron_minute: string
    cron_hour: string
    cron_day_of_week: string
    cron_day_of_month: string
    cron_month_of_year: string
    pipeline_tree: string
    next_run_at: number | string
  }>(
    sql`SELECT id, project_id, template_id, template_source, name, creator, cron_minute, cron_hour, cron_day_of_week,
               cron_day_of_month, cron_month_of_year, pipeline_tree, next_run_at
        FROM periodic_tasks WHERE enabled = ${true} AND next_run_at <= ${at}
        ORDER BY next_run_at, id LIMIT 1 ${forUpdate(tx)}`,
  )
  if (!r) return null
  return {
    id: Number(r.id),
    projectId: Number(r.project_id),
    templateId: Number(r.template_id),
    templateSource: r.template_source,
    name: r.name,
    creator: r.creator,
    cron: {
      minute: r.cron_minute,
      hour: r.cron_hour,
      day_of_week: r.cron_day_of_week,
      day_of_month: r.cron_day_of_month,
      month_of_year: r.cron_month_of_year,
    },
    pipelineTree: r.pipeline_tree,
    nextRunAt: Number(r.next_run_at),
  }
}

/**
 * Records the firing of `periodicTaskId` for `dueAt`: its id, or null when that due time has a
 * firing already (the unique pair refuses a second one, whoever tries).
 */
export async function insertFiring(
  tx: Executor,
  f: { periodicTaskId: number; dueAt: number; worker: string; at: number },
): Promise<number | null> {
  const [row] = await tx.query<{ id: number }>(
    sql`INSERT INTO periodic_firings (periodic_task_id, due_at, worker, created_at)
        VALUES (${f.periodicTaskId}, ${f.dueAt}, ${f.worker}, ${f.at})
        ON CONFLICT (periodic_task_id, due_at) DO NOTHING RETURNING id`,
  )
  return row ? Number(row.id) : null
}

/** The firing's outcome: the task it started, or why there is none. */
export async function recordFiring(
  tx: Executor,
  firingId: number,
  outcome: { taskId: number | null; error: string | null },
): Promise<void> {
  await tx.execute(
    sql`UPDATE periodic_firings SET task_id = ${outcome.taskId}, error = ${outcome.error} WHERE id = ${firingId}`,
  )
}

/** Moves the periodic task to its next due time; a firing that started a task counts as a run. */
export async function advancePeriodic(
  tx: Executor,
  p: { id: number; nextRunAt: number | null; ranAt: number | null },
): Promise<void> {
  const ran = p.ranAt !== null
  await tx.execute(
    sql`UPDATE periodic_tasks SET next_run_at = ${p.nextRunAt},
          last_run_at = ${ran ? sql`${p.ranAt}` : sql`last_run_at`},
          total_run_count = total_run_count + ${ran ? 1 : 0}
        WHERE id = ${p.id}`,
  )
}

/** Takes the clocked task due first at `at` (not started yet) for this transaction, or null. */
export async function lockDueClocked(tx: Executor, at: number): Promise<DueClocked | null> {
  const [r] = await tx.query<{
    id: number
    project_id: number
    template_id: number
    template_source: string
    task_name: string
    creator: string
    task_parameters: string
    plan_start_at: number | string
  }>(
    sql`SELECT id, project_id, template_id, template_source, task_name, creator, task_parameters, plan_start_at
        FROM clocked_tasks WHERE state = 'not_started' AND plan_start_at <= ${at}
        ORDER BY plan_start_at, id LIMIT 1 ${forUpdate(tx)}`,
  )
  if (!r) return null
  return {
    id: Number(r.id),
    projectId: Number(r.project_id),
    templateId: Number(r.template_id),
    templateSource: r.template_source,
    taskName: r.task_name,
    creator: r.creator,
    taskParameters: r.task_parameters,
    planStartAt: Number(r.plan_start_at),
  }
}

/** The clocked task leaves `not_started`: `started` with its task, or `failed` with the reason. */
export async function recordClockedFiring(
  tx: Executor,
  c: { id: number; taskId: number | null; error: string | null; worker: string; at: number },
): Promise<void> {
  await tx.execute(
    sql`UPDATE clocked_tasks SET state = ${c.taskId !== null ? 'started' : 'failed'}, task_id = ${c.taskId},
          error = ${c.error}, fired_at = ${c.at}, worker = ${c.worker}
        WHERE id = ${c.id} AND state = 'not_started'`,
  )
}
