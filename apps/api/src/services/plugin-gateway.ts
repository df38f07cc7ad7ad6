import { randomBytes } from 'node:crypto'
import { InvalidOperationError, NotFoundError, ParamInvalidError } from '@stdops/core'
import { sql } from '@stdops/db'
import { BUILTIN_COMPONENTS, type ComponentModule } from '@stdops/engine'
import type { Caller } from './auth'
import type { Deps } from './deps'
import { pluginFields } from './plugins'
import { authorize, type ProjectRef, resolveProject } from './projects'
import { insertTask, operateTask } from './tasks'

/**
 * bk-sops's plugin gateway: any registered component run on a caller's behalf, outside a template.
 * A run is a one-node task of a project (so it is durable, shows in the project's task list and is
 * steered like any task); its status follows the task and its node: CREATED, RUNNING,
 * WAITING_CALLBACK (the node waits for a callback), SUCCEEDED, FAILED (the node failed), CANCELLED
 * (revoked). A repeated create with the same (app, source_key, client_request_id) is the same run.
 * stdops does not call the caller's callback_url: callers poll get_run_status, the polling contract
 * get_plugin_detail describes.
 */

const BUILTIN = new Set(BUILTIN_COMPONENTS.map((m) => m.code))
const WRAPPER_VERSION = 'v4.0.0'

/** `builtin__<code>` for built-in components, the bare code for the deployment's own. */
const pluginIdOf = (m: ComponentModule) => (BUILTIN.has(m.code) ? `builtin__${m.code}` : m.code)
const versionOf = (m: ComponentModule) => m.version ?? 'legacy'

function componentOf(deps: Deps, pluginId: string): ComponentModule | undefined {
  const code = pluginId.startsWith('builtin__') ? pluginId.slice('builtin__'.length) : pluginId
  const m = deps.engine.components.get(code)
  return m && pluginIdOf(m) === pluginId ? m : undefined
}

function resolvePlugin(deps: Deps, pluginId: string, version: string | undefined) {
  const m = componentOf(deps, pluginId)
  if (!m || (version !== undefined && version !== 'legacy' && version !== versionOf(m)))
    throw new NotFoundError(`plugin[id=${pluginId}${version ? `, version=${version}` : ''}] does not exist`)
  return m
}

export function gatewayPlugins(deps: Deps) {
  const apis = deps.engine.components
    .list()
    .map((m) => ({
      id: pluginIdOf(m),
      name: m.name ?? m.code,
      default_version: versionOf(m),
      versions: [versionOf(m)],
      plugin_source: BUILTIN.has(m.code) ? 'builtin' : 'third_party',
      meta_url_template: `${deps.publicUrl}/v2/sops/plugin_gateway_get_plugin_detail/?plugin_id=${pluginIdOf(m)}&version={version}`,
    }))
    .sort((a, b) => a.id.localeCompare(b.id))
  return { total: apis.length, apis }
}

export function gatewayCategories() {
  return {
    categories: [
      { id: 'builtin', name: 'Built-in Plugins' },
      { id: 'third_party', name: 'Third-Party Plugins' },
    ],
  }
}

export function gatewayPluginDetail(deps: Deps, pluginId: string, version: string | undefined) {
  const m = resolvePlugin(deps, pluginId, version)
  const { inputs, outputs } = pluginFields(m)
  const describe = (f: { key: string; name: string; type: string; schema: { description?: unknown } }) => ({
    key: f.key,
    name: f.name,
    type: f.type === 'dict' || f.type === 'object' ? 'json' : f.type,
    desc: typeof f.schema.description === 'string' ? f.schema.description : '',
    description: typeof f.schema.description === 'string' ? f.schema.description : '',
  })
  const extra = m as ComponentModule & { description?: unknown }
  const description = typeof extra.description === 'string' ? extra.description : ''
  return {
    id: pluginIdOf(m),
    name: m.name ?? m.code,
    plugin_source: BUILTIN.has(m.code) ? 'builtin' : 'third_party',
    plugin_code: m.code,
    plugin_version: versionOf(m),
    version: WRAPPER_VERSION,
    wrapper_version: WRAPPER_VERSION,
    description,
    desc: description,
    url: `${deps.publicUrl}/v2/sops/plugin_gateway_create_run/`,
    methods: ['POST'],
    inputs: inputs.map((f) => ({ ...describe(f), required: f.required ?? false })),
    outputs: outputs.map(describe),
    polling: {
      url: `${deps.publicUrl}/v2/sops/plugin_gateway_get_run_status/`,
      task_tag_key: 'open_plugin_run_id',
      success_tag: { key: 'data.status', value: 'SUCCEEDED', data_key: 'data.outputs' },
      fail_tag: { key: 'data.status', value: 'FAILED', msg_key: 'data.error_message' },
      running_tag: { key: 'data.status', value: 'RUNNING' },
    },
  }
}

export interface CreateRunInput {
  source_key: string
  plugin_id: string
  plugin_version: string
  client_request_id: string
  callback_url: string
  inputs: Record<string, unknown>
  operator?: string | undefined
}

/** The one-node tree of a run: start → the component (inputs as given, no references) → end. */
function runTree(code: string, version: string, inputs: Record<string, unknown>) {
  const id = (p: string) => `${p}${randomBytes(15).toString('hex').slice(0, 31)}`
  const [start, act, end, f1, f2] = [id('n'), id('n'), id('n'), id('l'), id('l')]
  return {
    nodeId: act,
    tree: {
      start_event: { id: start, name: '', type: 'EmptyStartEvent', incoming: '', outgoing: f1 },
      end_event: { id: end, name: '', type: 'EmptyEndEvent', incoming: [f2], outgoing: '' },
      activities: {
        [act]: {
          id: act,
          name: code,
          type: 'ServiceActivity',
          incoming: [f1],
          outgoing: f2,
          component: {
            code,
            version,
            data: Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, { hook: false, value: v }])),
          },
          error_ignorable: false,
          retryable: false,
          skippable: false,
          optional: false,
        },
      },
      gateways: {},
      flows: {
        [f1]: { id: f1, source: start, target: act, is_default: false },
        [f2]: { id: f2, source: act, target: end, is_default: false },
      },
      constants: {},
      outputs: [],
    },
  }
}

/** Inputs that a run's node would refuse, refused now naming the field. */
function checkInputs(m: ComponentModule, inputs: Record<string, unknown>) {
  const parsed = m.inputs.safeParse(inputs)
  if (parsed.success) return
  const [issue] = parsed.error.issues
  const where = issue?.path.length ? `inputs.${issue.path.join('.')}` : 'inputs'
  throw new ParamInvalidError(`invalid param: ${where}: ${issue?.message ?? 'invalid'}`)
}

export async function createRun(deps: Deps, caller: Caller, ref: ProjectRef, input: CreateRunInput) {
  const project = await resolveProject(deps, caller, ref)
  authorize(caller, project, 'create_task', 'task_operate')
  const m = resolvePlugin(deps, input.plugin_id, input.plugin_version)
  const existing = await deps.db.prisma.pluginRun.findUnique({
    where: {
      appCode_sourceKey_clientRequestId: {
        appCode: caller.app.code,
        sourceKey: input.source_key,
        clientRequestId: input.client_request_id,
      },
    },
  })
  if (existing) return { open_plugin_run_id: existing.id, status: await runStatus(deps, existing) }
  checkInputs(m, input.inputs)
  const { tree, nodeId } = runTree(m.code, versionOf(m), input.inputs)
  const runId = randomBytes(16).toString('hex')
  const operator = input.operator || caller.username
  const created = await deps.db
    .tx(async (tx) => {
      const task = await insertTask(deps, tx, {
        projectId: project.id,
        templateId: null,
        name: `${input.plugin_id} ${input.client_request_id}`.slice(0, 100),
        tree,
        operator,
        appCode: caller.app.code,
        source: 'api',
        start: true,
      })
      await tx.execute(sql`INSERT INTO plugin_runs
          (id, app_code, source_key, client_request_id, plugin_id, plugin_version, project_id, task_id, node_id, callback_url, operator, created_at)
        VALUES (${runId}, ${caller.app.code}, ${input.source_key}, ${input.client_request_id}, ${input.plugin_id}, ${versionOf(m)},
                ${project.id}, ${task.id}, ${nodeId}, ${input.callback_url}, ${operator}, ${deps.now()})`)
      return task
    })
    .catch(async (err: unknown) => {
      // The same request twice at once: the unique key lets one in; the other answers with its run.
      const again = await deps.db.prisma.pluginRun.findUnique({
        where: {
          appCode_sourceKey_clientRequestId: {
            appCode: caller.app.code,
            sourceKey: input.source_key,
            clientRequestId: input.client_request_id,
          },
        },
      })
      if (!again) throw err
      return null
    })
  if (created === null) return createRun(deps, caller, ref, input)
  deps.engine.afterCommit(created.effects)
  return { open_plugin_run_id: runId, status: 'RUNNING' }
}

type RunRow = { id: string; taskId: number; nodeId: string; appCode: string }

/**
 * A run this app made (another app's run is answered as missing, trusted apps aside), with the
 * caller's permission in the run's project checked.
 */
async function findRun(deps: Deps, caller: Caller, runId: string, action: 'task_view' | 'task_operate') {
  const run = await deps.db.prisma.pluginRun.findUnique({ where: { id: runId } })
  if (!run || (run.appCode !== caller.app.code && !caller.app.trusted))
    throw new NotFoundError(`plugin run[id=${runId}] does not exist`)
  const ref = { bk_biz_id: run.projectId, scope: 'project' as const }
  authorize(caller, await resolveProject(deps, caller, ref), action)
  return { run, ref }
}

async function runState(deps: Deps, run: RunRow) {
  const [row] = await deps.db.query<{
    state: string
    node_state: string | null
    outputs: string | null
    error: string | null
    jobs: number | string
  }>(
    sql`SELECT t.state, n.state AS node_state, n.outputs, n.error,
          (SELECT COUNT(*) FROM jobs j WHERE j.task_id = t.id AND j.node_id = ${run.nodeId}) AS jobs
        FROM tasks t LEFT JOIN node_states n ON n.task_id = t.id AND n.node_id = ${run.nodeId}
        WHERE t.id = ${run.taskId}`,
  )
  const status = !row
    ? 'CANCELLED'
    : row.state === 'REVOKED'
      ? 'CANCELLED'
      : row.state === 'FINISHED'
        ? 'SUCCEEDED'
        : row.node_state === 'FAILED'
          ? 'FAILED'
          : row.state === 'CREATED'
            ? 'CREATED'
            : row.node_state === 'RUNNING' && Number(row.jobs) === 0
              ? 'WAITING_CALLBACK'
              : 'RUNNING'
  const outputs =
    status === 'SUCCEEDED' && row?.outputs ? (JSON.parse(row.outputs) as Record<string, unknown>) : {}
  return { status, outputs, error_message: status === 'FAILED' ? (row?.error ?? '') : '' }
}

async function runStatus(deps: Deps, run: RunRow) {
  return (await runState(deps, run)).status
}

export async function getRunStatus(deps: Deps, caller: Caller, runId: string) {
  return runState(deps, (await findRun(deps, caller, runId, 'task_view')).run)
}

export async function getRunDetail(deps: Deps, caller: Caller, runId: string) {
  const { run } = await findRun(deps, caller, runId, 'task_view')
  const state = await runState(deps, run)
  return {
    open_plugin_run_id: run.id,
    status: state.status,
    plugin_id: run.pluginId,
    plugin_version: run.pluginVersion,
    outputs: state.outputs,
    error_message: state.error_message,
  }
}

/** Revokes the run's task; a run already ended answers its status (idempotent). */
export async function cancelRun(deps: Deps, caller: Caller, runId: string) {
  const { run, ref } = await findRun(deps, caller, runId, 'task_operate')
  const before = await runStatus(deps, run)
  if (before === 'CANCELLED' || before === 'SUCCEEDED') return { open_plugin_run_id: run.id, status: before }
  try {
    await operateTask(deps, caller, ref, run.taskId, 'revoke', 'api')
  } catch (err) {
    // Ended meanwhile: answer what it became.
    if (!(err instanceof InvalidOperationError)) throw err
  }
  return { open_plugin_run_id: run.id, status: await runStatus(deps, run) }
}
