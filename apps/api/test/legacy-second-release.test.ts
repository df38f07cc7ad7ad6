import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createTreeBuilder } from '@stdops/core/testing'
import { createTRPCClient, httpLink } from '@trpc/client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { AppRouter } from '../src/trpc/root'
import {
  createTemplate,
  expectParamInvalid,
  expectRefusal,
  type LegacyClient,
  legacyClient,
  ok,
  PUBLIC_URL,
  quickTree,
  sleepTree,
} from './fixtures'
import { authHeader, type Harness, lib, makeIdentity, startHarness, waitFor } from './harness'
import { type PythonClient, pythonClient } from './python-client'

/** The APIs the second release adds (node and schedule APIs aside), as bk-sops's clients call them. */

type Item = Record<string, unknown>
const EXAMPLE = join(dirname(fileURLToPath(import.meta.url)), '..', 'examples', 'components', 'sha256.mjs')

function pauseTree() {
  const b = createTreeBuilder()
  const p = b.activity('pause_node', {
    name: 'approve',
    data: { description: { hook: false, value: 'ok?' } },
  })
  b.chain(b.startId, p, b.endId)
  return b.build()
}

function failTree() {
  const b = createTreeBuilder()
  const f = b.activity('fail', { name: 'breaks' })
  b.chain(b.startId, f, b.endId)
  return b.build()
}

describe('the second release of the legacy API', () => {
  let h: Harness
  let py: PythonClient
  let c: LegacyClient
  let sleepTemplate: number

  beforeAll(async () => {
    h = await startHarness({ env: { STDOPS_PUBLIC_URL: PUBLIC_URL, STDOPS_COMPONENTS: EXAMPLE } })
    const id = await makeIdentity(h.deps, { role: 'admin' })
    py = pythonClient(h, id)
    c = legacyClient(h, id)
    sleepTemplate = await createTemplate(c, sleepTree('600').tree, 'sleeper')
  })
  afterAll(async () => {
    await h?.close()
  })

  describe('fast_create_task', () => {
    it('creates a task of no template from an inline tree (gateways, constants and outputs may be left out) and runs it', async () => {
      const { gateways: _g, constants: _c, outputs: _o, ...bare } = quickTree().tree as Item
      const data = ok<{ task_id: number; task_url: string; pipeline_tree: Item }>(
        await py.post('fast_create_task', { name: 'inline', pipeline_tree: bare, category: 'OpsTools' }),
      )
      expect(data.task_url).toBe(
        `${PUBLIC_URL}/taskflow/execute/${py.id.projectId}/?instance_id=${data.task_id}`,
      )
      expect(data.pipeline_tree).toMatchObject({ gateways: {}, constants: {}, outputs: [] })
      const detail = ok<Item>(await py.get('get_task_detail', { task_id: data.task_id }))
      expect(detail).toMatchObject({ template_id: '', create_method: 'api', name: 'inline' })
      const listed = ok<Item[]>(await py.get('get_task_list', { keyword: 'inline' }))
      expect(listed[0]).toMatchObject({ id: data.task_id, category: 'OpsTools', template_id: '' })
      ok(await py.post('start_task', { task_id: data.task_id }))
      await waitFor(async () => {
        const s = ok<Item>(await py.get('get_task_status', { task_id: data.task_id }))
        return s.state === 'FINISHED' ? s : undefined
      })
    })

    it('refuses an invalid tree naming the rule, a viewer, and writes nothing', async () => {
      const b = createTreeBuilder()
      const act = b.activity('no_such_plugin')
      b.chain(b.startId, act, b.endId)
      const before = await h.deps.db.prisma.task.count()
      expectParamInvalid(
        await py.post('fast_create_task', { name: 'bad', pipeline_tree: b.build() }),
        `invalid pipeline_tree: activity ${act} uses unknown component no_such_plugin`,
      )
      expectParamInvalid(await py.post('fast_create_task', { name: 'bad' }), 'pipeline_tree: is required')
      const viewer = pythonClient(
        h,
        await makeIdentity(h.deps, { role: 'viewer', projectId: py.id.projectId }),
      )
      expectRefusal(
        await viewer.post('fast_create_task', { name: 'nope', pipeline_tree: quickTree().tree }),
        3599999,
        /permission denied: action create_task/,
      )
      expect(await h.deps.db.prisma.task.count()).toBe(before)
    })
  })

  describe('modify_constants_for_task', () => {
    it('changes constants and the name while CREATED, records it, and refuses once started', async () => {
      const taskId = ok<{ task_id: number }>(
        await py.post('create_task', { template_id: sleepTemplate, name: 'before' }),
      ).task_id
      const reply = await py.post('modify_constants_for_task', {
        task_id: String(taskId),
        constants: { '${wait}': '3', '${unknown}': 'ignored' },
        name: 'after',
      })
      expect(ok(reply)).toBe('success')
      const detail = ok<Item>(await py.get('get_task_detail', { task_id: taskId }))
      expect(detail.name).toBe('after')
      expect((detail.constants as Record<string, Item>)['${wait}']!.value).toBe('3')
      const records = ok<Item[]>(await py.get('get_task_operate_record', { task_id: taskId }))
      expect(records.map((r) => r.operate_type)).toEqual(['create', 'update'])
      expect(records[1]!.extra_info).toEqual({
        constants: ['${wait}'],
        name: 'after',
        app_code: py.id.appCode,
      })

      ok(await py.post('start_task', { task_id: taskId }))
      expectRefusal(
        await py.post('modify_constants_for_task', { task_id: taskId, constants: { '${wait}': '1' } }),
        3545000,
        'task with state RUNNING cannot have its constants modified: it has started',
      )
      expectParamInvalid(
        await py.post('modify_constants_for_task', { task_id: taskId, constants: 'x' }),
        'invalid param: constants',
      )
      ok(await py.post('operate_task', { task_id: taskId, action: 'revoke' }))
    })

    it('answers a task of another project as missing', async () => {
      const other = pythonClient(h, await makeIdentity(h.deps, { role: 'admin' }))
      const taskId = ok<{ task_id: number }>(
        await py.post('create_task', { template_id: sleepTemplate, name: 'mine' }),
      ).task_id
      expectRefusal(
        await other.post('modify_constants_for_task', { task_id: taskId, constants: {} }),
        3540400,
        `task[id=${taskId}] does not exist in project(${other.id.bkBizId})`,
      )
    })
  })

  describe('counts and manual intervention', () => {
    let q: PythonClient
    const ids: Record<string, number> = {}

    beforeAll(async () => {
      q = pythonClient(h, await makeIdentity(h.deps, { role: 'admin' }))
      const qc = legacyClient(h, q.id)
      const sleeper = await createTemplate(qc, sleepTree('600').tree, 'sleeper')
      const pauser = await createTemplate(qc, pauseTree(), 'pauser')
      const failer = await createTemplate(qc, failTree(), 'failer')
      const quick = await createTemplate(qc, quickTree().tree, 'quick')
      const make = async (template: number, name: string, start: boolean) =>
        ok<{ task_id: number }>(
          await q.post(start ? 'create_and_start_task' : 'create_task', { template_id: template, name }),
        ).task_id
      ids.created = await make(sleeper, 'idle one', false)
      ids.running = await make(sleeper, 'busy one', true)
      ids.suspended = await make(sleeper, 'held one', true)
      ok(await q.post('operate_task', { task_id: ids.suspended, action: 'pause' }))
      ids.paused = await make(pauser, 'waiting one', true)
      ids.failed = await make(failer, 'broken one', true)
      ids.finished = await make(quick, 'done one', true)
      await waitFor(async () => {
        const l = ok<Item[]>(await q.post('get_tasks_status', { task_id_list: [ids.failed!, ids.finished!] }))
        const states = l.map((t) => (t.status as Item).state)
        return states.includes('FAILED') && states.includes('FINISHED') ? true : undefined
      })
      // the pause_node is RUNNING and waits for its callback
      await waitFor(async () => {
        const s = ok<Item>(await q.get('get_task_status', { task_id: ids.paused! }))
        const nodes = Object.values(s.children as Record<string, Item>)
        return nodes.some((n) => n.name === 'approve' && n.state === 'RUNNING') ? true : undefined
      })
    })

    it('get_task_count answers the number of matching tasks as data', async () => {
      expect(ok(await q.get('get_task_count'))).toBe(6)
      expect(ok(await q.get('get_task_count', { is_started: false }))).toBe(1)
      expect(ok(await q.get('get_task_count', { is_finished: true }))).toBe(1)
      expect(ok(await q.get('get_task_count', { keyword: 'ONE', is_started: 'True' as never }))).toBe(5)
      expectParamInvalid(await q.get('get_task_count', { is_started: 'maybe' }), 'is_started')
    })

    it('query_task_count groups by status, category, flow_type and create_method', async () => {
      const byStatus = ok<{ total: number; groups: Item[] }>(
        await q.post('query_task_count', { group_by: 'status' }),
      )
      expect(byStatus).toEqual({
        total: 6,
        groups: [
          { code: 'CREATED', name: '未执行', value: 1 },
          { code: 'EXECUTING', name: '执行中', value: 4 },
          { code: 'FINISHED', name: '已完成', value: 1 },
        ],
      })
      const byFlow = ok<{ total: number; groups: Item[] }>(
        await q.post('query_task_count', { group_by: 'flow_type', conditions: { is_started: true } }),
      )
      expect(byFlow.total).toBe(5)
      expect(byFlow.groups.find((g) => g.code === 'common')).toMatchObject({ value: 5 })
      const byMethod = ok<{ groups: Item[] }>(
        await q.post('query_task_count', { group_by: 'create_method', conditions: { name: 'idle one' } }),
      )
      expect(byMethod.groups.find((g) => g.code === 'api')).toMatchObject({ value: 1 })
      const byCategory = ok<{ groups: Item[] }>(await q.post('query_task_count', { group_by: 'category' }))
      expect(byCategory.groups.find((g) => g.code === 'Other')).toMatchObject({ value: 6 })
      expect(byCategory.groups.map((g) => g.code)).toContain('OpsTools')
      const future = ok<{ total: number }>(
        await q.post('query_task_count', {
          group_by: 'status',
          conditions: { create_time__gte: '2999-01-01 00:00:00' },
        }),
      )
      expect(future.total).toBe(0)
      expectParamInvalid(await q.post('query_task_count', { group_by: 'colour' }), 'group_by')
      expectParamInvalid(
        await q.post('query_task_count', { group_by: 'status', conditions: { is_deleted: false } }),
        'conditions',
      )
    })

    it('get_tasks_manual_intervention_state: paused, failed and waiting-for-callback tasks need a person', async () => {
      const list = ok<Item[]>(
        await q.post('get_tasks_manual_intervention_state', {
          task_id_list: Object.values(ids).concat([999999]),
        }),
      )
      const byId = new Map(list.map((t) => [t.id, t.manual_intervention_required]))
      expect(Object.fromEntries(Object.entries(ids).map(([k, id]) => [k, byId.get(id)]))).toEqual({
        created: false,
        running: false,
        suspended: true,
        paused: true,
        failed: true,
        finished: false,
      })
      expect(byId.has(999999)).toBe(false)
      for (const item of list)
        expect(Object.keys(item).sort()).toEqual(['id', 'manual_intervention_required'])
    })
  })

  describe('projects', () => {
    it('get_user_project_list lists the projects where the user has a role', async () => {
      const list = ok<Item[]>(await py.get('get_user_project_list'))
      expect(list).toEqual([
        { project_id: py.id.projectId, bk_biz_id: py.id.bkBizId, name: expect.any(String) },
      ])
    })

    it("get_user_project_detail has bk-sops keys and the caller's actions", async () => {
      const detail = ok<Item>(await py.get('get_user_project_detail'))
      expect(detail).toMatchObject({
        project_id: py.id.projectId,
        bk_biz_id: py.id.bkBizId,
        from_cmdb: true,
        auth_actions: ['project_view', 'project_edit', 'project_fast_create_task'],
      })
      for (const key of [
        'project_name',
        'bk_biz_name',
        'bk_biz_developer',
        'bk_biz_maintainer',
        'bk_biz_tester',
        'bk_biz_productor',
      ])
        expect(typeof detail[key]).toBe('string')
      expectRefusal(
        await py.get('get_user_project_detail', { bk_biz_id: '987654321' }),
        3540400,
        'project(987654321) with scope(cmdb_biz) does not exist.',
      )
    })
  })

  describe('the plugin catalogue', () => {
    it('get_plugin_list lists built-in and deployment components with inputs and outputs from their schemas', async () => {
      const list = ok<Item[]>(await py.get('get_plugin_list'))
      const codes = list.map((p) => p.code)
      for (const code of [
        'sleep_timer',
        'pause_node',
        'bk_http_request',
        'set_variables',
        'fail',
        'sha256_text',
      ])
        expect(codes).toContain(code)
      const sha = list.find((p) => p.code === 'sha256_text')!
      expect(sha).toMatchObject({ name: 'SHA-256 of a text', version: '1.0', group_name: 'deployment' })
      expect(sha.inputs).toEqual([
        expect.objectContaining({ key: 'text', type: 'string', required: true }),
        expect.objectContaining({ key: 'rounds', required: false }),
      ])
      expect(sha.outputs).toEqual([expect.objectContaining({ key: 'digest', type: 'string' })])
      for (const p of list)
        expect(Object.keys(p).sort()).toEqual([
          'code',
          'desc',
          'form',
          'group_name',
          'inputs',
          'name',
          'outputs',
          'version',
        ])
    })

    it('get_plugin_detail answers one plugin; an unknown code or version is 3540400', async () => {
      const timer = ok<Item>(await py.get('get_plugin_detail', { code: 'sleep_timer', version: 'legacy' }))
      expect(timer).toMatchObject({ code: 'sleep_timer', group_name: 'stdops built-in' })
      expect((timer.inputs as Item[]).map((i) => i.key)).toContain('bk_timing')
      expectRefusal(
        await py.get('get_plugin_detail', { code: 'nope' }),
        3540400,
        'plugin[code=nope] does not exist',
      )
      expectRefusal(
        await py.get('get_plugin_detail', { code: 'sleep_timer', version: '9.9' }),
        3540400,
        'plugin[code=sleep_timer, version=9.9] does not exist',
      )
      expectParamInvalid(await py.get('get_plugin_detail', {}), 'code')
    })

    it('a tree built from the catalogue alone runs', async () => {
      const detail = ok<{ inputs: Array<{ key: string }> }>(
        await py.get('get_plugin_detail', { code: 'sha256_text' }),
      )
      const b = createTreeBuilder()
      const data = Object.fromEntries(
        detail.inputs.map((i) => [i.key, { hook: false, value: i.key === 'text' ? 'abc' : 1 }]),
      )
      const act = b.activity('sha256_text', { data })
      b.chain(b.startId, act, b.endId)
      const taskId = ok<{ task_id: number }>(
        await py.post('fast_create_task', { name: 'from catalogue', pipeline_tree: b.build() }),
      ).task_id
      ok(await py.post('start_task', { task_id: taskId }))
      await waitFor(async () => {
        const s = ok<Item>(await py.get('get_task_status', { task_id: taskId }))
        return s.state === 'FINISHED' ? s : undefined
      })
    })
  })

  describe('schedules with common templates and schemes', () => {
    it('create_periodic_task and create_clocked_task take a common template; periodic honours exclusions, clocked schemes', async () => {
      const b = createTreeBuilder()
      const keep = b.activity('set_variables', {
        name: 'keep',
        data: { variables: { hook: false, value: { a: 1 } } },
      })
      const drop = b.activity('set_variables', {
        name: 'drop',
        optional: true,
        data: { variables: { hook: false, value: { b: 2 } } },
      })
      b.chain(b.startId, keep, drop, b.endId)
      const { id } = await lib.admin.addCommonTemplate(h.deps, {
        name: 'shared two',
        pipeline_tree: b.build(),
      })
      const periodic = ok<Item>(
        await py.post('create_periodic_task', {
          template_id: id,
          template_source: 'common',
          name: 'nightly',
          cron: '0 3 * * *',
          exclude_task_nodes_id: [drop],
        }),
      )
      expect(periodic).toMatchObject({ template_source: 'common', template_id: String(id) })
      expect(Object.keys((periodic.pipeline_tree as Item).activities as Item)).toEqual([keep])

      const scheme = ok<Item>(
        await py.post('create_template_scheme', {
          template_id: id,
          template_source: 'common',
          name: 'all',
          data: [drop],
        }),
      )
      const at = new Date(Date.now() + 1500)
      const clocked = ok<Item>(
        await py.post('create_clocked_task', {
          template_id: id,
          template_source: 'common',
          task_name: 'soon',
          plan_start_time: at.toISOString(),
          task_parameters: { constants: {}, template_schemes_id: [scheme.id as number] },
        }),
      )
      expect(clocked).toMatchObject({ template_source: 'common', template_name: 'shared two' })
      const fired = await waitFor(async () => {
        const l = ok<Item[]>(await py.get('get_clocked_task_list', { id: clocked.id as number }))
        return l[0]?.state === 'started' ? l[0] : undefined
      }, 20_000)
      const task = await h.deps.db.prisma.task.findUniqueOrThrow({ where: { id: fired.task_id as number } })
      expect(task.templateSource).toBe('common')
      expect(Object.keys(JSON.parse(task.pipelineTree).activities).sort()).toEqual([keep, drop].sort())
      expectParamInvalid(
        await py.post('create_clocked_task', {
          template_id: id,
          template_source: 'common',
          task_name: 'bad',
          plan_start_time: at.toISOString(),
          task_parameters: { template_schemes_id: ['nope-scheme'] },
        }),
        /template_schemes_id: scheme "nope-scheme" does not exist/,
      )
    })
  })

  describe('run statistics and project registration', () => {
    it("get_task_effective_time leaves out the time waiting nodes took; get_node_execution_record lists a node's runs", async () => {
      const b = createTreeBuilder()
      const wait = b.activity('sleep_timer', {
        name: 'wait',
        data: { bk_timing: { hook: false, value: '2' } },
      })
      const work = b.activity('set_variables', {
        name: 'work',
        data: { variables: { hook: false, value: { a: 1 } } },
      })
      b.chain(b.startId, wait, work, b.endId)
      const template = await createTemplate(c, b.build(), 'timed')
      const taskId = ok<{ task_id: number }>(
        await py.post('create_and_start_task', { template_id: template, name: 'timed' }),
      ).task_id
      const running = await py.get('get_task_effective_time', { task_id: taskId })
      expect(running.body).toMatchObject({ result: false, code: 3545000 })
      await waitFor(async () => {
        const s = ok<Item>(await py.get('get_task_status', { task_id: taskId }))
        return s.state === 'FINISHED' ? s : undefined
      }, 20_000)
      const eff = ok<Item>(await py.get('get_task_effective_time', { task_id: taskId }))
      expect(eff).toMatchObject({
        task_instance_id: taskId,
        excluded_node_count: 1,
        total_node_count: 2,
        template_id: String(template),
      })
      expect(eff.total_elapsed_time as number).toBeGreaterThanOrEqual(2)
      expect(eff.effective_time as number).toBeLessThan(eff.total_elapsed_time as number)
      const record = ok<{ execution_time: Item[]; total: number }>(
        await py.get('get_node_execution_record', { template_id: template, template_node_id: wait }),
      )
      expect(record.total).toBe(1)
      expect(record.execution_time[0]!.elapsed_time as number).toBeGreaterThanOrEqual(1)
      expect(
        ok<{ total: number }>(
          await py.get('get_node_execution_record', { template_id: template, template_node_id: 'nope' }),
        ).total,
      ).toBe(0)
    })

    it('register_project: a trusted app registers a business once; other apps are refused', async () => {
      expectRefusal(
        await py.post('register_project', { bk_biz_id: 424242 }),
        3599999,
        /only a trusted app may register projects/,
      )
      const trusted = pythonClient(h, await makeIdentity(h.deps, { role: 'admin', trusted: true }))
      const first = ok<Item>(
        await trusted.post('register_project', { bk_biz_id: '424242', project_name: 'Payments' }),
      )
      expect(first).toEqual({ project_id: expect.any(Number), project_name: 'Payments' })
      expect(ok(await trusted.post('register_project', { bk_biz_id: 424242 }))).toEqual(first)
      expect(ok<Item>(await trusted.get('get_user_project_detail', { bk_biz_id: '424242' })).project_id).toBe(
        first.project_id,
      )
    })
  })

  describe("templates from bk-sops's export file", () => {
    const exportOf = (templates: Array<{ name: string; tree: unknown; category?: string }>) => {
      const template: Record<string, unknown> = {}
      const pipelines: Record<string, unknown> = {}
      templates.forEach((t, i) => {
        template[String(i + 1)] = {
          id: i + 1,
          pipeline_template_str_id: `p${i}`,
          category: t.category ?? 'Other',
        }
        pipelines[`p${i}`] = { name: t.name, description: 'exported', template_id: `p${i}`, tree: t.tree }
      })
      const template_data = { template, pipeline_template_data: { template: pipelines, refs: {} } }
      return Buffer.from(JSON.stringify({ template_data, digest: 'd'.repeat(32) })).toString('base64')
    }

    it('import_project_template (trusted apps) makes each exported template a new one; one bad tree imports nothing', async () => {
      const trusted = pythonClient(h, await makeIdentity(h.deps, { role: 'admin', trusted: true }))
      const data = ok<{ flows: Record<string, string>; count: number }>(
        await trusted.post('import_project_template', {
          project_id: String(trusted.id.bkBizId),
          template_data: exportOf([
            { name: 'first flow', tree: quickTree().tree, category: 'DevTools' },
            { name: 'second flow', tree: sleepTree('1').tree },
          ]),
        }),
      )
      expect(data.count).toBe(2)
      expect(Object.values(data.flows).sort()).toEqual(['first flow', 'second flow'])
      const listed = ok<Item[]>(await trusted.get('get_template_list'))
      expect(listed.find((t) => t.name === 'first flow')).toMatchObject({
        category: 'DevTools',
        description: 'exported',
      })
      const before = await h.deps.db.prisma.template.count()
      expectParamInvalid(
        await trusted.post('import_project_template', {
          project_id: trusted.id.bkBizId,
          template_data: exportOf([
            { name: 'ok', tree: quickTree().tree },
            { name: 'broken', tree: { start_event: {} } },
          ]),
        }),
        /template_data: template broken: invalid pipeline_tree/,
      )
      expectParamInvalid(
        await trusted.post('import_project_template', { project_id: 1, template_data: 'not base64 json' }),
        'template_data',
      )
      expect(await h.deps.db.prisma.template.count()).toBe(before)
      expectRefusal(
        await py.post('import_project_template', {
          project_id: py.id.bkBizId,
          template_data: exportOf([{ name: 'x', tree: quickTree().tree }]),
        }),
        3599999,
        /only a trusted app may import templates/,
      )
      const common = ok<{ count: number; flows: Record<string, string> }>(
        await trusted.post('import_common_template', {
          template_data: exportOf([{ name: 'shared import', tree: quickTree().tree }]),
        }),
      )
      expect(common.count).toBe(1)
      const id = Number(Object.keys(common.flows)[0])
      expect(ok<Item>(await trusted.get('get_common_template_info', { template_id: id })).name).toBe(
        'shared import',
      )
    })
  })

  describe('the plugin gateway', () => {
    const create = (cl: PythonClient, extra: Record<string, unknown>) =>
      cl.post('plugin_gateway_create_run', {
        source_key: 'bkflow',
        plugin_version: 'legacy',
        callback_url: 'https://bkflow.example.com/cb',
        callback_token: 'secret-token',
        ...extra,
      })

    it('runs a component as a one-node task: RUNNING, then SUCCEEDED with its outputs; the same request is the same run', async () => {
      const body = { plugin_id: 'sha256_text', client_request_id: 'req-1', inputs: { text: 'abc' } }
      const run = ok<{ open_plugin_run_id: string; status: string }>(await create(py, body))
      expect(run.open_plugin_run_id).toMatch(/^[0-9a-f]{32}$/)
      expect(ok<Item>(await create(py, body)).open_plugin_run_id).toBe(run.open_plugin_run_id)
      const done = await waitFor(async () => {
        const s = ok<Item>(
          await py.get('plugin_gateway_get_run_status', { task_tag: run.open_plugin_run_id }),
        )
        return s.status === 'SUCCEEDED' ? s : undefined
      })
      expect(done).toEqual({
        status: 'SUCCEEDED',
        outputs: { digest: 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad' },
        error_message: '',
      })
      expect(
        ok<Item>(await py.get('plugin_gateway_get_run_detail', { run_id: run.open_plugin_run_id })),
      ).toMatchObject({
        plugin_id: 'sha256_text',
        plugin_version: '1.0',
        status: 'SUCCEEDED',
      })
      expect(
        ok<Item>(await py.post('plugin_gateway_cancel_run', { run_id: run.open_plugin_run_id })).status,
      ).toBe('SUCCEEDED')
      // the run is a task of the project, visible as one
      const tasks = ok<Item[]>(await py.get('get_task_list', { keyword: 'req-1' }))
      expect(tasks).toHaveLength(1)
    })

    it('a failing component is FAILED with its error; a waiting one is WAITING_CALLBACK; cancel revokes', async () => {
      const failed = ok<{ open_plugin_run_id: string }>(
        await create(py, {
          plugin_id: 'builtin__fail',
          client_request_id: 'req-fail',
          inputs: { message: 'no disk' },
        }),
      )
      expect(
        await waitFor(async () => {
          const s = ok<Item>(
            await py.get('plugin_gateway_get_run_status', { task_tag: failed.open_plugin_run_id }),
          )
          return s.status === 'FAILED' ? s : undefined
        }),
      ).toMatchObject({ error_message: 'no disk' })
      const waiting = ok<{ open_plugin_run_id: string }>(
        await create(py, { plugin_id: 'builtin__pause_node', client_request_id: 'req-wait', inputs: {} }),
      )
      await waitFor(async () => {
        const s = ok<Item>(
          await py.get('plugin_gateway_get_run_status', { task_tag: waiting.open_plugin_run_id }),
        )
        return s.status === 'WAITING_CALLBACK' ? s : undefined
      })
      expect(
        ok<Item>(await py.post('plugin_gateway_cancel_run', { run_id: waiting.open_plugin_run_id })).status,
      ).toBe('CANCELLED')
    })

    it("refuses an unknown plugin or version, bad inputs naming the field, another app's run, and a viewer", async () => {
      expectRefusal(
        await create(py, { plugin_id: 'builtin__nope', client_request_id: 'x' }),
        3540400,
        'plugin[id=builtin__nope, version=legacy] does not exist',
      )
      expectRefusal(
        await create(py, { plugin_id: 'sha256_text', plugin_version: '9.9', client_request_id: 'x' }),
        3540400,
        'plugin[id=sha256_text, version=9.9] does not exist',
      )
      expectParamInvalid(
        await create(py, { plugin_id: 'sha256_text', client_request_id: 'x', inputs: { text: 5 } }),
        'invalid param: inputs.text',
      )
      expectParamInvalid(
        await create(py, { plugin_id: 'sha256_text', client_request_id: 'x', callback_url: 'ftp://x' }),
        'callback_url',
      )
      const mine = ok<{ open_plugin_run_id: string }>(
        await create(py, {
          plugin_id: 'builtin__sleep_timer',
          client_request_id: 'mine',
          inputs: { bk_timing: '600' },
        }),
      )
      const other = pythonClient(h, await makeIdentity(h.deps, { role: 'admin', projectId: py.id.projectId }))
      expectRefusal(
        await other.get('plugin_gateway_get_run_status', { task_tag: mine.open_plugin_run_id }),
        3540400,
        `plugin run[id=${mine.open_plugin_run_id}] does not exist`,
      )
      const viewer = pythonClient(
        h,
        await makeIdentity(h.deps, { role: 'viewer', projectId: py.id.projectId }),
      )
      expectRefusal(
        await create(viewer, { plugin_id: 'sha256_text', client_request_id: 'v', inputs: { text: 'a' } }),
        3599999,
        /permission denied: action create_task/,
      )
      ok(await py.post('plugin_gateway_cancel_run', { run_id: mine.open_plugin_run_id }))
      const plugins = ok<{ total: number; apis: Item[] }>(await py.get('plugin_gateway_get_plugin_list'))
      expect(plugins.apis.map((p) => p.id)).toEqual(
        expect.arrayContaining(['builtin__sleep_timer', 'sha256_text']),
      )
      expect(plugins.total).toBe(plugins.apis.length)
    })
  })

  describe('isolation and permissions', () => {
    it("another project's template or task is answered exactly like a missing one, and a viewer cannot write", async () => {
      const template = await createTemplate(c, quickTree().tree, 'isolated')
      const task = ok<{ task_id: number }>(
        await py.post('create_task', { template_id: template, name: 'isolated' }),
      ).task_id
      const other = pythonClient(h, await makeIdentity(h.deps, { role: 'admin' }))
      const missingTemplate = 2147480000
      const missingTask = 2147480001
      const byTemplate: Array<[string, 'GET' | 'POST', (id: number) => Record<string, unknown>]> = [
        ['get_template_schemes', 'GET', (id) => ({ template_id: id })],
        ['create_template_scheme', 'POST', (id) => ({ template_id: id, name: 's', data: ['x'] })],
        ['preview_task_tree', 'POST', (id) => ({ template_id: id })],
        ['get_node_execution_record', 'GET', (id) => ({ template_id: id, template_node_id: 'n' })],
      ]
      for (const [api, method, params] of byTemplate) {
        const call = (id: number) =>
          method === 'GET' ? other.get(api, params(id) as never) : other.post(api, params(id))
        const theirs = await call(template)
        const none = await call(missingTemplate)
        expect(theirs.body, api).toMatchObject({ result: false, code: 3540400 })
        expect(theirs.body.message.replace(String(template), '#'), api).toBe(
          none.body.message.replace(String(missingTemplate), '#'),
        )
      }
      for (const [api, method] of [
        ['get_task_effective_time', 'GET'],
        ['modify_constants_for_task', 'POST'],
      ] as const) {
        const call = (id: number) =>
          method === 'GET' ? other.get(api, { task_id: id }) : other.post(api, { task_id: id })
        const theirs = await call(task)
        const none = await call(missingTask)
        expect(theirs.body, api).toMatchObject({ result: false, code: 3540400 })
        expect(theirs.body.message.replace(String(task), '#'), api).toBe(
          none.body.message.replace(String(missingTask), '#'),
        )
      }
      const viewer = pythonClient(
        h,
        await makeIdentity(h.deps, { role: 'viewer', projectId: py.id.projectId }),
      )
      for (const [api, params] of [
        ['create_template_scheme', { template_id: template, name: 'v', data: ['x'] }],
        ['modify_constants_for_task', { task_id: task, constants: {} }],
        ['fast_create_task', { name: 'x', pipeline_tree: quickTree().tree }],
      ] as const) {
        expectRefusal(
          await viewer.post(api, params),
          3599999,
          /^permission denied: action (create_task|task_operate|template_edit) /,
        )
      }
      // a viewer reads
      ok(await viewer.get('get_template_schemes', { template_id: template }))
      ok(await viewer.post('preview_task_tree', { template_id: template }))
    })
  })

  describe('each API has a tRPC procedure on the same use case', () => {
    it('answers as the legacy route does', async () => {
      const api = createTRPCClient<AppRouter>({
        links: [httpLink({ url: `${h.url}/trpc`, headers: () => authHeader(py.id) })],
      })
      const bk_biz_id = py.id.bkBizId
      const fast = await api.task.fastCreate.mutate({
        bk_biz_id,
        name: 'via trpc',
        pipeline_tree: quickTree().tree,
      })
      expect(await api.task.modifyConstants.mutate({ bk_biz_id, task_id: fast.task_id, constants: {} })).toBe(
        'success',
      )
      expect(await api.task.count.query({ bk_biz_id, keyword: 'via trpc' })).toBe(1)
      expect((await api.task.countBy.query({ bk_biz_id, group_by: 'status' })).total).toBeGreaterThan(0)
      expect(await api.task.manualIntervention.query({ bk_biz_id, task_id_list: [fast.task_id] })).toEqual([
        { id: fast.task_id, manual_intervention_required: false },
      ])
      expect((await api.task.statuses.query({ bk_biz_id, task_id_list: [fast.task_id] }))[0]).toMatchObject({
        id: fast.task_id,
        status: { state: 'CREATED' },
      })
      expect((await api.project.list.query({})).map((p) => p.project_id)).toEqual([py.id.projectId])
      expect((await api.project.detail.query({ bk_biz_id })).project_id).toBe(py.id.projectId)
      expect((await api.plugin.list.query({})).map((p) => p.code)).toContain('sha256_text')
      expect((await api.plugin.detail.query({ code: 'fail' })).code).toBe('fail')
      expect(await api.template.commonList.query({})).toEqual(ok(await py.get('get_common_template_list')))
      const tpl = await api.template.create.mutate({ bk_biz_id, pipeline_tree: quickTree().tree })
      expect(
        (await api.template.preview.query({ bk_biz_id, template_id: tpl.template_id }))
          .constants_not_referred,
      ).toEqual({})
      expect(await api.template.schemes.query({ bk_biz_id, template_id: tpl.template_id })).toEqual([])
      const started = await api.task.createAndStart.mutate({
        bk_biz_id,
        template_id: tpl.template_id,
        name: 'go',
      })
      expect(started.task_id).toBeGreaterThan(0)
    })
  })
})
