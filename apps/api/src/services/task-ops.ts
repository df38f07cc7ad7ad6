import { InvalidOperationError, ParamInvalidError, type TaskState, TEMPLATE_CATEGORIES } from '@stdops/core'
import { join, type Sql, sql } from '@stdops/db'
import { writeOperateRecord } from '@stdops/engine'
import type { Caller } from './auth'
import type { Deps } from './deps'
import { authorize, type ProjectRef, resolveProject } from './projects'
import { HAS_FAILED_NODE } from './task-search'
import {
  checkCallbackUrl,
  insertTask,
  type OperateSource,
  prepareTaskTree,
  resolveTask,
  taskUrl,
  withSubprocesses,
} from './tasks'
import { parseTimeFilter } from './time'

/**
 * The task APIs of the second release that are not a template's: a task from an inline tree,
 * constants changed before the start, counts, and which tasks wait for a person.
 */

export interface FastCreateInput {
  name: string
  pipeline_tree: Record<string, unknown>
  description?: string | undefined
  category?: string | undefined
  callback_url?: string | undefined
  callback_version?: 'v1' | 'v2' | undefined
}

/**
 * bk-sops's fast_create_task: a task from a tree sent inline, with no template (template_id
 * none). A tree without `gateways`, `constants` or `outputs` gets them empty.
 */
export async function fastCreateTask(
  deps: Deps,
  caller: Caller,
  ref: ProjectRef,
  input: FastCreateInput,
  source: OperateSource,
) {
  const project = await resolveProject(deps, caller, ref)
  authorize(caller, project, 'create_task')
  const base = {
    ...input.pipeline_tree,
    gateways: input.pipeline_tree.gateways ?? {},
    constants: input.pipeline_tree.constants ?? {},
    outputs: input.pipeline_tree.outputs ?? [],
  }
  const tree = await withSubprocesses(deps, deps.db, project.id, prepareTaskTree(deps, base, undefined), null)
  if (input.callback_url !== undefined) await checkCallbackUrl(deps, input.callback_url)
  const created = await deps.db.tx((tx) =>
    insertTask(deps, tx, {
      projectId: project.id,
      templateId: null,
      category: input.category,
      name: input.name,
      description: input.description,
      callbackUrl: input.callback_url,
      callbackVersion: input.callback_version,
      tree,
      operator: caller.username,
      appCode: caller.app.code,
      source,
      start: false,
    }),
  )
  deps.engine.afterCommit(created.effects)
  return { task_id: created.id, task_url: taskUrl(deps, project.id, created.id), pipeline_tree: tree }
}

/**
 * bk-sops's modify_constants_for_task: new constant values (keys the tree does not declare are
 * ignored) and, optionally, a new name, while the task has not started. A compare-and-set on the
 * task's version: a start that wins the race makes this answer 3545000, never a half change.
 * Writes an `update` operate record naming the keys it changed.
 */
export async function modifyConstantsForTask(
  deps: Deps,
  caller: Caller,
  ref: ProjectRef,
  taskId: number,
  input: { constants: Record<string, unknown>; name?: string | undefined },
  source: OperateSource,
) {
  const { project, task } = await resolveTask(deps, caller, ref, taskId, 'task_operate')
  const refuse = (state: string) =>
    new InvalidOperationError(`task with state ${state} cannot have its constants modified: it has started`)
  if (task.state !== 'CREATED') throw refuse(task.state)
  const row = await deps.db.prisma.task.findUniqueOrThrow({ where: { id: task.id } })
  const tree = prepareTaskTree(deps, JSON.parse(row.pipelineTree) as Record<string, unknown>, input.constants)
  const declared = (tree.constants ?? {}) as Record<string, unknown>
  const changed = Object.keys(input.constants)
    .map((k) => (k.startsWith('${') ? k : `\${${k}}`))
    .filter((k) => Object.hasOwn(declared, k))
  const name = input.name ? input.name : row.name
  const now = deps.now()
  const updated = await deps.db.tx(async (tx) => {
    const n = await tx.execute(
      sql`UPDATE tasks SET pipeline_tree = ${JSON.stringify(tree)}, constants = ${JSON.stringify(declared)}, name = ${name},
            version = version + 1
          WHERE id = ${task.id} AND state = 'CREATED' AND version = ${task.version}`,
    )
    if (n === 0) return false
    await writeOperateRecord(tx, {
      operator: caller.username,
      appCode: caller.app.code,
      source,
      projectId: project.id,
      taskId: task.id,
      type: 'update',
      at: now,
      extraInfo: { constants: changed, ...(input.name ? { name } : {}) },
    })
    return true
  })
  if (!updated) {
    const [current] = await deps.db.query<{ state: TaskState }>(
      sql`SELECT state FROM tasks WHERE id = ${task.id}`,
    )
    throw refuse(current?.state ?? 'CREATED')
  }
  return 'success' as const
}

export interface CountFilter {
  template_id?: number | undefined
  name?: string | undefined
  keyword?: string | undefined
  creator?: string | undefined
  executor?: string | undefined
  create_time__gte?: string | undefined
  create_time__lte?: string | undefined
  start_time__gte?: string | undefined
  start_time__lte?: string | undefined
  is_started?: boolean | undefined
  is_finished?: boolean | undefined
}

const MAX_INT = 2147483647

function countConditions(deps: Deps, projectId: number, f: CountFilter): Sql[] {
  const conds: Sql[] = [sql`t.project_id = ${projectId}`]
  const time = (s: string | undefined, field: string, end: boolean) => {
    if (s === undefined) return undefined
    const ms = parseTimeFilter(deps, s, end)
    if (ms === null) throw new ParamInvalidError(`invalid param: ${field}: not a valid time`)
    return BigInt(ms)
  }
  const bounds: Array<[string | undefined, string, boolean, Sql]> = [
    [f.create_time__gte, 'conditions.create_time__gte', false, sql`t.created_at >=`],
    [f.create_time__lte, 'conditions.create_time__lte', true, sql`t.created_at <=`],
    [f.start_time__gte, 'conditions.start_time__gte', false, sql`t.started_at >=`],
    [f.start_time__lte, 'conditions.start_time__lte', true, sql`t.started_at <=`],
  ]
  for (const [value, field, end, op] of bounds) {
    const at = time(value, field, end)
    if (at !== undefined) conds.push(sql`${op} ${at}`)
  }
  if (f.template_id !== undefined)
    conds.push(sql`t.template_id = ${f.template_id > MAX_INT ? -1 : f.template_id}`)
  if (f.name !== undefined) conds.push(sql`t.name = ${f.name}`)
  if (f.keyword) {
    conds.push(
      deps.db.provider === 'postgresql'
        ? sql`strpos(lower(t.name), lower(${f.keyword})) > 0`
        : sql`instr(lower(t.name), lower(${f.keyword})) > 0`,
    )
  }
  if (f.creator !== undefined) conds.push(sql`t.creator = ${f.creator}`)
  if (f.executor !== undefined) conds.push(sql`t.executor = ${f.executor}`)
  if (f.is_started !== undefined)
    conds.push(f.is_started ? sql`t.started_at IS NOT NULL` : sql`t.started_at IS NULL`)
  if (f.is_finished !== undefined)
    conds.push(f.is_finished ? sql`t.state = 'FINISHED'` : sql`t.state <> 'FINISHED'`)
  return conds
}

/** bk-sops's get_task_count: the number of the project's tasks that match, as `data`. */
export async function countTasks(
  deps: Deps,
  caller: Caller,
  ref: ProjectRef,
  f: CountFilter,
): Promise<number> {
  const project = await resolveProject(deps, caller, ref)
  authorize(caller, project, 'project_view')
  const [row] = await deps.db.query<{ n: number | string }>(
    sql`SELECT COUNT(*) AS n FROM tasks t WHERE ${join(countConditions(deps, project.id, f), ' AND ')}`,
  )
  return Number(row?.n ?? 0)
}

/** The names bk-sops gives each group's code (its own wording, as its clients show it). */
const GROUP_NAMES: Record<string, Record<string, string>> = {
  status: { CREATED: '未执行', EXECUTING: '执行中', FINISHED: '已完成' },
  category: {
    OpsTools: '运维工具',
    MonitorAlarm: '监控告警',
    ConfManage: '配置管理',
    DevTools: '开发工具',
    EnterpriseIT: '企业IT',
    OfficeApp: '办公应用',
    Other: '其它',
  },
  flow_type: { common: '默认任务流程', common_func: '职能化任务流程' },
  create_method: {
    app: '手动',
    api: 'API网关',
    app_maker: '轻应用',
    periodic: '周期任务',
    clocked: '计划任务',
    mobile: '移动端',
  },
}

/**
 * bk-sops's query_task_count: `{total, groups: [{code, name, value}]}` over the tasks that match
 * `conditions`, grouped by status (CREATED: not started; EXECUTING: started, not ended; FINISHED:
 * finished or revoked), category, flow_type (always `common`) or create_method. Every code of the
 * dimension is listed, with 0 where no task has it.
 */
export async function queryTaskCount(
  deps: Deps,
  caller: Caller,
  ref: ProjectRef,
  groupBy: 'status' | 'category' | 'flow_type' | 'create_method',
  f: CountFilter,
) {
  const project = await resolveProject(deps, caller, ref)
  authorize(caller, project, 'project_view')
  const where = join(countConditions(deps, project.id, f), ' AND ')
  const key: Record<typeof groupBy, Sql> = {
    status: sql`CASE WHEN t.started_at IS NULL THEN 'CREATED' WHEN t.state IN ('FINISHED', 'REVOKED') THEN 'FINISHED' ELSE 'EXECUTING' END`,
    category: sql`COALESCE(t.category, CASE WHEN t.template_source = 'common' THEN ct.category ELSE tp.category END, 'Other')`,
    flow_type: sql`'common'`,
    create_method: sql`t.create_method`,
  }
  const rows = await deps.db.query<{ code: string; n: number | string }>(
    sql`SELECT ${key[groupBy]} AS code, COUNT(*) AS n FROM tasks t
        LEFT JOIN templates tp ON tp.id = t.template_id AND t.template_source = 'project'
        LEFT JOIN common_templates ct ON ct.id = t.template_id AND t.template_source = 'common'
        WHERE ${where} GROUP BY 1`,
  )
  const counts = new Map(rows.map((r) => [r.code, Number(r.n)]))
  const names = GROUP_NAMES[groupBy] ?? {}
  const codes = groupBy === 'category' ? [...TEMPLATE_CATEGORIES] : Object.keys(names)
  for (const code of counts.keys()) if (!codes.includes(code as never)) codes.push(code as never)
  return {
    total: [...counts.values()].reduce((a, b) => a + b, 0),
    groups: codes.map((code) => ({ code, name: names[code] ?? code, value: counts.get(code) ?? 0 })),
  }
}

/**
 * bk-sops's get_tasks_manual_intervention_state: a task needs a person while it is paused, a node
 * of it has failed and waits, or a node waits for a callback (a RUNNING node with no job: neither
 * executing nor a timer — a pause_node's approval point). Ids outside the project are left out.
 */
export async function manualInterventionState(deps: Deps, caller: Caller, ref: ProjectRef, ids: number[]) {
  const project = await resolveProject(deps, caller, ref)
  authorize(caller, project, 'project_view')
  const wanted = [...new Set(ids.filter((id) => id <= MAX_INT))]
  if (wanted.length === 0) return []
  const rows = await deps.db.query<{ id: number; needed: number | string | boolean }>(
    sql`SELECT t.id,
          CASE WHEN t.state = 'SUSPENDED' THEN 1
               WHEN t.state = 'RUNNING' AND (${HAS_FAILED_NODE} OR EXISTS (
                 SELECT 1 FROM node_states n WHERE n.task_id = t.id AND n.state = 'RUNNING'
                   AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.task_id = n.task_id AND j.node_id = n.node_id))) THEN 1
               ELSE 0 END AS needed
        FROM tasks t WHERE t.project_id = ${project.id} AND t.id IN (${join(wanted)}) ORDER BY t.id DESC`,
  )
  return rows.map((r) => ({ id: Number(r.id), manual_intervention_required: Number(r.needed) === 1 }))
}
