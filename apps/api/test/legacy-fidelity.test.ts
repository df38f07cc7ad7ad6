import { createTreeBuilder } from '@stdops/core/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createTemplate,
  expectEnvelope,
  expectParamInvalid,
  LEGACY_TIME,
  legacyClient,
  ok,
  PUBLIC_URL,
  quickTree,
  rowCounts,
  sleepTree,
} from './fixtures'
import { type Harness, lib, makeIdentity, startHarness, waitFor } from './harness'
import { type PythonClient, type PyValue, pythonClient } from './python-client'

/**
 * The second release's fidelity fixes, each sent as bk-sops's Python clients send it (JSON with no
 * Content-Type, `True`/`False` in query strings, credentials among the parameters) and checked
 * against the reply shape bk-sops documents.
 */

type Item = Record<string, unknown>

/** start → a → b → c → end, all optional; b's input reads `${b_only}`, which nothing else reads. */
function threeOptional() {
  const b = createTreeBuilder()
  b.constant('b_only', 'for b')
  const data = (v: string) => ({ variables: { hook: false, value: { step: v } } })
  const a = b.activity('set_variables', { name: 'a', optional: true, data: data('a') })
  const mid = b.activity('set_variables', {
    name: 'b',
    optional: true,
    data: { variables: { hook: true, value: { v: '${b_only}' } } },
  })
  const c = b.activity('set_variables', { name: 'c', optional: true, data: data('c') })
  const fixed = b.activity('set_variables', { name: 'fixed', data: data('fixed') })
  b.chain(b.startId, a, mid, c, fixed, b.endId)
  return { tree: b.build(), a, b: mid, c, fixed }
}

/** start → fail → end: the node fails and the task waits (displayed FAILED). */
function failingTree() {
  const b = createTreeBuilder()
  const f = b.activity('fail', { name: 'breaks', data: { message: { hook: false, value: 'disk full' } } })
  b.chain(b.startId, f, b.endId)
  return { tree: b.build(), failId: f }
}

describe('the legacy API as bk-sops clients call it', () => {
  let h: Harness
  let py: PythonClient
  const three = threeOptional()
  let threeTemplate: number
  let quickTemplate: number
  let sleepTemplate: number
  let failTemplate: number

  const finished = (taskId: number) =>
    waitFor(async () => {
      const s = (await py.get('get_task_status', { task_id: taskId })).body.data as Item | null
      return s?.state === 'FINISHED' ? s : undefined
    })

  beforeAll(async () => {
    // callback_url on 127.0.0.1 (a port nothing listens on) must be allowed to be accepted
    h = await startHarness({ env: { STDOPS_PUBLIC_URL: PUBLIC_URL, STDOPS_OUTBOUND_ALLOW: '127.0.0.1' } })
    const id = await makeIdentity(h.deps, { role: 'admin' })
    py = pythonClient(h, id)
    const c = legacyClient(h, id)
    threeTemplate = await createTemplate(c, three.tree, 'three optional')
    quickTemplate = await createTemplate(c, quickTree().tree, 'Quick One')
    sleepTemplate = await createTemplate(c, sleepTree('600').tree, 'sleeper')
    failTemplate = await createTemplate(c, failingTree().tree, 'breaker')
  })
  afterAll(async () => {
    await h?.close()
  })

  describe('create_task: exclude_task_nodes_id, execute_task_nodes_id, template_schemes_id', () => {
    it('excluding one of three optional activities runs the other two and joins the flows around it', async () => {
      const data = ok<{ task_id: number; pipeline_tree: Item }>(
        await py.post('create_and_start_task', {
          template_id: String(threeTemplate),
          name: 'two of three',
          exclude_task_nodes_id: [three.b],
        }),
      )
      const activities = data.pipeline_tree.activities as Record<string, Item>
      expect(Object.keys(activities).sort()).toEqual([three.a, three.c, three.fixed].sort())
      // a now leads straight to c, and b's own constant is gone from the task
      const flows = data.pipeline_tree.flows as Record<string, Item>
      expect(flows[activities[three.a]!.outgoing as string]!.target).toBe(three.c)
      expect(Object.keys(data.pipeline_tree.constants as Item)).toEqual([])
      const status = await finished(data.task_id)
      const children = status.children as Record<string, Item>
      for (const id of [three.a, three.c, three.fixed])
        expect(children[id]).toMatchObject({ state: 'FINISHED' })
      expect(children[three.b]).toBeUndefined()
      const rows = await h.deps.db.prisma.nodeState.findMany({ where: { taskId: data.task_id } })
      expect(rows.some((r) => r.nodeId === three.b)).toBe(false)
    })

    it('refuses to exclude an activity that is not optional, or that is not in the tree, and writes nothing', async () => {
      const before = await rowCounts(h)
      expectParamInvalid(
        await py.post('create_task', {
          template_id: threeTemplate,
          name: 'x',
          exclude_task_nodes_id: [three.fixed],
        }),
        `invalid param: exclude_task_nodes_id: task node[id=${three.fixed}] is not optional`,
      )
      expectParamInvalid(
        await py.post('create_task', {
          template_id: threeTemplate,
          name: 'x',
          exclude_task_nodes_id: ['nowhere'],
        }),
        'task node[id=nowhere] is not in template pipeline tree',
      )
      expect(await rowCounts(h)).toEqual(before)
    })

    it('execute_task_nodes_id runs only the optional activities it names (and every fixed one)', async () => {
      const data = ok<{ pipeline_tree: Item }>(
        await py.post('create_task', {
          template_id: threeTemplate,
          name: 'only c',
          execute_task_nodes_id: [three.c],
          exclude_task_nodes_id: [three.a], // execute_task_nodes_id wins, as in bk-sops
        }),
      )
      expect(Object.keys(data.pipeline_tree.activities as Item).sort()).toEqual([three.c, three.fixed].sort())
    })

    it('a scheme made with create_template_scheme is listed by get_template_schemes and runs its nodes', async () => {
      const scheme = ok<Item>(
        await py.post('create_template_scheme', {
          template_id: String(threeTemplate),
          name: 'a and c',
          data: JSON.stringify([three.a, three.c]),
        }),
      )
      expect(scheme).toEqual({
        id: expect.any(Number),
        unique_id: `${threeTemplate}-a and c`,
        name: 'a and c',
        data: JSON.stringify([three.a, three.c]),
      })
      const schemes = ok<Item[]>(
        await py.get('get_template_schemes', { template_id: threeTemplate, with_constants: true }),
      )
      expect(schemes).toHaveLength(1)
      expect(schemes[0]).toMatchObject({ id: `${threeTemplate}-a and c`, name: 'a and c', data: scheme.data })
      expect(schemes[0]!.detail).toEqual({ constants: {} })

      for (const template_schemes_id of [
        [`${threeTemplate}-a and c`],
        scheme.id as number,
        [String(scheme.id)],
      ]) {
        const data = ok<{ pipeline_tree: Item }>(
          await py.post('create_task', {
            template_id: threeTemplate,
            name: 'by scheme',
            template_schemes_id,
          }),
        )
        expect(Object.keys(data.pipeline_tree.activities as Item).sort()).toEqual(
          [three.a, three.c, three.fixed].sort(),
        )
      }
      expectParamInvalid(
        await py.post('create_task', {
          template_id: threeTemplate,
          name: 'x',
          template_schemes_id: ['9-none'],
        }),
        /template_schemes_id: scheme "9-none" does not exist/,
      )
      expectParamInvalid(
        await py.post('create_task', {
          template_id: threeTemplate,
          name: 'x',
          template_schemes_id: [scheme.id as number],
          exclude_task_nodes_id: [three.a],
        }),
        'template_schemes_id: cannot be used together with exclude_task_nodes_id',
      )
      expectParamInvalid(
        await py.post('create_template_scheme', {
          template_id: threeTemplate,
          name: 'fixed',
          data: [three.fixed],
        }),
        `activity ${three.fixed} is not optional`,
      )
      expectParamInvalid(
        await py.post('create_template_scheme', {
          template_id: threeTemplate,
          name: 'a and c',
          data: [three.a],
        }),
        'already has a scheme named a and c',
      )
    })

    it('preview_task_tree shows the tree create_task runs, and the constants left unreferred', async () => {
      const preview = ok<{ pipeline_tree: Item; constants_not_referred: Item }>(
        await py.post('preview_task_tree', {
          template_id: String(threeTemplate),
          exclude_task_nodes_id: [three.b],
          version: '1.0.0',
        }),
      )
      expect(Object.keys(preview).sort()).toEqual(['constants_not_referred', 'pipeline_tree'])
      expect(Object.keys(preview.constants_not_referred)).toEqual(['${b_only}'])
      const created = ok<{ pipeline_tree: Item }>(
        await py.post('create_task', {
          template_id: threeTemplate,
          name: 'same',
          exclude_task_nodes_id: [three.b],
        }),
      )
      expect(created.pipeline_tree).toEqual(preview.pipeline_tree)
      expectParamInvalid(
        await py.post('preview_task_tree', {
          template_id: threeTemplate,
          exclude_task_nodes_id: [three.fixed],
        }),
        'is not optional',
      )
    })

    it('simplify_vars turns the named constants into text variables; callback_version is kept', async () => {
      const data = ok<{ task_id: number; pipeline_tree: Item }>(
        await py.post('create_task', {
          template_id: sleepTemplate,
          name: 'simple',
          constants: { '${wait}': '7' },
          simplify_vars: ['${wait}'],
          callback_url: 'http://127.0.0.1:9/hook',
          callback_version: 'v2',
        }),
      )
      expect((data.pipeline_tree.constants as Record<string, Item>)['${wait}']).toMatchObject({
        value: '7',
        source_type: 'custom',
        custom_type: 'textarea',
      })
      const row = await h.deps.db.prisma.task.findUniqueOrThrow({ where: { id: data.task_id } })
      expect(row.callbackVersion).toBe('v2')
      expectParamInvalid(
        await py.post('create_task', { template_id: sleepTemplate, name: 'x', callback_version: 'v3' }),
        'callback_version',
      )
      expectParamInvalid(
        await py.post('create_task', { template_id: sleepTemplate, name: 'x', flow_type: 'common_func' }),
        'flow_type',
      )
    })
  })

  describe('start_task and get_task_status', () => {
    it('start_task sends task_url in data and beside the envelope', async () => {
      const taskId = ok<{ task_id: number }>(
        await py.post('create_task', { template_id: sleepTemplate, name: 's' }),
      ).task_id
      const reply = await py.post('start_task', { task_id: String(taskId) })
      const url = `${PUBLIC_URL}/taskflow/execute/${py.id.projectId}/?instance_id=${taskId}`
      expect(reply.body).toMatchObject({ result: true, data: { task_url: url }, task_url: url })
      expectEnvelope(reply, ['task_url'])
      ok(await py.post('operate_task', { task_id: taskId, action: 'revoke' }))
    })

    it('with_ex_data=True adds ex_data: {node_id: error} at the top', async () => {
      const taskId = ok<{ task_id: number }>(
        await py.post('create_and_start_task', { template_id: failTemplate, name: 'fails' }),
      ).task_id
      const { failId } = failingTree()
      const status = await waitFor(async () => {
        const s = ok<Item>(await py.get('get_task_status', { task_id: taskId, with_ex_data: true }))
        return s.state === 'FAILED' ? s : undefined
      })
      expect(status.ex_data).toEqual({ [failId]: 'disk full' })
      const plain = ok<Item>(await py.get('get_task_status', { task_id: taskId, with_ex_data: false }))
      expect(plain.ex_data).toBeUndefined()
    })
  })

  describe('get_tasks_status', () => {
    it('reports FAILED while a node has failed, with bk-sops keys, "" for unset times and the children on request', async () => {
      const failed = ok<{ task_id: number }>(
        await py.post('create_and_start_task', { template_id: failTemplate, name: 'broken' }),
      ).task_id
      const created = ok<{ task_id: number }>(
        await py.post('create_task', { template_id: sleepTemplate, name: 'idle' }),
      ).task_id
      const list = await waitFor(async () => {
        const l = ok<Item[]>(
          await py.post('get_tasks_status', {
            task_id_list: [failed, created],
            include_children_status: true,
          }),
        )
        return (l.find((t) => t.id === failed)?.status as Item | undefined)?.state === 'FAILED'
          ? l
          : undefined
      })
      const byId = new Map(list.map((t) => [t.id, t]))
      const f = byId.get(failed)!
      expect(Object.keys(f).sort()).toEqual(
        [
          'children',
          'create_time',
          'current_flow',
          'finish_time',
          'flow_type',
          'id',
          'is_deleted',
          'name',
          'start_time',
          'status',
          'url',
        ].sort(),
      )
      expect(f).toMatchObject({
        flow_type: 'common',
        current_flow: 'execute_task',
        is_deleted: false,
        finish_time: '',
      })
      expect(f.status).toMatchObject({ state: 'FAILED', retry: 0, loop: 1, skip: false, finish_time: '' })
      expect((f.status as Item).start_time).toMatch(LEGACY_TIME)
      expect((f.children as Record<string, Item>)[failingTree().failId]).toMatchObject({ state: 'FAILED' })
      expect(byId.get(created)).toMatchObject({
        start_time: '',
        finish_time: '',
        status: { state: 'CREATED' },
      })
      expect(ok(await py.post('get_tasks_status', { task_id_list: [] }))).toEqual([])
      const without = ok<Item[]>(await py.post('get_tasks_status', { task_id_list: [created] }))
      expect(without[0]!.children).toBeUndefined()
    })
  })

  describe('get_task_detail', () => {
    it('lists outputs as {key, name, value}, adds ex_data, project_name and create_method, "" for unset times', async () => {
      const taskId = ok<{ task_id: number }>(
        await py.post('create_and_start_task', { template_id: quickTemplate, name: 'with outputs' }),
      ).task_id
      await finished(taskId)
      const detail = ok<Item>(await py.get('get_task_detail', { task_id: taskId }))
      expect(detail.outputs).toEqual([{ key: '${result}', name: 'result', value: 'hello' }])
      expect(detail).toMatchObject({
        ex_data: '',
        create_method: 'api',
        template_id: String(quickTemplate),
        project_id: py.id.projectId,
      })
      expect(typeof detail.project_name).toBe('string')
      expect(detail.finish_time).toMatch(LEGACY_TIME)
      const idle = ok<{ task_id: number }>(
        await py.post('create_task', { template_id: sleepTemplate, name: 'idle' }),
      ).task_id
      expect(ok(await py.get('get_task_detail', { task_id: idle }))).toMatchObject({
        start_time: '',
        finish_time: '',
        outputs: [],
      })
    })
  })

  describe('get_task_list', () => {
    it('reads True/False, cuts limit to 200, answers limit=0 with the count only, and honours without_count', async () => {
      const started = ok<Item[]>(await py.get('get_task_list', { is_started: true, limit: 500 }))
      expect(started.length).toBeGreaterThan(0)
      expect(started.every((t) => t.is_started === true)).toBe(true)
      const notStarted = await py.get('get_task_list', { is_started: false, is_finished: 'False' as PyValue })
      expect(ok<Item[]>(notStarted).every((t) => t.is_started === false)).toBe(true)
      const counted = await py.get('get_task_list', { limit: 0 })
      expect(counted.body.data).toEqual([])
      expect(counted.body.count).toBeGreaterThan(0)
      const uncounted = await py.get('get_task_list', { without_count: true })
      expect(uncounted.body.count).toBeUndefined()
      expectEnvelope(uncounted)
      expectParamInvalid(await py.get('get_task_list', { is_started: 'yes' }), 'is_started')
    })

    it('filters by create_method, template_ids and ISO 8601 times; items carry bk-sops keys with template_id a string', async () => {
      const mine = ok<Item[]>(
        await py.get('get_task_list', {
          template_ids: `${quickTemplate}, ${failTemplate}`,
          create_method: 'api',
        }),
      )
      expect(mine.length).toBeGreaterThan(0)
      expect(new Set(mine.map((t) => t.template_id))).toEqual(
        new Set([String(quickTemplate), String(failTemplate)]),
      )
      for (const t of mine) {
        expect(t).toMatchObject({
          create_method: 'api',
          category: 'Other',
          template_source: 'project',
          is_child_taskflow: false,
          project_id: py.id.projectId,
          bk_biz_id: py.id.bkBizId,
        })
        expect(typeof t.project_name).toBe('string')
        expect(typeof t.bk_biz_name).toBe('string')
      }
      const future = new Date(Date.now() + 3_600_000).toISOString().replace(/\.\d+Z$/, 'Z')
      expect(ok(await py.get('get_task_list', { create_time_start: future }))).toEqual([])
      const past = ok<Item[]>(await py.get('get_task_list', { create_time_end: future, limit: 1 }))
      expect(past).toHaveLength(1)
      expect(
        ok(await py.get('get_task_list', { create_time_start: '2020-01-01 00:00:00+0800', limit: 1 })),
      ).toHaveLength(1)
      expect(ok(await py.get('get_task_list', { create_method: 'periodic' }))).toEqual([])
      expect(ok(await py.get('get_task_list', { is_child_taskflow: true }))).toEqual([])
      expectParamInvalid(
        await py.get('get_task_list', { create_time_start: '2024-13-01' }),
        'create_time_start',
      )
      expectParamInvalid(await py.get('get_task_list', { template_ids: '1,x' }), 'template_ids')
    })
  })

  describe('get_task_operate_record', () => {
    it('items carry operate_type_name, operate_source_name and extra_info', async () => {
      const taskId = ok<{ task_id: number }>(
        await py.post('create_and_start_task', { template_id: quickTemplate, name: 'recorded' }),
      ).task_id
      const records = ok<Item[]>(await py.get('get_task_operate_record', { task_id: taskId }))
      expect(records.map((r) => [r.operate_type, r.operate_type_name, r.operate_source_name])).toEqual([
        ['create', '创建', 'api 接口'],
        ['start', '执行', 'api 接口'],
      ])
      // stdops adds the app that made the call (see docs/legacy-api.md)
      for (const r of records) expect(r.extra_info).toEqual({ app_code: py.id.appCode })
    })
  })

  describe('templates', () => {
    it('create_template takes the tree as a JSON string and names a nameless template new<YYYYmmddHHMMSS>', async () => {
      const data = ok<Item>(
        await py.post('create_template', { pipeline_tree: JSON.stringify(quickTree().tree) }),
      )
      expect(data.template_name).toMatch(/^new\d{14}$/)
      expect(data.pipeline_template_id).toBe(String(data.template_id))
    })

    it('get_template_list filters by id_in and name_keyword (ignoring case); items carry category, description, project and business names', async () => {
      const byIds = ok<Item[]>(
        await py.get('get_template_list', { id_in: `${quickTemplate}, ${sleepTemplate}` }),
      )
      expect(byIds.map((t) => t.id).sort()).toEqual([quickTemplate, sleepTemplate].sort())
      const byName = ok<Item[]>(await py.get('get_template_list', { name_keyword: 'quick ONE' }))
      expect(byName.map((t) => t.id)).toEqual([quickTemplate])
      for (const key of ['category', 'description', 'project_name', 'bk_biz_name', 'project_id', 'bk_biz_id'])
        expect(byName[0]).toHaveProperty(key)
      expect(byName[0]!.category).toBe('Other')
      const withConstants = ok<Item[]>(
        await py.get('get_template_list', { id_in: String(sleepTemplate), include_constants: true }),
      )
      expect(Object.keys(withConstants[0]!.constants as Item)).toEqual(['${wait}'])
    })

    it('common templates: listed with template_source=common, read by get_template_info, run by create_task', async () => {
      const { id } = await lib.admin.addCommonTemplate(h.deps, {
        name: 'Shared Quick',
        pipeline_tree: quickTree().tree,
      })
      const listed = ok<Item[]>(await py.get('get_template_list', { template_source: 'common' }))
      expect(listed.map((t) => t.id)).toContain(id)
      expect(listed.find((t) => t.id === id)).toMatchObject({
        name: 'Shared Quick',
        template_source: 'common',
      })
      const info = ok<Item>(
        await py.get('get_template_info', {
          template_id: id,
          template_source: 'common',
          include_constants: true,
        }),
      )
      expect(info).toMatchObject({ id, name: 'Shared Quick', category: 'Other', template_source: 'common' })
      expect(Object.keys(info.constants as Item)).toEqual(['${result}'])
      const task = ok<{ task_id: number }>(
        await py.post('create_and_start_task', {
          template_id: id,
          template_source: 'common',
          name: 'from common',
        }),
      )
      await finished(task.task_id)
      const item = ok<Item[]>(await py.get('get_task_list', { keyword: 'from common' }))[0]!
      expect(item).toMatchObject({ template_source: 'common', template_id: String(id) })
      const common = ok<Item[]>(await py.get('get_common_template_list'))
      expect(common.map((t) => t.id)).toContain(id)
      expect(ok<Item>(await py.get('get_common_template_info', { template_id: id })).pipeline_tree).toEqual(
        quickTree().tree,
      )
      expect((await py.get('get_common_template_info', { template_id: 99999 })).body).toMatchObject({
        code: 3540400,
        message: 'common template[id=99999] does not exist',
      })
    })
  })
})
