/**
 * Node operations and node reads: the use cases behind operate_node, node_callback,
 * get_task_node_detail, get_task_node_data, get_task_node_log and the tRPC `node.*` procedures.
 * Every action goes through the engine's operation protocol (engine.operateNode); these functions
 * only resolve the project, the task and the permission, and shape what is read.
 */
import {
  buildTaskGraph,
  type Constant,
  NotFoundError,
  ParamInvalidError,
  PipelineTreeSchema,
  renderValue,
  resolveConstants,
} from '@stdops/core'
import { sql } from '@stdops/db'
import { type Attempt, readAttemptLog, readAttempts, sealRetryInputs } from '@stdops/engine'
import type { Caller } from './auth'
import type { Deps } from './deps'
import type { ProjectRef } from './projects'
import { type OperateSource, resolveTask } from './tasks'
import { formatTime } from './time'

/** What a caller asks of one node (the fields of operate_node, named as bk-sops names them). */
export interface NodeActionInput {
  task_id: number
  node_id: string
  action: string
  data?: Record<string, unknown> | undefined
  inputs?: Record<string, unknown> | undefined
  flow_id?: string | undefined
  flow_ids?: string[] | undefined
  converge_gateway_id?: string | undefined
  version?: number | undefined
}

export interface NodeActionResult {
  task_id: number
  node_id: string
  action: string
  /** The node's state and version after the action. */
  state: string
  version: number
}

/** One node action (operate_node; node_callback is `callback`). Refusals are typed errors with their code. */
export async function operateNode(
  deps: Deps,
  caller: Caller,
  ref: ProjectRef,
  input: NodeActionInput,
  source: OperateSource,
): Promise<NodeActionResult> {
  const { project } = await resolveTask(deps, caller, ref, input.task_id, 'task_operate')
  let inputs = input.inputs
  if (input.action === 'retry' && inputs !== undefined) {
    // a retry's new inputs are stored (the node's overrides, the operate record): secrets sealed
    const [row] = await deps.db.query<{ inputs: string | null }>(
      sql`SELECT inputs FROM node_states WHERE task_id = ${input.task_id} AND node_id = ${input.node_id}`,
    )
    const current = row?.inputs ? (JSON.parse(row.inputs) as Record<string, unknown> | null) : null
    inputs = sealRetryInputs(deps.secrets, current, inputs)
  }
  const result = await deps.engine.operateNode({
    taskId: input.task_id,
    nodeId: input.node_id,
    action: input.action,
    operator: caller.username,
    appCode: caller.app.code,
    source,
    projectId: project.id,
    inputs,
    flowId: input.flow_id,
    flowIds: input.flow_ids,
    convergeGatewayId: input.converge_gateway_id,
    data: input.data,
    version: input.version,
  })
  return {
    task_id: input.task_id,
    node_id: input.node_id,
    action: input.action,
    state: result.state,
    version: result.version,
  }
}

interface NodeRow {
  state: string
  version: number
  loop: number
  retry: number
  skip: unknown
  error_ignored: unknown
  error: string | null
  inputs: string | null
  outputs: string | null
  started_at: number | null
  finished_at: number | null
  held: unknown
  wait: string | null
  auto_retries: number
}

/** The task's tree, its constants, and one node of it (3540000 when the tree has no such node). */
async function loadNode(deps: Deps, taskId: number, nodeId: string) {
  const [t] = await deps.db.query<{ pipeline_tree: string; constants: string; scope_constants: string }>(
    sql`SELECT pipeline_tree, constants, scope_constants FROM tasks WHERE id = ${taskId}`,
  )
  if (!t) throw new NotFoundError(`task[id=${taskId}] does not exist`)
  const tree = PipelineTreeSchema.parse(JSON.parse(t.pipeline_tree))
  // Nodes inside subprocesses are found by their id as well (ids are unique task-wide).
  const graph = buildTaskGraph(tree)
  const node = graph.nodes.get(nodeId)
  if (!node) throw new ParamInvalidError(`task[${taskId}] does not have node[${nodeId}]`)
  const activity = node.activity
  const gateway = node.gateway
  const subprocess = node.subprocess
  const [row] = await deps.db.query<NodeRow>(
    sql`SELECT state, version, loop, retry, skip, error_ignored, error, inputs, outputs, started_at, finished_at, held, wait, auto_retries
        FROM node_states WHERE task_id = ${taskId} AND node_id = ${nodeId}`,
  )
  // A child node's constants are its subprocess's (as started; before that, as its tree has them).
  const scope = graph.parentOf?.get(nodeId)
  const constants =
    scope === undefined
      ? (JSON.parse(t.constants) as Record<string, Constant>)
      : ((JSON.parse(t.scope_constants) as Record<string, Record<string, Constant>>)[scope] ??
        graph.scopes?.get(scope)?.tree.constants ??
        {})
  return { tree, activity, gateway, subprocess, row, constants }
}

const parse = (text: string | null): unknown => (text === null ? null : (JSON.parse(text) as unknown))

/** The inputs as they would render now (a node the run has not reached). */
function inputsNow(
  activity: { component: { data: Record<string, { value?: unknown }> } } | undefined,
  constants: Record<string, Constant>,
) {
  if (!activity) return {}
  const values = resolveConstants(constants)
  const scope = values.ok ? values.values : {}
  return Object.fromEntries(
    Object.entries(activity.component.data).map(([k, item]) => [k, renderValue(item.value, scope)]),
  )
}

/** `{name, key, value, preset}` for each output (bk-sops's list). */
function outputList(outputs: unknown) {
  if (outputs === null || typeof outputs !== 'object' || Array.isArray(outputs)) return []
  return Object.entries(outputs as Record<string, unknown>).map(([key, value]) => ({
    name: key,
    key,
    value,
    preset: true,
  }))
}

const elapsed = (start: number | null, end: number | null, now: number) =>
  start === null ? 0 : Math.max(0, Math.floor(((end ?? now) - start) / 1000))

function historyOf(deps: Deps, a: Attempt, retries: number) {
  return {
    history_id: a.id,
    loop: a.loop,
    retry: retries,
    skip: a.skip,
    version: a.version,
    inputs: a.inputs ?? {},
    outputs: outputList(a.outputs),
    ex_data: a.error ?? '',
    state: a.state,
    start_time: formatTime(deps, a.startedAt),
    finish_time: formatTime(deps, a.finishedAt),
    elapsed_time: elapsed(a.startedAt, a.finishedAt, deps.now()),
    /** bk-sops's flag: this attempt was started by the node's retry policy, not an operator. */
    auto_retry: a.retryKind === 'automatic',
    retry_kind: a.retryKind,
  }
}

/** get_task_node_detail (engine's node detail): state, inputs, outputs, ex_data and every earlier attempt. */
export async function nodeDetail(
  deps: Deps,
  caller: Caller,
  ref: ProjectRef,
  taskId: number,
  nodeId: string,
) {
  await resolveTask(deps, caller, ref, taskId, 'task_view')
  const { activity, gateway, subprocess, row, constants } = await loadNode(deps, taskId, nodeId)
  const name = activity?.name ?? subprocess?.name ?? gateway?.name ?? ''
  const errorIgnorable = activity?.error_ignorable === true
  if (!row || (row.state === 'READY' && row.version === 0) || Number(row.loop) === 0) {
    return {
      id: nodeId,
      name,
      state: row?.state ?? 'READY',
      error_ignorable: errorIgnorable,
      held: Boolean(row?.held),
      waiting_for: null,
      inputs: inputsNow(activity, constants),
      outputs: [],
      ex_data: '',
      histories: [],
      history_id: null,
      children: {},
    }
  }
  const attempts = await readAttempts(deps.db, taskId, nodeId)
  const current = attempts.filter((a) => a.loop === Number(row.loop)).at(-1)
  const earlier = attempts.filter((a) => a !== current)
  const autoRetry = activity?.auto_retry
  const startedAt = row.started_at === null ? null : Number(row.started_at)
  const finishedAt = row.finished_at === null ? null : Number(row.finished_at)
  return {
    id: nodeId,
    name,
    state: row.state,
    version: Number(row.version),
    loop: Number(row.loop),
    retry: Number(row.retry),
    skip: Boolean(row.skip),
    error_ignorable: errorIgnorable,
    error_ignored: Boolean(row.error_ignored),
    held: Boolean(row.held),
    waiting_for: row.wait,
    start_time: formatTime(deps, startedAt),
    finish_time: formatTime(deps, finishedAt),
    elapsed_time: elapsed(startedAt, finishedAt, deps.now()),
    inputs: (parse(row.inputs) as Record<string, unknown> | null) ?? inputsNow(activity, constants),
    outputs: outputList(parse(row.outputs)),
    ex_data: row.error ?? '',
    histories: earlier.map((a, i) => historyOf(deps, a, i)),
    history_id: current?.id ?? null,
    children: {},
    auto_retry_info: {
      enable: autoRetry?.enable === true,
      interval: Number(autoRetry?.interval ?? 0),
      times: Number(autoRetry?.times ?? 0),
      auto_retry_times: Number(row.auto_retries),
    },
  }
}

/**
 * get_task_node_data: `{inputs, outputs, ex_data}` of the node's last attempt; an output that feeds
 * a constant (`component_outputs`) is reported under that constant's key.
 */
export async function nodeData(deps: Deps, caller: Caller, ref: ProjectRef, taskId: number, nodeId: string) {
  await resolveTask(deps, caller, ref, taskId, 'task_view')
  const { activity, row, constants } = await loadNode(deps, taskId, nodeId)
  const outputs = (parse(row?.outputs ?? null) as Record<string, unknown> | null) ?? {}
  const fed = new Map<string, string>()
  for (const [key, c] of Object.entries(constants)) {
    if (c.source_type !== 'component_outputs') continue
    for (const outputKey of c.source_info?.[nodeId] ?? []) fed.set(outputKey, key)
  }
  const attempts = row ? await readAttempts(deps.db, taskId, nodeId) : []
  return {
    inputs: (parse(row?.inputs ?? null) as Record<string, unknown> | null) ?? inputsNow(activity, constants),
    outputs: Object.entries(outputs).map(([key, value]) => ({
      key: fed.get(key) ?? key,
      name: key,
      value,
      preset: !fed.has(key),
    })),
    ex_data: row?.error ?? '',
    /** Each ended attempt, newest first (bk-sops's execution_time). */
    execution_time: attempts
      .filter((a) => a.finishedAt !== null)
      .reverse()
      .map((a) => ({
        archived_time: new Date(a.finishedAt!).toISOString(),
        elapsed_time: elapsed(a.startedAt, a.finishedAt, deps.now()),
      })),
  }
}

/** get_task_node_log: one attempt's log as plain text (the newest attempt unless `historyId` names one). */
export async function nodeLog(
  deps: Deps,
  caller: Caller,
  ref: ProjectRef,
  taskId: number,
  nodeId: string,
  which: {
    history_id?: number | undefined
    version?: number | undefined
    page?: number | undefined
    page_size?: number | undefined
  } = {},
): Promise<{
  log: string
  history_id: number | null
  page: { page: number; page_size: number; total: number }
}> {
  await resolveTask(deps, caller, ref, taskId, 'task_view')
  await loadNode(deps, taskId, nodeId)
  const found = await readAttemptLog(deps.db, taskId, nodeId, {
    historyId: which.history_id,
    version: which.version,
  })
  if (!found && which.history_id !== undefined) {
    throw new NotFoundError(`node[${nodeId}] of task[${taskId}] has no history ${which.history_id}`)
  }
  if (!found && which.version !== undefined) {
    throw new NotFoundError(`node[${nodeId}] of task[${taskId}] has no attempt of version ${which.version}`)
  }
  const lines = (found?.log ?? '').split('\n').filter((l) => l !== '')
  const paged = which.page !== undefined || which.page_size !== undefined
  const size = which.page_size ?? (paged ? 30 : Math.max(1, lines.length))
  const page = which.page ?? 1
  const shown = paged ? lines.slice((page - 1) * size, page * size) : lines
  return {
    log: shown.map((l) => `${l}\n`).join(''),
    history_id: found?.id ?? null,
    page: { page, page_size: size, total: lines.length },
  }
}
