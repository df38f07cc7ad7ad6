import {
  type ClockedState,
  type CronSpec,
  exclusionForSchemes,
  formatCron,
  NotFoundError,
  ParamInvalidError,
  PLAN_START_TIME,
  StdopsError,
  type TemplateSource,
} from '@stdops/core'
import { type Executor, join, type Sql, sql } from '@stdops/db'
import {
  checkCron,
  isTimeZone,
  nextDue,
  nextDues,
  type ScheduledStart,
  type ScheduledStartResult,
  utcOffsetIn,
} from '@stdops/engine'
import type { Caller } from './auth'
import type { Deps } from './deps'
import { authorize, type Project, type ProjectRef, resolveProject } from './projects'
import { exclusionFor, insertTask, prepareTaskTree, sealedOverrides, withSubprocesses } from './tasks'
import { findTemplateOf, previewTree, schemeNodeLists } from './templates'
import { formatTime, parseLocalTime } from './time'

/**
 * Periodic and clocked tasks: the use cases behind the ESB schedule APIs, tRPC `periodic.*` and
 * `clocked.*`, and the hook through which the engine's worker creates and starts their tasks.
 * Creating and changing a schedule needs create_task; reading one, project_view.
 */

// ---- cron -------------------------------------------------------------------------------------

/** A cron the library accepts and that can fire, or a refusal naming the field. */
function checkedCron(deps: Deps, cron: CronSpec): CronSpec {
  const problem = checkCron(cron, deps.timeZone)
  if (problem)
    throw new ParamInvalidError(
      `invalid param: ${problem.field ? `cron.${problem.field}` : 'cron'}: ${problem.message}`,
    )
  return cron
}

interface PeriodicRecord {
  id: number
  projectId: number
  templateId: number
  templateSource: string
  name: string
  creator: string
  editor: string
  cronMinute: string
  cronHour: string
  cronDayOfWeek: string
  cronDayOfMonth: string
  cronMonthOfYear: string
  pipelineTree: string
  enabled: boolean
  nextRunAt: bigint | null
  lastRunAt: bigint | null
  totalRunCount: number
  createdAt: bigint
  editedAt: bigint
}

const cronOf = (p: PeriodicRecord): CronSpec => ({
  minute: p.cronMinute,
  hour: p.cronHour,
  day_of_week: p.cronDayOfWeek,
  day_of_month: p.cronDayOfMonth,
  month_of_year: p.cronMonthOfYear,
})

const cronColumns = (c: CronSpec) => ({
  cronMinute: c.minute,
  cronHour: c.hour,
  cronDayOfWeek: c.day_of_week,
  cronDayOfMonth: c.day_of_month,
  cronMonthOfYear: c.month_of_year,
})

// ---- periodic tasks ----------------------------------------------------------------------------

type Constants = Record<string, { show_type?: string } & Record<string, unknown>>

/** bk-sops's `form`: the constants a user is shown (show_type `show`, the default). */
const formOf = (constants: Constants) =>
  Object.fromEntries(Object.entries(constants).filter(([, c]) => (c.show_type ?? 'show') === 'show'))

/** A list item, as bk-sops's get_periodic_task_list has it, plus the next due time and the project. */
function periodicItem(deps: Deps, project: Project, p: PeriodicRecord) {
  return {
    id: p.id,
    name: p.name,
    cron: formatCron(cronOf(p)),
    enabled: p.enabled,
    total_run_count: p.totalRunCount,
    last_run_at: formatTime(deps, p.lastRunAt) ?? '',
    next_run_at: formatTime(deps, p.nextRunAt),
    creator: p.creator,
    template_id: String(p.templateId),
    template_source: p.templateSource,
    project_id: project.id,
    bk_biz_id: project.bkBizId,
  }
}

/** get_periodic_task_info: the item, the snapshot tree and its form, and the next five due times. */
function periodicInfo(deps: Deps, project: Project, p: PeriodicRecord) {
  const tree = JSON.parse(p.pipelineTree) as Record<string, unknown>
  const upcoming = p.enabled && p.nextRunAt !== null ? [Number(p.nextRunAt)] : []
  if (upcoming.length > 0) upcoming.push(...nextDues(cronOf(p), deps.timeZone, upcoming[0]!, 4))
  return {
    ...periodicItem(deps, project, p),
    cron_fields: cronOf(p),
    editor: p.editor,
    create_time: formatTime(deps, p.createdAt),
    edit_time: formatTime(deps, p.editedAt),
    next_run_times: upcoming.map((ms) => formatTime(deps, ms)!),
    form: formOf((tree.constants as Constants | undefined) ?? {}),
    pipeline_tree: tree,
  }
}

export type PeriodicTaskItem = ReturnType<typeof periodicItem>
export type PeriodicTaskInfo = ReturnType<typeof periodicInfo>

/** A periodic task of the project, answered alike when it is elsewhere or nowhere. */
async function findPeriodic(deps: Deps, project: Project, id: number): Promise<PeriodicRecord> {
  const p =
    id > 2147483647
      ? null
      : await deps.db.prisma.periodicTask.findFirst({ where: { id, projectId: project.id } })
  if (!p)
    throw new NotFoundError(`periodic_task[id=${id}] does not exist in project(${project.ref.bk_biz_id})`)
  return p
}

/** Project, periodic task (in it), permission: the contract's order. */
async function resolvePeriodic(
  deps: Deps,
  caller: Caller,
  ref: ProjectRef,
  id: number,
  action: 'create_task' | 'project_view',
) {
  const project = await resolveProject(deps, caller, ref)
  const periodic = await findPeriodic(deps, project, id)
  authorize(caller, project, action)
  return { project, periodic }
}

export interface CreatePeriodicInput {
  template_id: number
  template_source?: TemplateSource | undefined
  name: string
  cron: CronSpec
  constants?: Record<string, unknown> | undefined
  exclude_task_nodes_id?: string[] | undefined
  template_schemes_id?: Array<number | string> | undefined
}

/** Created disabled, as bk-sops does: nothing fires until set_periodic_task_enabled. */
export async function createPeriodicTask(
  deps: Deps,
  caller: Caller,
  ref: ProjectRef,
  input: CreatePeriodicInput,
) {
  const cron = checkedCron(deps, input.cron)
  const project = await resolveProject(deps, caller, ref)
  const template = await findTemplateOf(
    deps,
    project.id,
    input.template_source ?? 'project',
    input.template_id,
    ref,
  )
  authorize(caller, project, 'create_task')
  // The snapshot every firing runs: the template with its exclusion applied and the constants set.
  const base = JSON.parse(template.pipelineTree) as Record<string, unknown>
  const exclude = await exclusionFor(deps, template, base, input)
  const tree = prepareTaskTree(deps, previewTree(base, exclude).pipeline_tree, input.constants)
  const now = BigInt(deps.now())
  const p = await deps.db.prisma.periodicTask.create({
    data: {
      projectId: project.id,
      templateId: template.id,
      templateSource: template.source,
      name: input.name,
      creator: caller.username,
      editor: caller.username,
      ...cronColumns(cron),
      pipelineTree: JSON.stringify(tree),
      enabled: false,
      createdAt: now,
      editedAt: now,
    },
  })
  return periodicInfo(deps, project, p)
}

export async function listPeriodicTasks(deps: Deps, caller: Caller, ref: ProjectRef) {
  const project = await resolveProject(deps, caller, ref)
  authorize(caller, project, 'project_view')
  const rows = await deps.db.prisma.periodicTask.findMany({
    where: { projectId: project.id },
    orderBy: { id: 'desc' },
  })
  return rows.map((p) => periodicItem(deps, project, p))
}

export async function getPeriodicTask(deps: Deps, caller: Caller, ref: ProjectRef, id: number) {
  const { project, periodic } = await resolvePeriodic(deps, caller, ref, id, 'project_view')
  return periodicInfo(deps, project, periodic)
}

/**
 * Enabling computes the first due time after now (times that passed while it was disabled are
 * not caught up); enabling an enabled task changes nothing. Disabling stops future firings; tasks
 * already created run on.
 */
export async function setPeriodicTaskEnabled(
  deps: Deps,
  caller: Caller,
  ref: ProjectRef,
  id: number,
  enabled: boolean,
) {
  const { periodic } = await resolvePeriodic(deps, caller, ref, id, 'create_task')
  const now = deps.now()
  const next = enabled ? nextDue(cronOf(periodic), deps.timeZone, now) : null
  // Only a change of state writes: a firing in flight keeps its own next_run_at.
  await deps.db.prisma.periodicTask.updateMany({
    where: { id: periodic.id, enabled: !enabled },
    data: {
      enabled,
      nextRunAt: next === null ? null : BigInt(next),
      editor: caller.username,
      editedAt: BigInt(now),
    },
  })
  return { enabled }
}

/** A new cron applies at once: an enabled task's next due time is computed again from now. */
export async function modifyPeriodicCron(
  deps: Deps,
  caller: Caller,
  ref: ProjectRef,
  id: number,
  input: CronSpec,
) {
  const cron = checkedCron(deps, input)
  const { periodic } = await resolvePeriodic(deps, caller, ref, id, 'create_task')
  const now = deps.now()
  const next = nextDue(cron, deps.timeZone, now)
  await deps.db.execute(sql`UPDATE periodic_tasks SET cron_minute = ${cron.minute}, cron_hour = ${cron.hour},
        cron_day_of_week = ${cron.day_of_week}, cron_day_of_month = ${cron.day_of_month},
        cron_month_of_year = ${cron.month_of_year}, editor = ${caller.username}, edited_at = ${now},
        next_run_at = CASE WHEN enabled THEN CAST(${next} AS BIGINT) ELSE NULL END
      WHERE id = ${periodic.id}`)
  return { cron: formatCron(cron) }
}

/**
 * Overrides constants of the tree every firing runs (keys as `${key}` or `key`; keys the tree does
 * not have are ignored, as bk-sops does) and answers with all of its constants. Allowed while
 * enabled: the next firing runs with them.
 */
export async function modifyPeriodicConstants(
  deps: Deps,
  caller: Caller,
  ref: ProjectRef,
  id: number,
  constants: Record<string, unknown>,
) {
  const { periodic } = await resolvePeriodic(deps, caller, ref, id, 'create_task')
  const tree = prepareTaskTree(deps, JSON.parse(periodic.pipelineTree) as Record<string, unknown>, constants)
  await deps.db.prisma.periodicTask.update({
    where: { id: periodic.id },
    data: { pipelineTree: JSON.stringify(tree), editor: caller.username, editedAt: BigInt(deps.now()) },
  })
  return (tree.constants as Constants | undefined) ?? {}
}

/**
 * The periodic task's latest firings, newest first: the due time, the task it started (with its
 * name and state now) or why it started none.
 */
export async function listPeriodicFirings(
  deps: Deps,
  caller: Caller,
  ref: ProjectRef,
  id: number,
  limit: number,
) {
  const { periodic } = await resolvePeriodic(deps, caller, ref, id, 'project_view')
  const rows = await deps.db.query<{
    due_at: number
    created_at: number
    task_id: number | null
    error: string | null
    name: string | null
    state: string | null
  }>(
    sql`SELECT f.due_at, f.created_at, f.task_id, f.error, t.name, t.state
        FROM periodic_firings f LEFT JOIN tasks t ON t.id = f.task_id AND t.project_id = ${periodic.projectId}
        WHERE f.periodic_task_id = ${periodic.id} ORDER BY f.due_at DESC LIMIT ${limit}`,
  )
  return rows.map((r) => ({
    due_time: formatTime(deps, r.due_at)!,
    fired_time: formatTime(deps, r.created_at)!,
    task_id: r.task_id === null ? null : Number(r.task_id),
    task_name: r.name,
    task_state: r.state,
    error: r.error,
  }))
}

export type PeriodicFiring = Awaited<ReturnType<typeof listPeriodicFirings>>[number]

// ---- clocked tasks -----------------------------------------------------------------------------

/** `plan_start_time` → epoch ms: with its UTC offset when it has one, else in the server's zone. */
export function parsePlanStartTime(deps: Pick<Deps, 'utcOffsetMinutes'>, s: string): number | null {
  const m = PLAN_START_TIME.exec(s.trim())
  if (!m) return null
  const [, y, mo, d, h, mi, se = '0', zone] = m
  const fields = [Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(se)] as const
  const utc = Date.UTC(...fields)
  const back = new Date(utc)
  // 2026-02-31 or 25:00 would roll over: refuse instead
  if (
    back.getUTCFullYear() !== fields[0] ||
    back.getUTCMonth() !== fields[1] ||
    back.getUTCDate() !== fields[2] ||
    back.getUTCHours() !== fields[3] ||
    back.getUTCMinutes() !== fields[4] ||
    back.getUTCSeconds() !== fields[5]
  )
    return null
  if (zone === undefined) return parseLocalTime(deps, `${y}-${mo}-${d} ${h}:${mi}:${se.padStart(2, '0')}`)
  if (zone === 'Z') return utc
  const z = /^([+-])(\d{2}):?(\d{2})$/.exec(zone)!
  const offset = (Number(z[2]) * 60 + Number(z[3])) * (z[1] === '-' ? -1 : 1)
  if (Math.abs(offset) > 14 * 60) return null
  return utc - offset * 60_000
}

interface ClockedRecord {
  id: number
  projectId: number
  templateId: number
  templateSource: string
  taskName: string
  creator: string
  editor: string
  planStartAt: bigint
  taskParameters: string
  state: string
  taskId: number | null
  error: string | null
  createdAt: bigint
  editedAt: bigint
  firedAt: bigint | null
}

/** bk-sops's actions on a clocked task, as its list reports them for the caller. */
function clockedActions(caller: Caller, project: Project): string[] {
  const canEdit = caller.app.trusted || project.role === 'operator' || project.role === 'admin'
  return canEdit
    ? ['clocked_task_view', 'clocked_task_edit', 'clocked_task_delete', 'flow_view']
    : ['clocked_task_view', 'flow_view']
}

function clockedItem(
  deps: Pick<Deps, 'utcOffsetMinutes'>,
  project: Project,
  c: ClockedRecord,
  templateName: string,
) {
  return {
    id: c.id,
    clocked_task_id: c.id,
    task_name: c.taskName,
    task_parameters: JSON.parse(c.taskParameters) as {
      constants: Record<string, unknown>
      template_schemes_id: Array<number | string>
    },
    plan_start_time: formatTime(deps, c.planStartAt)!,
    state: c.state as ClockedState,
    task_id: c.taskId,
    error: c.error,
    creator: c.creator,
    editor: c.editor,
    create_time: formatTime(deps, c.createdAt),
    edit_time: formatTime(deps, c.editedAt),
    fired_time: formatTime(deps, c.firedAt),
    project_id: project.id,
    bk_biz_id: project.bkBizId,
    template_id: c.templateId,
    template_name: templateName,
    template_source: c.templateSource,
  }
}

export type ClockedTaskItem = ReturnType<typeof clockedItem>

export interface CreateClockedInput {
  template_id: number
  template_source?: TemplateSource | undefined
  task_name: string
  plan_start_time: string
  task_parameters: { constants: Record<string, unknown>; template_schemes_id: Array<number | string> }
}

/**
 * One task of the template, created and started at `plan_start_time` (state not_started → started;
 * failed, with the reason, when the task could not be created then). The constants are checked
 * against the template now, and applied to the template as it is at that time.
 */
export async function createClockedTask(
  deps: Deps,
  caller: Caller,
  ref: ProjectRef,
  input: CreateClockedInput,
) {
  const at = parsePlanStartTime(deps, input.plan_start_time)
  if (at === null) throw new ParamInvalidError('invalid param: plan_start_time: not a valid time')
  const now = deps.now()
  if (at < now - 1000) throw new ParamInvalidError('invalid param: plan_start_time: must not be in the past')
  const project = await resolveProject(deps, caller, ref)
  const template = await findTemplateOf(
    deps,
    project.id,
    input.template_source ?? 'project',
    input.template_id,
    ref,
  )
  authorize(caller, project, 'create_task')
  // Checked now (the schemes exist, the constants resolve); applied to the template as it is when it fires.
  const base = JSON.parse(template.pipelineTree) as Record<string, unknown>
  const exclude = await exclusionFor(deps, template, base, input.task_parameters)
  const prepared = prepareTaskTree(
    deps,
    previewTree(base, exclude).pipeline_tree,
    input.task_parameters.constants,
  )
  // kept as given, but for secret constants: those are kept sealed
  const taskParameters = {
    ...input.task_parameters,
    constants: sealedOverrides(prepared, input.task_parameters.constants) ?? {},
  }
  const c = await deps.db.prisma.clockedTask.create({
    data: {
      projectId: project.id,
      templateId: template.id,
      templateSource: template.source,
      taskName: input.task_name,
      creator: caller.username,
      editor: caller.username,
      planStartAt: BigInt(at),
      taskParameters: JSON.stringify(taskParameters),
      createdAt: BigInt(now),
      editedAt: BigInt(now),
    },
  })
  return clockedItem(deps, project, c, template.name)
}

export interface ClockedListFilter {
  id?: number | undefined
  task_name?: string | undefined
  creator?: string | undefined
  editor?: string | undefined
  state?: ClockedState | undefined
  expected_timezone?: string | undefined
  offset: number
  limit: number
}

/** Newest first, with `count` (all that match) and the caller's `auth_actions` on each. */
export async function listClockedTasks(deps: Deps, caller: Caller, ref: ProjectRef, f: ClockedListFilter) {
  const zone = f.expected_timezone
  if (zone !== undefined && !isTimeZone(zone))
    throw new ParamInvalidError(`invalid param: expected_timezone: unknown time zone '${zone}'`)
  const project = await resolveProject(deps, caller, ref)
  authorize(caller, project, 'project_view')
  // bk-sops filters names with icontains: a literal, case-insensitive substring on both databases.
  const contains =
    deps.db.provider === 'postgresql'
      ? (col: Sql, k: string) => sql`strpos(lower(${col}), lower(${k})) > 0`
      : (col: Sql, k: string) => sql`instr(lower(${col}), lower(${k})) > 0`
  const conds: Sql[] = [sql`c.project_id = ${project.id}`]
  if (f.id !== undefined) conds.push(sql`c.id = ${f.id > 2147483647 ? -1 : f.id}`)
  if (f.task_name) conds.push(contains(sql`c.task_name`, f.task_name))
  if (f.creator) conds.push(contains(sql`c.creator`, f.creator))
  if (f.editor) conds.push(contains(sql`c.editor`, f.editor))
  if (f.state) conds.push(sql`c.state = ${f.state}`)
  const where = join(conds, ' AND ')
  const [rows, [total]] = await Promise.all([
    deps.db.query<{
      id: number
      project_id: number
      template_id: number
      template_source: string
      task_name: string
      creator: string
      editor: string
      plan_start_at: number
      task_parameters: string
      state: string
      task_id: number | null
      error: string | null
      created_at: number
      edited_at: number
      fired_at: number | null
      template_name: string | null
    }>(
      sql`SELECT c.id, c.project_id, c.template_id, c.task_name, c.creator, c.editor, c.plan_start_at, c.task_parameters,
                 c.state, c.task_id, c.error, c.created_at, c.edited_at, c.fired_at, c.template_source,
                 CASE WHEN c.template_source = 'common' THEN ct.name ELSE t.name END AS template_name
          FROM clocked_tasks c
          LEFT JOIN templates t ON t.id = c.template_id AND c.template_source = 'project'
          LEFT JOIN common_templates ct ON ct.id = c.template_id AND c.template_source = 'common'
          WHERE ${where} ORDER BY c.id DESC LIMIT ${f.limit} OFFSET ${f.offset}`,
    ),
    deps.db.query<{ n: number }>(sql`SELECT COUNT(*) AS n FROM clocked_tasks c WHERE ${where}`),
  ])
  const timeDeps = zone === undefined ? deps : { utcOffsetMinutes: (d: Date) => utcOffsetIn(zone, d) }
  const actions = clockedActions(caller, project)
  const list = rows.map((r) => ({
    ...clockedItem(
      timeDeps,
      project,
      {
        id: Number(r.id),
        projectId: Number(r.project_id),
        templateId: Number(r.template_id),
        templateSource: r.template_source,
        taskName: r.task_name,
        creator: r.creator,
        editor: r.editor,
        planStartAt: BigInt(r.plan_start_at),
        taskParameters: r.task_parameters,
        state: r.state,
        taskId: r.task_id === null ? null : Number(r.task_id),
        error: r.error,
        createdAt: BigInt(r.created_at),
        editedAt: BigInt(r.edited_at),
        firedAt: r.fired_at === null ? null : BigInt(r.fired_at),
      },
      r.template_name ?? '',
    ),
    auth_actions: actions,
  }))
  return { list, count: Number(total?.n ?? 0) }
}

/**
 * Removes a clocked task. One that has not fired never will; one that has fired keeps its task
 * (only the schedule's record goes). A firing in flight finishes first: the delete waits for its row.
 */
export async function deleteClockedTask(deps: Deps, caller: Caller, ref: ProjectRef, id: number) {
  const project = await resolveProject(deps, caller, ref)
  const c =
    id > 2147483647
      ? null
      : await deps.db.prisma.clockedTask.findFirst({ where: { id, projectId: project.id } })
  if (!c) throw new NotFoundError(`clocked_task[id=${id}] does not exist in project(${ref.bk_biz_id})`)
  authorize(caller, project, 'create_task')
  const [gone] = await deps.db.query<{ state: string; task_id: number | null }>(
    sql`DELETE FROM clocked_tasks WHERE id = ${c.id} AND project_id = ${project.id} RETURNING state, task_id`,
  )
  if (!gone) throw new NotFoundError(`clocked_task[id=${id}] does not exist in project(${ref.bk_biz_id})`)
  return {
    id: c.id,
    deleted: true,
    state: gone.state as ClockedState,
    task_id: gone.task_id === null ? null : Number(gone.task_id),
  }
}

// ---- the engine's hook ---------------------------------------------------------------------------

/**
 * What the engine's worker calls inside a firing's transaction: the same preparation and insert as
 * create_and_start_task, as the schedule's creator, with create_method `periodic` or `clocked`.
 * Reads go through `tx` only (on SQLite the transaction holds the one connection). What makes the
 * task impossible (the template gone, a constant that no longer resolves) is returned, recorded
 * on the firing, and the schedule moves on.
 */
export async function startScheduledTask(
  deps: Deps,
  tx: Executor,
  s: ScheduledStart,
): Promise<ScheduledStartResult> {
  const common = s.templateSource === 'common'
  const [template] = await tx.query<{ id: number; name: string; pipeline_tree: string }>(
    common
      ? sql`SELECT id, name, pipeline_tree FROM common_templates WHERE id = ${s.templateId}`
      : sql`SELECT id, name, pipeline_tree FROM templates WHERE id = ${s.templateId} AND project_id = ${s.projectId}`,
  )
  if (!template)
    return {
      error: common
        ? `common template[id=${s.templateId}] no longer exists`
        : `template[id=${s.templateId}] no longer exists in the project`,
    }
  let tree: Record<string, unknown>
  try {
    const base = s.pipelineTree ?? (JSON.parse(template.pipeline_tree) as Record<string, unknown>)
    // Schemes (clocked) through tx: on SQLite the firing's transaction holds the one connection.
    const schemes =
      s.schemes.length === 0
        ? []
        : schemeNodeLists(
            { source: common ? 'common' : 'project', id: s.templateId },
            await tx.query<{ id: number; name: string; data: string }>(
              sql`SELECT id, name, data FROM template_schemes
                  WHERE template_source = ${common ? 'common' : 'project'} AND template_id = ${s.templateId}`,
            ),
            s.schemes,
          )
    const kept = previewTree(base, exclusionForSchemes(base, schemes)).pipeline_tree
    tree = await withSubprocesses(deps, tx, s.projectId, prepareTaskTree(deps, kept, s.constants), {
      id: s.templateId,
      name: template.name,
      source: common ? 'common' : 'project',
    })
  } catch (err) {
    if (err instanceof StdopsError) return { error: err.message }
    throw err
  }
  // A start's effect is waking the workers: the engine does that itself once the firing committed.
  const { id: taskId } = await insertTask(deps, tx, {
    projectId: s.projectId,
    templateId: s.templateId,
    templateSource: common ? 'common' : 'project',
    name: s.taskName.slice(0, 200),
    tree,
    operator: s.creator,
    // the server fires it on the creator's behalf: no app calls
    appCode: '',
    source: s.kind,
    start: true,
  })
  return { taskId }
}
