import { InvalidOperationError, NotFoundError, ParamInvalidError, PermissionDeniedError } from '@stdops/core'
import { sql } from '@stdops/db'
import type { Caller } from './auth'
import type { Deps } from './deps'
import { authorize, type ProjectRef, resolveProject } from './projects'
import { resolveTask } from './tasks'
import { findTemplateOf } from './templates'
import { formatTime } from './time'

/** How many of a node's latest executions get_node_execution_record lists. */
const EXECUTION_RECORDS = 20

/**
 * bk-sops's get_node_execution_record: how long a template's node took in the tasks made from
 * the template (tasks keep their template's node ids), latest first, and how many runs there were.
 */
export async function nodeExecutionRecord(
  deps: Deps,
  caller: Caller,
  ref: ProjectRef,
  templateId: number,
  nodeId: string,
) {
  const project = await resolveProject(deps, caller, ref)
  const template = await findTemplateOf(deps, project.id, 'project', templateId, ref)
  authorize(caller, project, 'project_view')
  const where = sql`t.project_id = ${project.id} AND t.template_id = ${template.id} AND t.template_source = 'project'
    AND h.node_id = ${nodeId} AND h.state = 'FINISHED' AND h.finished_at IS NOT NULL`
  const [rows, [total]] = await Promise.all([
    deps.db.query<{ started_at: number | string; finished_at: number | string }>(
      sql`SELECT h.started_at, h.finished_at FROM node_histories h JOIN tasks t ON t.id = h.task_id
          WHERE ${where} ORDER BY h.finished_at DESC, h.id DESC LIMIT ${EXECUTION_RECORDS}`,
    ),
    deps.db.query<{ n: number | string }>(
      sql`SELECT COUNT(*) AS n FROM node_histories h JOIN tasks t ON t.id = h.task_id WHERE ${where}`,
    ),
  ])
  return {
    execution_time: rows.map((r) => ({
      archived_time: formatTime(deps, Number(r.finished_at)),
      elapsed_time: Math.max(0, Math.floor((Number(r.finished_at) - Number(r.started_at)) / 1000)),
    })),
    total: Number(total?.n ?? 0),
  }
}

/** Components whose time is a person's or a clock's, not the work's (bk-sops's default list). */
export const MANUAL_WAITING_COMPONENT_CODES = ['bk_approve', 'pause_node', 'sleep_timer', 'bot-approval']

/**
 * bk-sops's get_task_effective_time: a FINISHED task's run time without the time its waiting
 * nodes (approvals, pauses, timers) spent. A task not finished, or revoked, has none.
 */
export async function taskEffectiveTime(deps: Deps, caller: Caller, ref: ProjectRef, taskId: number) {
  const { project } = await resolveTask(deps, caller, ref, taskId, 'task_view')
  const t = await deps.db.prisma.task.findUniqueOrThrow({ where: { id: taskId } })
  if (t.state === 'REVOKED')
    throw new InvalidOperationError(`task[id=${taskId}] was revoked: its effective time cannot be computed`)
  if (t.state !== 'FINISHED' || t.startedAt === null || t.finishedAt === null)
    throw new InvalidOperationError(
      `task[id=${taskId}] has not finished: its effective time cannot be computed`,
    )
  const tree = JSON.parse(t.pipelineTree) as {
    activities?: Record<string, { component?: { code?: unknown } }>
  }
  const codes = new Map(
    Object.entries(tree.activities ?? {}).map(([id, a]) => [id, String(a.component?.code ?? '')]),
  )
  const histories = await deps.db.query<{
    node_id: string
    started_at: number | string
    finished_at: number | string | null
  }>(sql`SELECT node_id, started_at, finished_at FROM node_histories WHERE task_id = ${taskId}`)
  const waiting = new Set<string>()
  let waitedMs = 0
  for (const h of histories) {
    if (!MANUAL_WAITING_COMPONENT_CODES.includes(codes.get(h.node_id) ?? '')) continue
    waiting.add(h.node_id)
    if (h.finished_at !== null) waitedMs += Number(h.finished_at) - Number(h.started_at)
  }
  const totalMs = Number(t.finishedAt - t.startedAt)
  const category =
    t.category ??
    (t.templateId === null
      ? 'Other'
      : ((t.templateSource === 'common'
          ? await deps.db.prisma.commonTemplate.findUnique({ where: { id: t.templateId } })
          : await deps.db.prisma.template.findUnique({ where: { id: t.templateId } })
        )?.category ?? 'Other'))
  return {
    task_instance_id: t.id,
    instance_id: t.id,
    template_id: t.templateId === null ? '' : String(t.templateId),
    task_template_id: t.templateId === null ? '' : String(t.templateId),
    project_id: project.id,
    creator: t.creator,
    create_method: t.createMethod,
    create_time: formatTime(deps, t.createdAt),
    start_time: formatTime(deps, t.startedAt),
    finish_time: formatTime(deps, t.finishedAt),
    total_elapsed_time: Math.floor(totalMs / 1000),
    effective_time: Math.max(0, Math.floor((totalMs - waitedMs) / 1000)),
    excluded_node_count: waiting.size,
    total_node_count: codes.size,
    excluded_component_codes: MANUAL_WAITING_COMPONENT_CODES,
    category,
  }
}

/**
 * bk-sops's register_project: a project for a CMDB business. stdops reads no CMDB, so only a
 * trusted app may register one (it names it, or it is `biz<bk_biz_id>`); an existing business's
 * project is answered as it is.
 */
export async function registerProject(
  deps: Deps,
  caller: Caller,
  input: { bk_biz_id: number; project_name?: string | undefined },
) {
  if (!caller.app.trusted)
    throw new PermissionDeniedError(
      `permission denied: only a trusted app may register projects (app ${caller.app.code})`,
    )
  if (input.bk_biz_id > 2147483647)
    throw new ParamInvalidError('invalid param: bk_biz_id: must be at most 2147483647')
  const existing = await deps.db.prisma.project.findUnique({ where: { bkBizId: input.bk_biz_id } })
  if (existing) return { project_id: existing.id, project_name: existing.name }
  const created = await deps.db.prisma.project
    .create({
      data: {
        name: input.project_name ?? `biz${input.bk_biz_id}`,
        bkBizId: input.bk_biz_id,
        createdAt: BigInt(deps.now()),
      },
    })
    .catch(async (err: unknown) => {
      // Registered twice at once: the unique bk_biz_id lets one in; the other answers with it.
      if ((err as { code?: unknown }).code !== 'P2002') throw err
      const row = await deps.db.prisma.project.findUnique({ where: { bkBizId: input.bk_biz_id } })
      if (!row) throw new NotFoundError(`project(${input.bk_biz_id}) could not be registered`)
      return row
    })
  return { project_id: created.id, project_name: created.name }
}
