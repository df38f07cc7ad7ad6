import {
  buildStatusTree,
  exclusionForExecuteList,
  exclusionForSchemes,
  expandSubprocesses,
  isSecretConstant,
  MASK,
  type NodeState,
  NotFoundError,
  ParamInvalidError,
  resolveConstants,
  type TaskState,
  type TemplateSource,
  validatePipelineTree,
} from '@stdops/core'
import { type Executor, join, type Sql, sql } from '@stdops/db'
import {
  appendTaskEvent,
  type Effect,
  OutboundError,
  sealTreeSecrets,
  writeOperateRecord,
} from '@stdops/engine'
import type { Caller } from './auth'
import type { Deps } from './deps'
import { type Action, authorize, type ProjectRef, resolveProject, resolveScope } from './projects'
import { findTemplateOf, previewTree, schemesOf, type TemplateRecord } from './templates'
import { formatTime, parseTimeFilter, zoneDeps } from './time'

/**
 * Where an operation came from, as operate records name it: `api` for the ESB routes, `app` for tRPC
 * and the CLI, `periodic` and `clocked` for the tasks schedules create and start.
 */
export type OperateSource = 'api' | 'app' | 'periodic' | 'clocked'

export interface CreateTaskInput {
  template_id: number
  template_source?: TemplateSource | undefined
  name: string
  constants?: Record<string, unknown> | undefined
  pipeline_tree?: Record<string, unknown> | undefined
  description?: string | undefined
  callback_url?: string | undefined
  callback_version?: 'v1' | 'v2' | undefined
  exclude_task_nodes_id?: string[] | undefined
  execute_task_nodes_id?: string[] | undefined
  template_schemes_id?: Array<number | string> | undefined
  simplify_vars?: string[] | undefined
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
export async function resolveTask(
  deps: Deps,
  caller: Caller,
  ref: ProjectRef,
  taskId: number,
  action: Action,
) {
  const { project, task } = await resolveScope(deps, caller, ref, taskId)
  if (!task) throw notFound(taskId, ref)
  authorize(caller, project, action)
  return { project, task }
}

/**
 * Applies constant overrides (keyed `${key}` or `key`) to a tree's constants; unknown keys are
 * ignored, as bk-sops does. A secret constant given the mask (`******`, what every reply shows in
 * its place) keeps its value: a client that sends back what it read changes nothing.
 */
function withOverrides(tree: Record<string, unknown>, overrides: Record<string, unknown> | undefined) {
  if (!overrides) return tree
  const constants = { ...((tree.constants as Record<string, Record<string, unknown>> | undefined) ?? {}) }
  for (const [k, v] of Object.entries(overrides)) {
    const key = k.startsWith('${') ? k : `\${${k}}`
    const c = constants[key]
    if (c && !(v === MASK && isSecretConstant(c))) constants[key] = { ...c, value: v }
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
  // secret constants given in the clear (in the tree or as overrides) are stored sealed
  return sealTreeSecrets(deps.secrets, tree)
}

/**
 * `overrides` with the values of secret constants replaced by the sealed values `prepared` holds
 * (for overrides stored as given, such as a clocked task's parameters).
 */
export function sealedOverrides(
  prepared: Record<string, unknown>,
  overrides: Record<string, unknown> | undefined,
): Record<string, unknown> | undefined {
  if (!overrides) return overrides
  const constants = (prepared.constants as Record<string, Record<string, unknown>> | undefined) ?? {}
  return Object.fromEntries(
    Object.entries(overrides).map(([k, v]) => {
      const c = constants[k.startsWith('${') ? k : `\${${k}}`]
      return [k, c && isSecretConstant(c) ? c.value : v]
    }),
  )
}

/**
 * The tree with each SubProcess's child tree copied in from the templates it names (recursively):
 * templates of the task's project, or common templates for a task of a common template. Refused
 * (3540000) on a cycle of templates (named), nesting deeper than 8, a missing template or an
 * invalid child tree. `root` is the task's own template, so that including itself is a cycle.
 */
export async function withSubprocesses(
  deps: Deps,
  exec: Executor,
  projectId: number,
  tree: Record<string, unknown>,
  root: { id: number; name: string; source: TemplateSource } | null,
): Promise<Record<string, unknown>> {
  const common = root?.source === 'common'
  // sealed once more with the child trees in view: a value the parent gives a child's secret constant
  const expanded = await expandSubprocesses(
    tree,
    async (templateId) => {
      if (templateId > 2147483647) return null
      const [t] = await exec.query<{ id: number; name: string; pipeline_tree: string; version: number }>(
        common
          ? sql`SELECT id, name, pipeline_tree, version FROM common_templates WHERE id = ${templateId}`
          : sql`SELECT id, name, pipeline_tree, version FROM templates WHERE id = ${templateId} AND project_id = ${projectId}`,
      )
      if (!t) return null
      return {
        id: Number(t.id),
        name: t.name,
        tree: JSON.parse(t.pipeline_tree) as Record<string, unknown>,
        version: String(t.version),
      }
    },
    {
      root: root && { id: root.id, name: root.name },
      hasComponent: (c: string) => deps.engine.components.has(c),
    },
  )
  return sealTreeSecrets(deps.secrets, expanded)
}

export interface NewTask {
  projectId: number
  /** null: a task of no template (fast_create_task) */
  templateId: number | null
  /** the task's own category; absent: its template's */
  category?: string | undefined
  templateSource?: TemplateSource | undefined
  callbackVersion?: 'v1' | 'v2' | undefined
  name: string
  description?: string | undefined
  callbackUrl?: string | undefined
  tree: Record<string, unknown>
  /** Creator (and, when started, executor) of the task. */
  operator: string
  /** The app that asked ('' for the server's own schedules). */
  appCode: string
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
    (project_id, template_id, template_source, category, name, description, creator, executor, state, version, event_seq, pipeline_tree, constants, outputs,
     callback_url, callback_version, create_method, created_at)
    VALUES (${t.projectId}, ${t.templateId}, ${t.templateSource ?? 'project'}, ${t.category ?? null}, ${t.name}, ${t.description ?? ''}, ${t.operator}, ${''}, ${'CREATED'}, ${0}, ${0},
            ${JSON.stringify(t.tree)}, ${JSON.stringify(t.tree.constants ?? {})}, ${'{}'}, ${t.callbackUrl ?? null}, ${t.callbackVersion ?? 'v1'}, ${t.source}, ${now})
    RETURNING id`)
  const id = Number(row!.id)
  await appendTaskEvent(tx, id, { type: 'task_state', state: 'CREATED' }, now)
  const operator = { operator: t.operator, appCode: t.appCode, source: t.source, projectId: t.projectId }
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

/**
 * The activities a new task leaves out: those its schemes do not run, else those not in
 * `execute_task_nodes_id` (it wins over `exclude_task_nodes_id`, as in bk-sops), else
 * `exclude_task_nodes_id`.
 */
export async function exclusionFor(
  deps: Deps,
  template: Pick<TemplateRecord, 'source' | 'id'>,
  tree: Record<string, unknown>,
  input: Pick<CreateTaskInput, 'exclude_task_nodes_id' | 'execute_task_nodes_id' | 'template_schemes_id'>,
): Promise<string[]> {
  if (input.template_schemes_id?.length)
    return exclusionForSchemes(tree, await schemesOf(deps, template, input.template_schemes_id))
  if (input.execute_task_nodes_id?.length) return exclusionForExecuteList(tree, input.execute_task_nodes_id)
  return input.exclude_task_nodes_id ?? []
}

/**
 * bk-sops's `simplify_vars`: the named constants lose their template type and become plain text
 * variables (custom, textarea), so a caller can pass every value as text.
 */
function simplifyVars(tree: Record<string, unknown>, keys: string[] | undefined): Record<string, unknown> {
  if (!keys?.length) return tree
  const constants = { ...((tree.constants as Record<string, Record<string, unknown>> | undefined) ?? {}) }
  for (const k of keys) {
    const key = k.startsWith('${') ? k : `\${${k}}`
    const c = constants[key]
    // a secret stays a secret: its value is sealed, and a plain type would let an override be stored in the clear
    if (!c || c.source_type === 'component_outputs' || isSecretConstant(c)) continue
    constants[key] = {
      ...c,
      source_type: 'custom',
      custom_type: 'textarea',
      source_tag: 'textarea.textarea',
      is_meta: false,
    }
  }
  return { ...tree, constants }
}

/**
 * A callback_url the server may not call (a non-public address, see the outbound client) is refused
 * when the task is created, not only when the task ends; it is checked again at every call, since
 * what a name resolves to can change.
 */
export async function checkCallbackUrl(deps: Deps, url: string): Promise<void> {
  try {
    await deps.outbound.check(url)
  } catch (err) {
    if (err instanceof OutboundError) throw new ParamInvalidError(`callback_url: ${err.message}`)
    throw err
  }
}

export async function createTask(
  deps: Deps,
  caller: Caller,
  ref: ProjectRef,
  input: CreateTaskInput,
  opts: { start?: boolean; source: OperateSource },
) {
  const project = await resolveProject(deps, caller, ref)
  const template = await findTemplateOf(
    deps,
    project.id,
    input.template_source ?? 'project',
    input.template_id,
    ref,
  )
  authorize(
    caller,
    project,
    ...(opts.start ? (['create_task', 'task_operate'] as const) : (['create_task'] as const)),
  )
  const base = input.pipeline_tree ?? (JSON.parse(template.pipelineTree) as Record<string, unknown>)
  const exclude = await exclusionFor(deps, template, base, input)
  const { pipeline_tree: kept } = previewTree(base, exclude)
  const tree = await withSubprocesses(
    deps,
    deps.db,
    project.id,
    prepareTaskTree(deps, simplifyVars(kept, input.simplify_vars), input.constants),
    template,
  )
  if (input.callback_url !== undefined) await checkCallbackUrl(deps, input.callback_url)
  const created = await deps.db.tx((tx) =>
    insertTask(deps, tx, {
      projectId: project.id,
      templateId: template.id,
      templateSource: template.source,
      name: input.name,
      description: input.description,
      callbackUrl: input.callback_url,
      callbackVersion: input.callback_version,
      tree,
      operator: caller.username,
      appCode: caller.app.code,
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
    appCode: caller.app.code,
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
  task_id: number
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

function nodeNames(
  tree: Record<string, unknown>,
  into: {
    names: Record<string, string>
    ignorable: Record<string, boolean>
    parentOf: Map<string, string>
  } = { names: {}, ignorable: {}, parentOf: new Map() },
  parent?: string,
) {
  const { names, ignorable, parentOf } = into
  const child = (id: unknown) => {
    if (parent !== undefined && typeof id === 'string') parentOf.set(id, parent)
  }
  child((tree.start_event as { id?: unknown } | undefined)?.id)
  child((tree.end_event as { id?: unknown } | undefined)?.id)
  for (const id of Object.keys((tree.gateways as Record<string, unknown> | undefined) ?? {})) child(id)
  for (const [id, a] of Object.entries(
    (tree.activities as Record<string, Record<string, unknown>> | undefined) ?? {},
  )) {
    names[id] = typeof a.name === 'string' ? a.name : ''
    ignorable[id] = a.error_ignorable === true
    child(id)
    // A subprocess's child tree: its nodes nest under it in the status tree.
    if (a.type === 'SubProcess' && a.pipeline && typeof a.pipeline === 'object')
      nodeNames(a.pipeline as Record<string, unknown>, into, id)
  }
  return into
}

/** The status of node `id` somewhere in a status tree (a subprocess's, for subprocess_id). */
function findStatus(node: Record<string, unknown>, id: string): Record<string, unknown> | undefined {
  const children = (node.children ?? {}) as Record<string, Record<string, unknown>>
  if (Object.hasOwn(children, id)) return children[id]
  for (const c of Object.values(children)) {
    const found = findStatus(c, id)
    if (found) return found
  }
  return undefined
}

export interface StatusOptions {
  with_ex_data?: boolean | undefined
  subprocess_id?: string | undefined
}

/** The status tree of a task, with times in the legacy format. */
export async function taskStatus(
  deps: Deps,
  caller: Caller,
  ref: ProjectRef,
  taskId: number,
  opts: StatusOptions = {},
) {
  const { task } = await resolveTask(deps, caller, ref, taskId, 'task_view')
  const [status] = await statusTrees(deps, [task.id], { unset: null })
  if (!status) throw new Error(`task ${taskId} vanished`)
  const { errors } = status
  let tree = status.tree
  if (opts.subprocess_id !== undefined) {
    // bk-sops's narrowing: the status of that SubProcess node, its child tree's nodes nested in it.
    const sub = findStatus(tree, opts.subprocess_id)
    if (!sub || ![...status.parentOf.values()].includes(opts.subprocess_id))
      throw new NotFoundError(`subprocess[id=${opts.subprocess_id}] does not exist in task(${taskId})`)
    tree = sub
  }
  return opts.with_ex_data ? { ...tree, ex_data: Object.fromEntries(errors) } : tree
}

/** Kept for callers that want one task's tree. */
export async function statusOf(deps: Deps, taskId: number) {
  const [status] = await statusTrees(deps, [taskId], { unset: null })
  if (!status) throw new Error(`task ${taskId} vanished`)
  return status.tree
}

interface TaskStatusRow {
  id: number
  name: string
  state: TaskState
  pipeline_tree: string
  started_at: number | null
  finished_at: number | null
}

/**
 * The status trees of some tasks (two queries whatever their number), in the order of `ids`;
 * missing ids are left out. `unset` is what an unset time becomes (`null`, or bk-sops's `""`).
 */
async function statusTrees(
  deps: Deps,
  ids: readonly number[],
  opts: { unset: null | '' },
): Promise<
  Array<{
    id: number
    tree: Record<string, unknown>
    errors: Map<string, string>
    parentOf: Map<string, string>
  }>
> {
  const wanted = ids.filter((id) => id <= 2147483647)
  if (wanted.length === 0) return []
  const [tasks, nodes] = await Promise.all([
    deps.db.query<TaskStatusRow>(
      sql`SELECT id, name, state, pipeline_tree, started_at, finished_at FROM tasks WHERE id IN (${join(wanted)})`,
    ),
    deps.db.query<NodeRow>(
      sql`SELECT task_id, node_id, state, retry, skip, loop, version, error_ignored, error, started_at, finished_at
          FROM node_states WHERE task_id IN (${join(wanted)})`,
    ),
  ])
  const byTask = new Map<number, NodeRow[]>()
  for (const n of nodes) {
    const list = byTask.get(Number(n.task_id)) ?? []
    list.push(n)
    byTask.set(Number(n.task_id), list)
  }
  const toDate = (ms: number | null) => (ms === null ? null : new Date(Number(ms)))
  const rows = new Map(tasks.map((t) => [Number(t.id), t]))
  return wanted.flatMap((id) => {
    const t = rows.get(id)
    if (!t) return []
    const taskNodes = byTask.get(id) ?? []
    const { names, ignorable, parentOf } = nodeNames(JSON.parse(t.pipeline_tree) as Record<string, unknown>)
    const tree = buildStatusTree({
      task: {
        id: Number(t.id),
        name: t.name,
        state: t.state,
        startedAt: toDate(t.started_at),
        finishedAt: toDate(t.finished_at),
      },
      nodes: taskNodes.map((n) => ({
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
      parentOf,
      now: new Date(deps.now()),
    })
    const errors = new Map(
      taskNodes.filter((n) => n.error !== null && n.error !== '').map((n) => [n.node_id, n.error as string]),
    )
    return [
      {
        id,
        tree: formatStatusTimes(deps, tree, errors, opts.unset) as Record<string, unknown>,
        errors,
        parentOf,
      },
    ]
  })
}

function formatStatusTimes(
  deps: Deps,
  node: unknown,
  errors: Map<string, string>,
  unset: null | '',
): unknown {
  const n = node as Record<string, unknown>
  const out: Record<string, unknown> = { ...n }
  for (const k of ['start_time', 'finish_time']) {
    const v = n[k]
    out[k] = v instanceof Date ? formatTime(deps, v.getTime()) : unset
  }
  if (typeof n.id === 'string' && errors.has(n.id)) out.ex_data = errors.get(n.id)
  if (n.children && typeof n.children === 'object') {
    out.children = Object.fromEntries(
      Object.entries(n.children as Record<string, unknown>).map(([k, c]) => [
        k,
        formatStatusTimes(deps, c, errors, unset),
      ]),
    )
  }
  return out
}

/** bk-sops's `current_flow` of a task of a template (flow_type `common`). */
const currentFlow = (state: string) =>
  state === 'FINISHED' || state === 'REVOKED' ? 'finished' : 'execute_task'

/**
 * get_tasks_status: per task of the project, its root status (the displayed state: FAILED while
 * a node has failed), times ("" when unset), and with `include_children_status` its nodes'.
 */
export async function tasksStatus(
  deps: Deps,
  caller: Caller,
  ref: ProjectRef,
  ids: number[],
  opts: { include_children_status?: boolean | undefined } = {},
) {
  const project = await resolveProject(deps, caller, ref)
  authorize(caller, project, 'project_view')
  const wanted = [...new Set(ids.filter((i) => i <= 2147483647))]
  if (wanted.length === 0) return []
  const rows = await deps.db.prisma.task.findMany({
    where: { projectId: project.id, id: { in: wanted } },
    orderBy: { id: 'asc' },
  })
  const trees = new Map(
    (
      await statusTrees(
        deps,
        rows.map((t) => t.id),
        { unset: '' },
      )
    ).map((s) => [s.id, s.tree]),
  )
  const time = (ms: bigint | null) => formatTime(deps, ms) ?? ''
  return rows.map((t) => {
    const { children, running_nodes: _running, ...root } = trees.get(t.id) ?? {}
    return {
      id: t.id,
      name: t.name,
      status: { ...root, id: t.id },
      flow_type: 'common',
      current_flow: currentFlow(t.state),
      is_deleted: false,
      create_time: time(t.createdAt),
      start_time: time(t.startedAt),
      finish_time: time(t.finishedAt),
      url: taskUrl(deps, project.id, t.id),
      ...(opts.include_children_status ? { children: children ?? {} } : {}),
    }
  })
}

/** A task's outputs as bk-sops lists them: `{key, name, value}` per output constant of its tree. */
function outputList(tree: Record<string, unknown>, constants: unknown, outputs: unknown) {
  const declared = Array.isArray(tree.outputs)
    ? (tree.outputs as unknown[]).filter((k) => typeof k === 'string')
    : []
  const cs = (constants ?? {}) as Record<string, { name?: unknown; value?: unknown }>
  const finished = (outputs ?? {}) as Record<string, unknown>
  return (declared as string[]).map((key) => ({
    key,
    name: typeof cs[key]?.name === 'string' ? (cs[key]!.name as string) : key,
    value: Object.hasOwn(finished, key) ? finished[key] : (cs[key]?.value ?? null),
  }))
}

export async function taskDetail(deps: Deps, caller: Caller, ref: ProjectRef, taskId: number) {
  const { project } = await resolveTask(deps, caller, ref, taskId, 'task_view')
  const t = await deps.db.prisma.task.findUniqueOrThrow({ where: { id: taskId } })
  const failed = await deps.db.prisma.nodeState.findMany({
    where: { taskId, state: 'FAILED' },
    orderBy: { nodeId: 'asc' },
    select: { nodeId: true, error: true },
  })
  const end = t.finishedAt ?? (t.startedAt !== null ? BigInt(deps.now()) : null)
  const tree = JSON.parse(t.pipelineTree) as Record<string, unknown>
  const constants = JSON.parse(t.constants) as unknown
  const time = (ms: bigint | null) => formatTime(deps, ms) ?? ''
  return {
    id: t.id,
    project_id: t.projectId,
    project_name: project.name,
    bk_biz_id: project.bkBizId,
    name: t.name,
    description: t.description,
    creator: t.creator,
    create_method: t.createMethod,
    create_time: time(t.createdAt),
    start_time: time(t.startedAt),
    finish_time: time(t.finishedAt),
    executor: t.executor,
    elapsed_time: t.startedAt !== null && end !== null ? Math.floor(Number(end - t.startedAt) / 1000) : 0,
    template_id: t.templateId === null ? '' : String(t.templateId),
    template_source: t.templateSource,
    state: t.state,
    pipeline_tree: tree,
    constants,
    outputs: outputList(tree, constants, JSON.parse(t.outputs) as unknown),
    ex_data: failed
      .map((n) => n.error ?? '')
      .filter((e) => e !== '')
      .join('\n'),
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
  create_method?: string | undefined
  template_id?: number | undefined
  template_ids?: number[] | undefined
  is_child_taskflow?: boolean | undefined
  create_time_start?: string | undefined
  create_time_end?: string | undefined
  offset: number
  limit: number
  without_count?: boolean | undefined
  expected_timezone?: string | undefined
}

const MAX_INT = 2147483647

export async function listTasks(deps: Deps, caller: Caller, ref: ProjectRef, f: TaskListFilter) {
  const shown = zoneDeps(deps, f.expected_timezone)
  const project = await resolveProject(deps, caller, ref)
  authorize(caller, project, 'project_view')
  const time = (s: string | undefined, field: string, end: boolean) => {
    if (s === undefined) return undefined
    const ms = parseTimeFilter(deps, s, end)
    if (ms === null) throw new ParamInvalidError(`invalid param: ${field}: not a valid time`)
    return BigInt(ms)
  }
  const start = time(f.create_time_start, 'create_time_start', false)
  const end = time(f.create_time_end, 'create_time_end', true)
  // bk-sops filters the name with icontains: a literal, case-insensitive substring on both databases.
  const contains =
    deps.db.provider === 'postgresql'
      ? (k: string) => sql`strpos(lower(t.name), lower(${k})) > 0`
      : (k: string) => sql`instr(lower(t.name), lower(${k})) > 0`
  const conds: Sql[] = [sql`t.project_id = ${project.id}`]
  if (f.keyword) conds.push(contains(f.keyword))
  if (f.is_started !== undefined)
    conds.push(f.is_started ? sql`t.started_at IS NOT NULL` : sql`t.started_at IS NULL`)
  if (f.is_finished !== undefined)
    conds.push(f.is_finished ? sql`t.state = 'FINISHED'` : sql`t.state <> 'FINISHED'`)
  if (f.executor) conds.push(sql`t.executor = ${f.executor}`)
  if (f.create_method) conds.push(sql`t.create_method = ${f.create_method}`)
  if (f.template_id !== undefined)
    conds.push(sql`t.template_id = ${f.template_id > MAX_INT ? -1 : f.template_id}`)
  if (f.template_ids !== undefined) {
    const ids = f.template_ids.filter((id) => id <= MAX_INT)
    conds.push(ids.length === 0 ? sql`1 = 0` : sql`t.template_id IN (${join(ids)})`)
  }
  // stdops has no child tasks (bk-sops's independent subprocesses): asking for them finds none.
  if (f.is_child_taskflow === true) conds.push(sql`1 = 0`)
  if (start !== undefined) conds.push(sql`t.created_at >= ${start}`)
  if (end !== undefined) conds.push(sql`t.created_at <= ${end}`)
  const where = join(conds, ' AND ')
  const [rows, total] = await Promise.all([
    f.limit === 0
      ? []
      : deps.db.query<{
          id: number
          name: string
          creator: string
          executor: string
          state: TaskState
          template_id: number | null
          template_source: string
          create_method: string
          category: string | null
          created_at: number
          started_at: number | null
          finished_at: number | null
        }>(
          sql`SELECT t.id, t.name, t.creator, t.executor, t.state, t.template_id, t.template_source, t.create_method,
                COALESCE(t.category, CASE WHEN t.template_source = 'common' THEN ct.category ELSE tp.category END) AS category,
                t.created_at, t.started_at, t.finished_at
              FROM tasks t
              LEFT JOIN templates tp ON tp.id = t.template_id AND t.template_source = 'project'
              LEFT JOIN common_templates ct ON ct.id = t.template_id AND t.template_source = 'common'
              WHERE ${where} ORDER BY t.id DESC LIMIT ${f.limit} OFFSET ${f.offset}`,
        ),
    f.without_count
      ? undefined
      : deps.db
          .query<{ n: number }>(sql`SELECT COUNT(*) AS n FROM tasks t WHERE ${where}`)
          .then(([r]) => Number(r?.n ?? 0)),
  ])
  const list = rows.map((t) => ({
    id: Number(t.id),
    name: t.name,
    category: t.category ?? 'Other',
    create_method: t.create_method,
    creator: t.creator,
    executor: t.executor,
    create_time: formatTime(shown, t.created_at),
    start_time: formatTime(shown, t.started_at),
    finish_time: formatTime(shown, t.finished_at),
    is_started: t.started_at !== null,
    is_finished: t.state === 'FINISHED',
    is_child_taskflow: false,
    state: t.state,
    template_source: t.template_source,
    template_id: t.template_id === null ? '' : String(t.template_id),
    project_id: project.id,
    project_name: project.name,
    bk_biz_id: project.bkBizId,
    bk_biz_name: project.name,
  }))
  return { list, count: total }
}

/** bk-sops's names of operation types and sources (its own wording, in Chinese, as its clients show them). */
const OPERATE_TYPE_NAMES: Record<string, string> = {
  none: '无',
  create: '创建',
  task_clone: '克隆',
  start: '执行',
  pause: '暂停',
  resume: '继续',
  revoke: '撤销',
  delete: '删除',
  update: '更新',
  callback: '回调',
  retry: '重试',
  skip: '跳过',
  skip_exg: '跳过失败网关',
  skip_cpg: '跳过并行条件网关',
  pause_subproc: '暂停节点',
  resume_subproc: '继续节点',
  nodes_action: '节点操作',
  forced_fail: '强制失败',
  spec_nodes_timer_reset: '修改定时时间',
}
const OPERATE_SOURCE_NAMES: Record<string, string> = {
  app: 'app 页面',
  api: 'api 接口',
  parent: '父任务',
  periodic: '周期任务',
  clocked: '计划任务',
}

function parseExtra(v: string | null): Record<string, unknown> {
  if (!v) return {}
  try {
    const parsed = JSON.parse(v) as unknown
    return parsed && typeof parsed === 'object' && !Array.isArray(parsed)
      ? (parsed as Record<string, unknown>)
      : {}
  } catch {
    return {}
  }
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
    operate_type_name: OPERATE_TYPE_NAMES[r.operateType] ?? r.operateType,
    operate_source: r.operateSource,
    operate_source_name: OPERATE_SOURCE_NAMES[r.operateSource] ?? r.operateSource,
    operate_date: formatTime(deps, r.createdAt),
    node_id: r.nodeId,
    instance_id: r.taskId,
    project_id: r.projectId,
    // which app acted beside what the operation took: a trusted or user-skip app acts for the user `operator` names
    extra_info: { ...parseExtra(r.extraInfo), app_code: r.appCode },
  }))
}
