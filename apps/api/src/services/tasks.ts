import {
  buildStatusTree,
  type NodeState,
  NotFoundError,
  ParamInvalidError,
  resolveConstants,
  type TaskState,
  validatePipelineTree,
} from '@stdops/core'
import { type Executor, join, type Sql, sql } from '@stdops/db'
import { appendTaskEvent, type Effect, writeOperateRecord } from '@stdops/engine'
import type { Caller } from './auth'
import type { Deps } from './deps'
import { type Action, authorize, type ProjectRef, resolveProject, resolveScope } from './projects'
import { findTemplate } from './templates'
import { formatTime, parseLocalTime } from './time'

/**
 * Where an operation came from, as operate records name it: `api` for the ESB routes, `app` for tRPC
 * and the CLI, `periodic` and `clocked` for the tasks schedules create and start.
 */
export type OperateSource = 'api' | 'app' | 'periodic' | 'clocked'

export interface CreateTaskInput {
  template_id: number
  name: string
  constants?: Record<string, unknown> | undefined
  pipeline_tree?: Record<string, unknown> | undefined
  description?: string | undefined
  callback_url?: string | undefined
}

export function taskUrl(deps: Deps, projectId: number, taskId: number): string {
  return `${deps.publicUrl}/taskflow/execute/${projectId}/?instance_id=${taskId}`
}

const notFound = (taskId: number, ref: ProjectRef) =>
  new NotFoundError(`task[id=${taskId}] does not exist in project(${ref.bk_biz_id})`)

/**
 * The project, and a task of it: one round trip. A task of another project is answered exactly
 * like a missing one. Checks run in the contract's order: project, task, then permission.
 */
async function resolveTask(deps: Deps, caller: Caller, ref: ProjectRef, taskId: number, action: Action) {
  const { project, task } = await resolveScope(deps, caller, ref, taskId)
  if (!task) throw notFound(taskId, ref)
  authorize(caller, project, action)
  return { project, task }
}

/** Applies constant overrides (keyed `${key}` or `key`) to a tree's constants; unknown keys are ignored, as bk-sops does. */
function withOverrides(tree: Record<string, unknown>, overrides: Record<string, unknown> | undefined) {
  if (!overrides) return tree
  const constants = { ...((tree.constants as Record<string, Record<string, unknown>> | undefined) ?? {}) }
  for (const [k, v] of Object.entries(overrides)) {
    const key = k.startsWith('${') ? k : `\${${k}}`
    const c = constants[key]
    if (c) constants[key] = { ...c, value: v }
  }
  return { ...tree, constants }
}

/**
 * The tree a new task runs: `base` with the constant overrides applied, validated (components
 * registered, constants resolvable). Throws ParamInvalidError naming what is wrong.
 */
export function prepareTaskTree(
  deps: Deps,
  base: Record<string, unknown>,
  overrides: Record<string, unknown> | undefined,
): Record<string, unknown> {
  const tree = withOverrides(base, overrides)
  const checked = validatePipelineTree(tree, { hasComponent: (c: string) => deps.engine.components.has(c) })
  if (!checked.ok) throw new ParamInvalidError(`invalid pipeline_tree: ${checked.message}`)
  const resolved = resolveConstants(checked.tree.constants ?? {})
  if (!resolved.ok) throw new ParamInvalidError(`invalid constants: ${resolved.message}`)
  return tree
}

export interface NewTask {
  projectId: number
  templateId: number
  name: string
  description?: string | undefined
  callbackUrl?: string | undefined
  tree: Record<string, unknown>
  /** Creator (and, when started, executor) of the task. */
  operator: string
  /** The operate records' source, and the task's create_method. */
  source: OperateSource
  start: boolean
}

/**
 * Inserts a task whose tree prepareTaskTree accepted, with its `create` record and, when asked, its
 * start (the engine's protocol: RUNNING, the start event run on), all inside `tx`. The caller runs
 * `deps.engine.afterCommit(effects)` once `tx` has committed.
 */
export async function insertTask(
  deps: Deps,
  tx: Executor,
  t: NewTask,
): Promise<{ id: number; effects: Effect[] }> {
  const now = deps.now()
  const [row] = await tx.query<{ id: number }>(sql`INSERT INTO tasks
    (project_id, template_id, name, description, creator, executor, state, version, event_seq, pipeline_tree, constants, outputs, callback_url, create_method, created_at)
    VALUES (${t.projectId}, ${t.templateId}, ${t.name}, ${t.description ?? ''}, ${t.operator}, ${''}, ${'CREATED'}, ${0}, ${0},
            ${JSON.stringify(t.tree)}, ${JSON.stringify(t.tree.constants ?? {})}, ${'{}'}, ${t.callbackUrl ?? null}, ${t.source}, ${now})
    RETURNING id`)
  const id = Number(row!.id)
  await appendTaskEvent(tx, id, { type: 'task_state', state: 'CREATED' }, now)
  const operator = { operator: t.operator, source: t.source, projectId: t.projectId }
  await writeOperateRecord(tx, { ...operator, taskId: id, type: 'create', at: now })
  tx.afterCommit(() => deps.metrics.taskCreated())
  if (!t.start) return { id, effects: [] }
  const started = await deps.engine.operateTaskInTx(tx, {
    ...operator,
    taskId: id,
    action: 'start',
    seen: { state: 'CREATED', version: 0 },
  })
  return { id, effects: started.effects }
}

export async function createTask(
  deps: Deps,
  caller: Caller,
  ref: ProjectRef,
  input: CreateTaskInput,
  opts: { start?: boolean; source: OperateSource },
) {
  const project = await resolveProject(deps, caller, ref)
  const template = await findTemplate(deps, project.id, input.template_id, ref)
  authorize(
    caller,
    project,
    ...(opts.start ? (['create_task', 'task_operate'] as const) : (['create_task'] as const)),
  )
  const base = input.pipeline_tree ?? (JSON.parse(template.pipelineTree) as Record<string, unknown>)
  const tree = prepareTaskTree(deps, base, input.constants)
  const created = await deps.db.tx((tx) =>
    insertTask(deps, tx, {
      projectId: project.id,
      templateId: template.id,
      name: input.name,
      description: input.description,
      callbackUrl: input.callback_url,
      tree,
      operator: caller.username,
      source: opts.source,
      start: opts.start ?? false,
    }),
  )
  deps.engine.afterCommit(created.effects)
  return { task_id: created.id, task_url: taskUrl(deps, project.id, created.id), pipeline_tree: tree }
}

export async function operateTask(
  deps: Deps,
  caller: Caller,
  ref: ProjectRef,
  taskId: number,
  action: string | undefined,
  source: OperateSource,
): Promise<{ state: TaskState; projectId: number }> {
  const { project, task } = await resolveTask(deps, caller, ref, taskId, 'task_operate')
  const { state } = await deps.engine.operateTask({
    taskId,
    action: action ?? '',
    operator: caller.username,
    source,
    projectId: project.id,
    seen: task,
  })
  return { state, projectId: project.id }
}

export async function startTask(
  deps: Deps,
  caller: Caller,
  ref: ProjectRef,
  taskId: number,
  source: OperateSource,
) {
  const { projectId } = await operateTask(deps, caller, ref, taskId, 'start', source)
  return { task_url: taskUrl(deps, projectId, taskId) }
}

interface NodeRow {
  node_id: string
  state: NodeState
  retry: number
  skip: unknown
  loop: number
  version: number
  error_ignored: unknown
  error: string | null
  started_at: number | null
  finished_at: number | null
}

function nodeNames(tree: Record<string, unknown>): {
  names: Record<string, string>
  ignorable: Record<string, boolean>
} {
  const names: Record<string, string> = {}
  const ignorable: Record<string, boolean> = {}
  for (const [id, a] of Object.entries(
    (tree.activities as Record<string, Record<string, unknown>> | undefined) ?? {},
  )) {
    names[id] = typeof a.name === 'string' ? a.name : ''
    ignorable[id] = a.error_ignorable === true
  }
  return { names, ignorable }
}

/** The status tree of engine.md §6, with times in the legacy format. */
export async function taskStatus(deps: Deps, caller: Caller, ref: ProjectRef, taskId: number) {
  const { task } = await resolveTask(deps, caller, ref, taskId, 'task_view')
  return statusOf(deps, task.id)
}

export async function statusOf(deps: Deps, taskId: number) {
  const [t] = await deps.db.query<{
    id: number
    name: string
    state: TaskState
    pipeline_tree: string
    started_at: number | null
    finished_at: number | null
  }>(sql`SELECT id, name, state, pipeline_tree, started_at, finished_at FROM tasks WHERE id = ${taskId}`)
  if (!t) throw new Error(`task ${taskId} vanished`)
  const nodes = await deps.db.query<NodeRow>(
    sql`SELECT node_id, state, retry, skip, loop, version, error_ignored, error, started_at, finished_at FROM node_states WHERE task_id = ${taskId}`,
  )
  const { names, ignorable } = nodeNames(JSON.parse(t.pipeline_tree) as Record<string, unknown>)
  const toDate = (ms: number | null) => (ms === null ? null : new Date(Number(ms)))
  const tree = buildStatusTree({
    task: {
      id: t.id,
      name: t.name,
      state: t.state,
      startedAt: toDate(t.started_at),
      finishedAt: toDate(t.finished_at),
    },
    nodes: nodes.map((n) => ({
      nodeId: n.node_id,
      state: n.state,
      retry: Number(n.retry),
      skip: Boolean(n.skip),
      loop: Number(n.loop),
      version: Number(n.version),
      errorIgnorable: ignorable[n.node_id] ?? false,
      errorIgnored: Boolean(n.error_ignored),
      startedAt: toDate(n.started_at),
      finishedAt: toDate(n.finished_at),
    })),
    names,
    now: new Date(deps.now()),
  })
  const errors = new Map(nodes.filter((n) => n.error).map((n) => [n.node_id, n.error]))
  return formatStatusTimes(deps, tree, errors) as Record<string, unknown>
}

function formatStatusTimes(deps: Deps, node: unknown, errors: Map<string, string | null>): unknown {
  const n = node as Record<string, unknown>
  const out: Record<string, unknown> = { ...n }
  for (const k of ['start_time', 'finish_time']) {
    const v = n[k]
    out[k] = v instanceof Date ? formatTime(deps, v.getTime()) : (v ?? null)
  }
  if (typeof n.id === 'string' && errors.has(n.id)) out.ex_data = errors.get(n.id)
  if (n.children && typeof n.children === 'object') {
    out.children = Object.fromEntries(
      Object.entries(n.children as Record<string, unknown>).map(([k, c]) => [
        k,
        formatStatusTimes(deps, c, errors),
      ]),
    )
  }
  return out
}

export async function tasksStatus(deps: Deps, caller: Caller, ref: ProjectRef, ids: number[]) {
  const project = await resolveProject(deps, caller, ref)
  authorize(caller, project, 'project_view')
  const wanted = [...new Set(ids.filter((i) => i <= 2147483647))]
  if (wanted.length === 0) return []
  const rows = await deps.db.prisma.task.findMany({
    where: { projectId: project.id, id: { in: wanted } },
    orderBy: { id: 'asc' },
  })
  return rows.map((t) => ({
    id: t.id,
    name: t.name,
    status: { id: t.id, state: t.state },
    create_time: formatTime(deps, t.createdAt),
    start_time: formatTime(deps, t.startedAt),
    finish_time: formatTime(deps, t.finishedAt),
    url: taskUrl(deps, project.id, t.id),
  }))
}

export async function taskDetail(deps: Deps, caller: Caller, ref: ProjectRef, taskId: number) {
  const { project } = await resolveTask(deps, caller, ref, taskId, 'task_view')
  const t = await deps.db.prisma.task.findUniqueOrThrow({ where: { id: taskId } })
  const end = t.finishedAt ?? (t.startedAt !== null ? BigInt(deps.now()) : null)
  return {
    id: t.id,
    project_id: t.projectId,
    bk_biz_id: project.bkBizId,
    name: t.name,
    description: t.description,
    creator: t.creator,
    create_time: formatTime(deps, t.createdAt),
    start_time: formatTime(deps, t.startedAt),
    finish_time: formatTime(deps, t.finishedAt),
    executor: t.executor,
    elapsed_time: t.startedAt !== null && end !== null ? Math.floor(Number(end - t.startedAt) / 1000) : 0,
    template_id: t.templateId,
    state: t.state,
    pipeline_tree: JSON.parse(t.pipelineTree) as unknown,
    constants: JSON.parse(t.constants) as unknown,
    outputs: JSON.parse(t.outputs) as unknown,
    callback_url: t.callbackUrl,
    callback_status: t.callbackStatus,
    task_url: taskUrl(deps, project.id, t.id),
  }
}

export interface TaskListFilter {
  keyword?: string | undefined
  is_started?: boolean | undefined
  is_finished?: boolean | undefined
  executor?: string | undefined
  template_id?: number | undefined
  create_time_start?: string | undefined
  create_time_end?: string | undefined
  offset: number
  limit: number
}

export async function listTasks(deps: Deps, caller: Caller, ref: ProjectRef, f: TaskListFilter) {
  const project = await resolveProject(deps, caller, ref)
  authorize(caller, project, 'project_view')
  const time = (s: string | undefined, field: string) => {
    if (s === undefined) return undefined
    const ms = parseLocalTime(deps, s)
    if (ms === null) throw new ParamInvalidError(`invalid param: ${field}: expected YYYY-MM-DD HH:MM:SS`)
    return BigInt(ms)
  }
  const start = time(f.create_time_start, 'create_time_start')
  const end = time(f.create_time_end, 'create_time_end')
  // bk-sops filters the name with icontains: a literal, case-insensitive substring on both databases.
  const contains =
    deps.db.provider === 'postgresql'
      ? (k: string) => sql`strpos(lower(name), lower(${k})) > 0`
      : (k: string) => sql`instr(lower(name), lower(${k})) > 0`
  const conds: Sql[] = [sql`project_id = ${project.id}`]
  if (f.keyword) conds.push(contains(f.keyword))
  if (f.is_started !== undefined)
    conds.push(f.is_started ? sql`started_at IS NOT NULL` : sql`started_at IS NULL`)
  if (f.is_finished !== undefined)
    conds.push(f.is_finished ? sql`state = 'FINISHED'` : sql`state <> 'FINISHED'`)
  if (f.executor) conds.push(sql`executor = ${f.executor}`)
  if (f.template_id !== undefined)
    conds.push(sql`template_id = ${f.template_id > 2147483647 ? -1 : f.template_id}`)
  if (start !== undefined) conds.push(sql`created_at >= ${start}`)
  if (end !== undefined) conds.push(sql`created_at <= ${end}`)
  const where = join(conds, ' AND ')
  const [rows, [total]] = await Promise.all([
    deps.db.query<{
      id: number
      name: string
      creator: string
      executor: string
      state: TaskState
      template_id: number | null
      created_at: number
      started_at: number | null
      finished_at: number | null
    }>(
      sql`SELECT id, name, creator, executor, state, template_id, created_at, started_at, finished_at FROM tasks
          WHERE ${where} ORDER BY id DESC LIMIT ${f.limit} OFFSET ${f.offset}`,
    ),
    deps.db.query<{ n: number }>(sql`SELECT COUNT(*) AS n FROM tasks WHERE ${where}`),
  ])
  const count = Number(total?.n ?? 0)
  const list = rows.map((t) => ({
    id: t.id,
    name: t.name,
    creator: t.creator,
    executor: t.executor,
    create_time: formatTime(deps, t.created_at),
    start_time: formatTime(deps, t.started_at),
    finish_time: formatTime(deps, t.finished_at),
    is_started: t.started_at !== null,
    is_finished: t.state === 'FINISHED',
    state: t.state,
    template_id: t.template_id,
    project_id: project.id,
    bk_biz_id: project.bkBizId,
  }))
  return { list, count }
}

export async function operateRecords(
  deps: Deps,
  caller: Caller,
  ref: ProjectRef,
  taskId: number,
  nodeId: string | undefined,
) {
  await resolveTask(deps, caller, ref, taskId, 'task_view')
  const rows = await deps.db.prisma.operateRecord.findMany({
    where: { taskId, ...(nodeId !== undefined ? { nodeId } : {}) },
    orderBy: { id: 'asc' },
  })
  return rows.map((r) => ({
    id: r.id,
    operator: r.operator,
    operate_type: r.operateType,
    operate_source: r.operateSource,
    operate_date: formatTime(deps, r.createdAt),
    node_id: r.nodeId,
    instance_id: r.taskId,
    project_id: r.projectId,
  }))
}
