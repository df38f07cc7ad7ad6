import { readFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createTreeBuilder } from '@stdops/core/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTemplate, expectEnvelope, legacyClient, ok, quickTree } from './fixtures'
import { type Harness, lib, makeIdentity, startHarness, waitFor } from './harness'
import { type PythonClient, pythonClient } from './python-client'

/**
 * The table-driven contract: for each API stdops serves, a request as bk-sops's documentation shows
 * it (ids as strings, credentials among the parameters, bodies as JSON with no Content-Type) and
 * the keys and types its documentation shows for the reply's `data`. Then the calls bk-sops's own
 * ESB SDK makes most, in the order a script makes them. Then docs/legacy-api.md's table, checked
 * against what the server answers.
 */

type Type = 'int' | 'string' | 'bool' | 'dict' | 'list' | 'string|null' | 'int|string' | 'any'
type Shape = Record<string, Type>
type Item = Record<string, unknown>

interface Ctx {
  runId: string
  templateId: number
  sleepId: string
  optionalId: string
  schemeId: number
  commonId: number
  createdTask: number
  finishedTask: number
  periodicId: number
}

interface Case {
  api: string
  method: 'GET' | 'POST'
  params: (c: Ctx) => Record<string, unknown>
  /** `data`'s keys and types (a list: its items'), or its own type */
  data: { dict: Shape } | { list: Shape } | { scalar: Type }
  /** keys beside the envelope's six */
  beside?: Shape
}

const TIME: Type = 'string|null'

const TASK_STATUS: Shape = {
  id: 'int',
  name: 'string',
  state: 'string',
  retry: 'int',
  skip: 'any',
  elapsed_time: 'int',
  start_time: TIME,
  finish_time: TIME,
  children: 'dict',
}

const TEMPLATE_ITEM: Shape = {
  id: 'int',
  name: 'string',
  category: 'string',
  creator: 'string',
  create_time: 'string',
  editor: 'string',
  edit_time: 'string',
  bk_biz_id: 'string',
  bk_biz_name: 'string',
  project_id: 'int',
  project_name: 'string',
}

const PLUGIN: Shape = {
  code: 'string',
  name: 'string',
  group_name: 'string',
  version: 'string',
  desc: 'string',
  form: 'string',
  inputs: 'list',
  outputs: 'list',
}

const PERIODIC: Shape = {
  id: 'int',
  name: 'string',
  cron: 'string',
  enabled: 'bool',
  total_run_count: 'int',
  last_run_at: 'string',
  creator: 'string',
  template_id: 'string',
}

const CASES: Case[] = [
  {
    api: 'create_task',
    method: 'POST',
    params: (c) => ({
      template_id: String(c.templateId),
      name: 'tasktest',
      template_source: 'business',
      flow_type: 'common',
      constants: {},
      exclude_task_nodes_id: [],
      scope: 'cmdb_biz',
      callback_url: 'http://127.0.0.1:9/hook',
    }),
    data: { dict: { task_id: 'int', task_url: 'string', pipeline_tree: 'dict' } },
  },
  {
    api: 'create_and_start_task',
    method: 'POST',
    params: (c) => ({ template_id: String(c.templateId), name: 'started', constants: {} }),
    data: { dict: { task_id: 'int', task_url: 'string', pipeline_tree: 'dict' } },
  },
  {
    api: 'fast_create_task',
    method: 'POST',
    params: () => ({
      name: 'tasktest',
      flow_type: 'common',
      category: 'OpsTools',
      pipeline_tree: quickTree().tree,
    }),
    data: { dict: { task_id: 'int', task_url: 'string', pipeline_tree: 'dict' } },
  },
  {
    api: 'start_task',
    method: 'POST',
    params: () => ({}), // task_id filled per run: see below
    data: { dict: { task_url: 'string' } },
    beside: { task_url: 'string' },
  },
  {
    api: 'modify_constants_for_task',
    method: 'POST',
    params: (c) => ({ task_id: String(c.createdTask), constants: { '${wait}': '100' }, name: '' }),
    data: { scalar: 'string' },
  },
  {
    api: 'get_task_status',
    method: 'GET',
    params: (c) => ({ task_id: String(c.finishedTask) }),
    data: { dict: TASK_STATUS },
  },
  {
    api: 'get_tasks_status',
    method: 'POST',
    params: (c) => ({ task_id_list: [c.finishedTask, c.createdTask], include_children_status: false }),
    data: {
      list: {
        id: 'int',
        name: 'string',
        status: 'dict',
        flow_type: 'string',
        current_flow: 'string',
        is_deleted: 'bool',
        create_time: 'string',
        start_time: 'string',
        finish_time: 'string',
        url: 'string',
      },
    },
  },
  {
    api: 'get_task_detail',
    method: 'GET',
    params: (c) => ({ task_id: String(c.finishedTask), scope: 'cmdb_biz' }),
    data: {
      dict: {
        id: 'int',
        name: 'string',
        project_id: 'int',
        project_name: 'string',
        template_id: 'string',
        create_time: 'string',
        create_method: 'string',
        start_time: 'string',
        finish_time: 'string',
        elapsed_time: 'int',
        creator: 'string',
        executor: 'string',
        constants: 'dict',
        outputs: 'list',
        ex_data: 'string',
        task_url: 'string',
        pipeline_tree: 'dict',
      },
    },
  },
  {
    api: 'get_task_list',
    method: 'GET',
    params: () => ({ keyword: 'task', is_started: 'true', limit: 5, offset: 0, scope: 'cmdb_biz' }),
    data: {
      list: {
        id: 'int',
        name: 'string',
        category: 'string',
        create_method: 'string',
        creator: 'string',
        executor: 'string',
        start_time: TIME,
        finish_time: TIME,
        is_started: 'bool',
        is_finished: 'bool',
        template_source: 'string',
        template_id: 'string',
        project_id: 'int',
        project_name: 'string',
        bk_biz_id: 'int',
        bk_biz_name: 'string',
      },
    },
    beside: { count: 'int' },
  },
  {
    api: 'get_task_count',
    method: 'GET',
    params: () => ({ keyword: 'task', is_started: true, is_finished: 'false' }),
    data: { scalar: 'int' },
  },
  {
    api: 'query_task_count',
    method: 'POST',
    params: (c) => ({
      conditions: {
        template_id: String(c.templateId),
        create_time__gte: '2018-07-12 10:00:00',
        is_started: true,
      },
      group_by: 'flow_type',
    }),
    data: { dict: { total: 'int', groups: 'list' } },
  },
  {
    api: 'get_tasks_manual_intervention_state',
    method: 'POST',
    params: (c) => ({ task_id_list: [c.finishedTask, c.createdTask] }),
    data: { list: { id: 'int', manual_intervention_required: 'bool' } },
  },
  {
    api: 'get_task_operate_record',
    method: 'GET',
    params: (c) => ({ task_id: String(c.finishedTask) }),
    data: {
      list: {
        project_id: 'int',
        instance_id: 'int',
        operator: 'string',
        operate_type: 'string',
        operate_type_name: 'string',
        operate_source: 'string',
        operate_source_name: 'string',
        node_id: 'string',
        operate_date: 'string',
        extra_info: 'dict',
      },
    },
  },
  {
    api: 'create_template',
    method: 'POST',
    params: () => ({
      name: 'new template',
      pipeline_tree: JSON.stringify(quickTree().tree),
      description: 'x',
    }),
    data: { dict: { template_id: 'int', template_name: 'string', pipeline_template_id: 'string' } },
  },
  {
    api: 'get_template_list',
    method: 'GET',
    params: (c) => ({
      id_in: `${c.templateId}, 99999`,
      template_source: 'business',
      name_keyword: 'OPTIONAL',
    }),
    data: { list: { ...TEMPLATE_ITEM, description: 'string' } },
  },
  {
    api: 'get_template_info',
    method: 'GET',
    params: (c) => ({ template_id: String(c.templateId), include_constants: 'True' }),
    data: { dict: { ...TEMPLATE_ITEM, pipeline_tree: 'dict', constants: 'dict' } },
  },
  {
    api: 'get_template_schemes',
    method: 'GET',
    params: (c) => ({ template_id: String(c.templateId), with_constants: 'true' }),
    data: { list: { id: 'string', name: 'string', data: 'string', detail: 'dict' } },
  },
  {
    api: 'create_template_scheme',
    method: 'POST',
    params: (c) => ({
      template_id: String(c.templateId),
      name: `scheme ${Math.random()}`,
      data: JSON.stringify([c.optionalId]),
    }),
    data: { dict: { id: 'int', unique_id: 'string', name: 'string', data: 'string' } },
  },
  {
    api: 'preview_task_tree',
    method: 'POST',
    params: (c) => ({
      template_id: String(c.templateId),
      version: '1.0.0',
      exclude_task_nodes_id: [c.optionalId],
    }),
    data: { dict: { pipeline_tree: 'dict', constants_not_referred: 'dict' } },
  },
  {
    api: 'preview_common_task_tree',
    method: 'POST',
    params: (c) => ({ template_id: String(c.commonId), exclude_task_nodes_id: [] }),
    data: { dict: { pipeline_tree: 'dict', constants_not_referred: 'dict' } },
  },
  {
    api: 'get_common_template_list',
    method: 'GET',
    params: () => ({}),
    data: {
      list: {
        id: 'int',
        name: 'string',
        category: 'string',
        creator: 'string',
        create_time: 'string',
        edit_time: 'string',
      },
    },
  },
  {
    api: 'get_common_template_info',
    method: 'GET',
    params: (c) => ({ template_id: String(c.commonId) }),
    data: { dict: { id: 'int', name: 'string', category: 'string', pipeline_tree: 'dict' } },
  },
  {
    api: 'create_periodic_task',
    method: 'POST',
    params: (c) => ({
      template_id: String(c.templateId),
      name: 'periodic',
      cron: { minute: '*/1', hour: '15', day_of_week: '*', day_of_month: '*', month_of_year: '*' },
      constants: {},
    }),
    data: { dict: { ...PERIODIC, form: 'dict', pipeline_tree: 'dict' } },
  },
  { api: 'get_periodic_task_list', method: 'GET', params: () => ({}), data: { list: PERIODIC } },
  {
    api: 'get_periodic_task_info',
    method: 'GET',
    params: (c) => ({ task_id: String(c.periodicId) }),
    data: { dict: { ...PERIODIC, form: 'dict', pipeline_tree: 'dict' } },
  },
  {
    api: 'set_periodic_task_enabled',
    method: 'POST',
    params: (c) => ({ task_id: String(c.periodicId), enabled: false }),
    data: { dict: { enabled: 'bool' } },
  },
  {
    api: 'modify_cron_for_periodic_task',
    method: 'POST',
    params: (c) => ({ task_id: String(c.periodicId), cron: { minute: '*/1', hour: '15' } }),
    data: { dict: { cron: 'string' } },
  },
  {
    api: 'modify_constants_for_periodic_task',
    method: 'POST',
    params: (c) => ({ task_id: String(c.periodicId), constants: {} }),
    data: { scalar: 'dict' },
  },
  {
    api: 'create_clocked_task',
    method: 'POST',
    params: (c) => ({
      template_id: String(c.templateId),
      task_name: 'later',
      plan_start_time: '2999-01-01 00:00:00',
      task_parameters: { constants: {}, template_schemes_id: [] },
    }),
    data: {
      dict: {
        id: 'int',
        task_name: 'string',
        plan_start_time: 'string',
        state: 'string',
        creator: 'string',
        template_id: 'int',
        template_name: 'string',
        task_parameters: 'dict',
      },
    },
  },
  {
    api: 'get_clocked_task_list',
    method: 'GET',
    params: () => ({ limit: 10, offset: 0 }),
    data: { list: { id: 'int', task_name: 'string', plan_start_time: 'string', state: 'string' } },
    beside: { count: 'int' },
  },
  {
    api: 'get_user_project_list',
    method: 'GET',
    params: () => ({}),
    data: { list: { project_id: 'int', bk_biz_id: 'int', name: 'string' } },
  },
  {
    api: 'get_user_project_detail',
    method: 'GET',
    params: () => ({ scope: 'cmdb_biz' }),
    data: {
      dict: {
        project_id: 'int',
        project_name: 'string',
        bk_biz_id: 'int',
        from_cmdb: 'bool',
        bk_biz_name: 'string',
        bk_biz_developer: 'string',
        bk_biz_maintainer: 'string',
        bk_biz_tester: 'string',
        bk_biz_productor: 'string',
        auth_actions: 'list',
      },
    },
  },
  { api: 'get_plugin_list', method: 'GET', params: () => ({ scope: 'cmdb_biz' }), data: { list: PLUGIN } },
  {
    api: 'get_plugin_base_info',
    method: 'GET',
    params: () => ({ scope: 'cmdb_biz' }),
    data: { list: { code: 'string', name: 'string' } },
  },
  {
    api: 'get_plugin_detail',
    method: 'GET',
    params: () => ({ code: 'sleep_timer', version: 'legacy', scope: 'cmdb_biz' }),
    data: { dict: PLUGIN },
  },
  {
    api: 'operate_task',
    method: 'POST',
    params: () => ({}), // task_id and action filled per run: see below
    data: { dict: {} },
  },
  {
    api: 'get_node_execution_record',
    method: 'GET',
    params: (c) => ({ template_id: String(c.templateId), template_node_id: c.sleepId, scope: 'cmdb_biz' }),
    data: { dict: { execution_time: 'list', total: 'int' } },
  },
  {
    api: 'get_task_effective_time',
    method: 'GET',
    params: (c) => ({ task_id: String(c.finishedTask) }),
    data: {
      dict: {
        task_instance_id: 'int',
        instance_id: 'int',
        template_id: 'string',
        task_template_id: 'string',
        project_id: 'int',
        creator: 'string',
        create_method: 'string',
        create_time: 'string',
        start_time: 'string',
        finish_time: 'string',
        total_elapsed_time: 'int',
        effective_time: 'int',
        excluded_node_count: 'int',
        total_node_count: 'int',
        excluded_component_codes: 'list',
        category: 'string',
      },
    },
  },
  {
    api: 'import_project_template',
    method: 'POST',
    params: () => ({ template_data: bkExport('imported') }),
    data: { dict: { flows: 'dict', count: 'int' } },
  },
  {
    api: 'import_common_template',
    method: 'POST',
    params: () => ({ template_data: bkExport('imported common') }),
    data: { dict: { flows: 'dict', count: 'int' } },
  },
  {
    api: 'plugin_gateway_get_plugin_list',
    method: 'GET',
    params: () => ({}),
    data: { dict: { total: 'int', apis: 'list' } },
  },
  {
    api: 'plugin_gateway_get_plugin_detail',
    method: 'GET',
    params: () => ({ plugin_id: 'builtin__sleep_timer', version: 'legacy' }),
    data: {
      dict: {
        id: 'string',
        name: 'string',
        plugin_source: 'string',
        plugin_code: 'string',
        plugin_version: 'string',
        version: 'string',
        wrapper_version: 'string',
        url: 'string',
        methods: 'list',
        inputs: 'list',
        outputs: 'list',
        polling: 'dict',
      },
    },
  },
  {
    api: 'plugin_gateway_get_categories',
    method: 'GET',
    params: () => ({}),
    data: { dict: { categories: 'list' } },
  },
  {
    api: 'plugin_gateway_create_run',
    method: 'POST',
    params: () => ({
      source_key: 'bkflow',
      plugin_id: 'builtin__set_variables',
      plugin_version: '1.0',
      client_request_id: `task_1_node_1_attempt_${Math.random()}`,
      callback_url: 'https://bkflow.example.com/api/plugin-gateway/callback',
      callback_token: 'token-001',
      inputs: { variables: { target_ip: '127.0.0.1' } },
      operator: 'bkflow-user',
    }),
    data: { dict: { open_plugin_run_id: 'string', status: 'string' } },
  },
  {
    api: 'plugin_gateway_get_run_status',
    method: 'GET',
    params: (c) => ({ task_tag: c.runId }),
    data: { dict: { status: 'string', outputs: 'dict', error_message: 'string' } },
  },
  {
    api: 'plugin_gateway_get_run_detail',
    method: 'GET',
    params: (c) => ({ run_id: c.runId }),
    data: {
      dict: {
        open_plugin_run_id: 'string',
        status: 'string',
        plugin_id: 'string',
        plugin_version: 'string',
        outputs: 'dict',
        error_message: 'string',
      },
    },
  },
  {
    api: 'plugin_gateway_cancel_run',
    method: 'POST',
    params: (c) => ({ run_id: c.runId }),
    data: { dict: { open_plugin_run_id: 'string', status: 'string' } },
  },
  {
    api: 'register_project',
    method: 'POST',
    params: () => ({ bk_biz_id: 6 }),
    data: { dict: { project_id: 'int', project_name: 'string' } },
  },
]

/** A file as bk-sops's template export writes it: base64 of `{template_data, digest}`. */
function bkExport(name: string): string {
  const template_data = {
    template: { '7': { id: 7, pipeline_template_str_id: 'p7', category: 'OpsTools', project_id: 1 } },
    pipeline_template_data: {
      template: { p7: { name, description: 'from bk-sops', template_id: 'p7', tree: quickTree().tree } },
      refs: {},
    },
  }
  return Buffer.from(JSON.stringify({ template_data, digest: '0'.repeat(32) })).toString('base64')
}

function typeOf(v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'list'
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float'
  if (typeof v === 'boolean') return 'bool'
  if (typeof v === 'object') return 'dict'
  return typeof v
}

function expectType(value: unknown, type: Type, where: string) {
  if (type === 'any') return
  expect(type.split('|'), `${where}: ${JSON.stringify(value)}`).toContain(typeOf(value))
}

function expectShape(obj: unknown, shape: Shape, where: string) {
  expect(typeOf(obj), where).toBe('dict')
  const o = obj as Item
  for (const [key, type] of Object.entries(shape)) {
    expect(Object.hasOwn(o, key), `${where} has ${key}: ${JSON.stringify(Object.keys(o))}`).toBe(true)
    expectType(o[key], type, `${where}.${key}`)
  }
}

describe('the legacy API, API by API, as bk-sops documents it', () => {
  let h: Harness
  let py: PythonClient
  let ctx: Ctx

  beforeAll(async () => {
    // callback_url on 127.0.0.1 (a port nothing listens on) must be allowed to be accepted
    h = await startHarness({
      env: { STDOPS_PUBLIC_URL: 'https://sops.example.test', STDOPS_OUTBOUND_ALLOW: '127.0.0.1' },
    })
    const id = await makeIdentity(h.deps, { role: 'admin', trusted: true })
    py = pythonClient(h, id)
    const b = createTreeBuilder()
    b.constant('wait', '0')
    const sleep = b.activity('sleep_timer', {
      name: 'timing',
      data: { bk_timing: { hook: true, value: '${wait}' } },
    })
    const opt = b.activity('set_variables', {
      name: 'optional step',
      optional: true,
      data: { variables: { hook: false, value: { x: 1 } } },
    })
    b.chain(b.startId, sleep, opt, b.endId)
    const templateId = await createTemplate(legacyClient(h, id), b.build(), 'with an optional step')
    const scheme = ok<{ id: number }>(
      await py.post('create_template_scheme', { template_id: templateId, name: 'all', data: [opt] }),
    )
    const { id: commonId } = await lib.admin.addCommonTemplate(h.deps, {
      name: 'shared',
      pipeline_tree: quickTree().tree,
    })
    const createdTask = ok<{ task_id: number }>(
      await py.post('create_task', { template_id: templateId, name: 'a task' }),
    ).task_id
    const finishedTask = ok<{ task_id: number }>(
      await py.post('create_and_start_task', { template_id: templateId, name: 'task done' }),
    ).task_id
    await waitFor(async () => {
      const s = ok<Item>(await py.get('get_task_status', { task_id: finishedTask }))
      return s.state === 'FINISHED' ? true : undefined
    })
    const periodic = ok<{ id: number }>(
      await py.post('create_periodic_task', { template_id: templateId, name: 'p', cron: '0 3 * * *' }),
    )
    const run = ok<{ open_plugin_run_id: string }>(
      await py.post('plugin_gateway_create_run', {
        source_key: 'bkflow',
        plugin_id: 'builtin__sleep_timer',
        plugin_version: 'legacy',
        client_request_id: 'contract run',
        callback_url: 'https://bkflow.example.com/cb',
        callback_token: 'token-002',
        inputs: { bk_timing: '600' },
      }),
    )
    ctx = {
      runId: run.open_plugin_run_id,
      templateId,
      sleepId: sleep,
      optionalId: opt,
      schemeId: scheme.id,
      commonId,
      createdTask,
      finishedTask,
      periodicId: periodic.id,
    }
  })
  afterAll(async () => {
    await h?.close()
  })

  it.each(
    CASES.map((c) => [c.api, c] as const),
  )('%s: a documented request gets the documented reply shape', async (_api, c) => {
    let params = c.params(ctx)
    if (c.api === 'start_task' || c.api === 'operate_task') {
      const task = ok<{ task_id: number }>(
        await py.post('create_task', { template_id: ctx.templateId, name: 'to start' }),
      )
      params = { task_id: String(task.task_id), ...(c.api === 'operate_task' ? { action: 'start' } : {}) }
    }
    const reply = c.method === 'GET' ? await py.get(c.api, params as never) : await py.post(c.api, params)
    const data = ok<unknown>(reply)
    expectEnvelope(reply, Object.keys(c.beside ?? {}))
    if (c.beside) expectShape(reply.body, c.beside, c.api)
    if ('dict' in c.data) expectShape(data, c.data.dict, `${c.api}.data`)
    else if ('list' in c.data) {
      expect(typeOf(data), c.api).toBe('list')
      const items = data as unknown[]
      expect(items.length, `${c.api} answers at least one item`).toBeGreaterThan(0)
      for (const item of items) expectShape(item, c.data.list, `${c.api}.data[]`)
    } else expectType(data, c.data.scalar, `${c.api}.data`)
  })

  describe("bk-sops's ESB SDK calls, in the order a script makes them", () => {
    it('get_template_list, get_template_info, create_task, start_task, get_task_status, operate_task, query_task_count', async () => {
      // client.sops.get_template_list({'bk_biz_id': '2'})
      const templates = ok<Item[]>(await py.get('get_template_list'))
      const template = templates.find((t) => t.id === ctx.templateId)!
      // client.sops.get_template_info({'bk_biz_id': '2', 'template_id': '...'})
      const info = ok<{ pipeline_tree: { constants: Record<string, { value: unknown }> } }>(
        await py.get('get_template_info', { template_id: String(template.id) }),
      )
      const constants = Object.fromEntries(Object.keys(info.pipeline_tree.constants).map((k) => [k, '30']))
      // client.sops.create_task({...}), then start_task
      const created = ok<{ task_id: number }>(
        await py.post('create_task', { template_id: String(template.id), name: 'sdk run', constants }),
      )
      const started = await py.post('start_task', { task_id: String(created.task_id) })
      expect(started.body).toMatchObject({ result: true, code: 0 })
      // get_task_status until it is RUNNING; pause; resume; revoke
      const status = (await waitFor(async () => {
        const s = ok<Item>(await py.get('get_task_status', { task_id: String(created.task_id) }))
        return s.state === 'RUNNING' ? s : undefined
      })) as Item
      expect(typeOf(status.children)).toBe('dict')
      for (const action of ['pause', 'resume', 'revoke']) {
        const r = await py.post('operate_task', { task_id: String(created.task_id), action })
        expect(r.body, action).toMatchObject({ result: true, code: 0, data: {} })
      }
      expect(ok<Item>(await py.get('get_task_status', { task_id: String(created.task_id) })).state).toBe(
        'REVOKED',
      )
      const again = await py.post('operate_task', { task_id: String(created.task_id), action: 'pause' })
      expect(again.body).toMatchObject({
        result: false,
        code: 3545000,
        message: 'task with state REVOKED cannot be paused',
      })
      // client.sops.query_task_count({'bk_biz_id': '2', 'group_by': 'status'})
      const counts = ok<{ total: number; groups: Array<{ code: string; value: number }> }>(
        await py.post('query_task_count', { group_by: 'status' }),
      )
      expect(counts.groups.reduce((a, g) => a + g.value, 0)).toBe(counts.total)
      expect(counts.groups.find((g) => g.code === 'FINISHED')!.value).toBeGreaterThanOrEqual(2)
    })
  })

  describe('docs/legacy-api.md', () => {
    it('lists every API the server answers, and the server answers every API it lists as served', async () => {
      const doc = await readFile(
        join(dirname(fileURLToPath(import.meta.url)), '../../../docs/legacy-api.md'),
        'utf8',
      )
      const start = doc.indexOf('## Every bk-sops task API')
      const rows = doc
        .slice(start, doc.indexOf('\n## ', start + 5))
        .split('\n')
        .map((line) => /^\| ([a-z_]+) \| (GET|POST) \| ([^|]+) \|/.exec(line))
        .filter((m): m is RegExpExecArray => m !== null)
        .map(([, api, method, status]) => ({ api: api!, method: method!, status: status!.trim() }))
      expect(rows.length).toBe(65)
      const served = rows.filter((r) => r.status.startsWith('served'))
      for (const { api, method, status } of rows) {
        const reply = method === 'GET' ? await py.get(api) : await py.post(api, {})
        if (status.startsWith('served')) expect(reply.body.code, `${api} is served`).not.toBe(1306404)
        else if (status === 'not served') expect(reply.body.code, `${api} is not served`).toBe(1306404)
        expect(reply.body.code, `${api} takes ${method}`).not.toBe(1306405)
      }
      // every API the table-driven cases cover is listed as served, and every served one has a case
      // (the node APIs have their own suite, with the node operations)
      const NODE_APIS = [
        'operate_node',
        'node_callback',
        'get_task_node_detail',
        'get_task_node_data',
        'get_task_node_log',
      ]
      const cased = new Set(CASES.map((c) => c.api))
      for (const api of cased)
        expect(
          served.map((r) => r.api),
          `${api} is listed as served`,
        ).toContain(api)
      for (const { api } of served)
        if (!NODE_APIS.includes(api)) expect(cased.has(api), `${api} has a case`).toBe(true)
    })
  })
})
