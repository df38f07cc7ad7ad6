import { createTreeBuilder } from '@stdops/core/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createTask,
  createTemplate,
  expectEnvelope,
  expectParamInvalid,
  expectRefusal,
  LEGACY_TIME,
  type LegacyClient,
  legacyClient,
  ok,
  PUBLIC_URL,
  quickTree,
  recordsOf,
  rowCounts,
  sleepTree,
  stateOf,
  taskIn,
  waitForState,
} from './fixtures'
import { type Harness, makeIdentity, startHarness, waitFor } from './harness'

const DETAIL_KEYS = [
  'id',
  'project_id',
  'name',
  'creator',
  'create_time',
  'start_time',
  'finish_time',
  'executor',
  'elapsed_time',
  'template_id',
  'pipeline_tree',
  'constants',
  'outputs',
]

const NODE_KEYS = [
  'id',
  'name',
  'state',
  'retry',
  'skip',
  'loop',
  'version',
  'error_ignorable',
  'error_ignored',
  'elapsed_time',
  'start_time',
  'finish_time',
  'children',
]

type Status = Record<string, unknown> & { state: string; children: Record<string, Record<string, unknown>> }

describe('the task APIs', () => {
  let h: Harness
  let c: LegacyClient
  let sleepTemplate: number
  let quickTemplate: number
  const sleeping = sleepTree('600')
  const quick = quickTree()

  beforeAll(async () => {
    h = await startHarness({ env: { STDOPS_PUBLIC_URL: PUBLIC_URL } })
    c = legacyClient(h, await makeIdentity(h.deps, { role: 'admin' }))
    sleepTemplate = await createTemplate(c, sleeping.tree, 'sleeper')
    quickTemplate = await createTemplate(c, quick.tree, 'quick')
  })
  afterAll(async () => {
    await h?.close()
  })

  describe('create_task', () => {
    it('answers {task_id, task_url, pipeline_tree}, leaves the task CREATED and writes one create record', async () => {
      const reply = await c.post('create_task', {
        template_id: sleepTemplate,
        name: 'nightly deploy',
        description: 'the nightly one',
      })
      const data = ok<{ task_id: number; task_url: string; pipeline_tree: Record<string, unknown> }>(reply)
      expect(Object.keys(data).sort()).toEqual(['pipeline_tree', 'task_id', 'task_url'])
      expect(data.task_url).toBe(
        `${PUBLIC_URL}/taskflow/execute/${c.id.projectId}/?instance_id=${data.task_id}`,
      )
      expect(data.pipeline_tree).toEqual(sleeping.tree)
      expect(await stateOf(h, data.task_id)).toBe('CREATED')
      const records = await recordsOf(c, data.task_id)
      expect(records).toHaveLength(1)
      expect(records[0]).toMatchObject({
        operator: c.id.username,
        operate_type: 'create',
        operate_source: 'api',
        instance_id: data.task_id,
      })
      const row = await h.deps.db.prisma.task.findUniqueOrThrow({ where: { id: data.task_id } })
      expect(row).toMatchObject({
        name: 'nightly deploy',
        description: 'the nightly one',
        creator: c.id.username,
        templateId: sleepTemplate,
      })
    })

    it('constants override the template values, keyed ${key} or key; unknown keys are ignored', async () => {
      for (const constants of [{ '${wait}': '7' }, { wait: '7' }, { wait: '7', not_a_constant: 'x' }]) {
        const data = ok<{
          task_id: number
          pipeline_tree: { constants: Record<string, { value: unknown }> }
        }>(await c.post('create_task', { template_id: sleepTemplate, name: 'override', constants }))
        expect(data.pipeline_tree.constants['${wait}']!.value).toBe('7')
        expect(Object.keys(data.pipeline_tree.constants)).toEqual(['${wait}'])
        const detail = ok<{ constants: Record<string, { value: unknown }> }>(
          await c.get('get_task_detail', { task_id: data.task_id }),
        )
        expect(detail.constants['${wait}']!.value).toBe('7')
      }
      // the template itself is unchanged
      const info = ok<{ pipeline_tree: { constants: Record<string, { value: unknown }> } }>(
        await c.get('get_template_info', { template_id: sleepTemplate }),
      )
      expect(info.pipeline_tree.constants['${wait}']!.value).toBe('600')
    })

    it('a valid callback_url is kept on the task', async () => {
      for (const url of ['http://example.com/hook', 'https://hooks.example.org:8443/a/b?c=d']) {
        const taskId = await createTask(c, sleepTemplate, { callback_url: url })
        expect((await h.deps.db.prisma.task.findUniqueOrThrow({ where: { id: taskId } })).callbackUrl).toBe(
          url,
        )
      }
    })

    it('a callback_url that is not an http(s) URL is refused naming callback_url, and writes nothing', async () => {
      for (const callback_url of [
        'ftp://example.com/x',
        'example.com/x',
        'http://',
        'javascript:alert(1)',
        '',
        'https:// space',
        42,
      ]) {
        const before = await rowCounts(h)
        expectParamInvalid(
          await c.post('create_task', { template_id: sleepTemplate, name: 'x', callback_url }),
          'callback_url',
        )
        expect(await rowCounts(h)).toEqual(before)
      }
    })

    it('a name of 1 to 100 characters is accepted; empty, missing, 101 characters or not a string is refused', async () => {
      await createTask(c, sleepTemplate, { name: 'a' })
      await createTask(c, sleepTemplate, { name: 'b'.repeat(100) })
      const before = await rowCounts(h)
      for (const name of ['', 'c'.repeat(101), 7, null, ['x'], undefined]) {
        expectParamInvalid(await c.post('create_task', { template_id: sleepTemplate, name }), 'name')
      }
      expect(await rowCounts(h)).toEqual(before)
    })

    it('a pipeline_tree override replaces the template tree', async () => {
      const own = quickTree()
      const data = ok<{ task_id: number; pipeline_tree: unknown }>(
        await c.post('create_task', {
          template_id: sleepTemplate,
          name: 'own tree',
          pipeline_tree: own.tree,
        }),
      )
      expect(data.pipeline_tree).toEqual(own.tree)
      const detail = ok(await c.get('get_task_detail', { task_id: data.task_id }))
      expect(detail.pipeline_tree).toEqual(own.tree)
      expect(detail.template_id).toBe(String(sleepTemplate))
    })

    it('an invalid pipeline_tree override is refused with 3540000 naming the rule, and writes nothing', async () => {
      const b = createTreeBuilder()
      const act = b.activity('rm_rf_slash')
      b.chain(b.startId, act, b.endId)
      const before = await rowCounts(h)
      expectParamInvalid(
        await c.post('create_task', {
          template_id: sleepTemplate,
          name: 'bad tree',
          pipeline_tree: b.build(),
        }),
        `invalid pipeline_tree: activity ${act} uses unknown component rm_rf_slash`,
      )
      expectParamInvalid(
        await c.post('create_task', {
          template_id: sleepTemplate,
          name: 'bad tree',
          pipeline_tree: { start_event: {} },
        }),
        /^invalid pipeline_tree: /,
      )
      expectParamInvalid(
        await c.post('create_task', { template_id: sleepTemplate, name: 'bad tree', pipeline_tree: 'nope' }),
        'pipeline_tree',
      )
      expect(await rowCounts(h)).toEqual(before)
    })

    it('constants that are not an object are refused naming constants', async () => {
      for (const constants of [[1, 2], 'wait=1', 5]) {
        expectParamInvalid(
          await c.post('create_task', { template_id: sleepTemplate, name: 'x', constants }),
          'constants',
        )
      }
    })

    it('a template that does not exist is 3540400 naming it', async () => {
      expectRefusal(
        await c.post('create_task', { template_id: 7777777, name: 'x' }),
        3540400,
        `template[id=7777777] does not exist in project(${c.id.bkBizId})`,
      )
    })
  })

  describe('create_and_start_task', () => {
    it('answers like create_task, the task is RUNNING as the reply arrives, and records create then start', async () => {
      const reply = await c.post('create_and_start_task', { template_id: sleepTemplate, name: 'go now' })
      const data = ok<{ task_id: number; task_url: string; pipeline_tree: unknown }>(reply)
      expect(Object.keys(data).sort()).toEqual(['pipeline_tree', 'task_id', 'task_url'])
      expect(await stateOf(h, data.task_id)).toBe('RUNNING')
      const records = await recordsOf(c, data.task_id)
      expect(records.map((r) => [r.operate_type, r.operate_source, r.operator])).toEqual([
        ['create', 'api', c.id.username],
        ['start', 'api', c.id.username],
      ])
      const detail = ok(await c.get('get_task_detail', { task_id: data.task_id }))
      expect(detail.executor).toBe(c.id.username)
      expect(detail.start_time).toMatch(LEGACY_TIME)
    })

    it('a quick tree runs to FINISHED', async () => {
      const taskId = ok<{ task_id: number }>(
        await c.post('create_and_start_task', { template_id: quickTemplate, name: 'quick one' }),
      ).task_id
      await waitForState(c, taskId, 'FINISHED')
    })

    it('refusals of create_and_start_task write no task', async () => {
      const before = await rowCounts(h)
      expectParamInvalid(
        await c.post('create_and_start_task', { template_id: sleepTemplate, name: '' }),
        'name',
      )
      expectRefusal(
        await c.post('create_and_start_task', { template_id: 9999999, name: 'x' }),
        3540400,
        `template[id=9999999] does not exist in project(${c.id.bkBizId})`,
      )
      expect(await rowCounts(h)).toEqual(before)
    })
  })

  describe('get_task_status', () => {
    it('a task never started has exactly the CREATED shape of bk-sops', async () => {
      const taskId = await createTask(c, sleepTemplate, { name: 'not yet' })
      const status = ok(await c.get('get_task_status', { task_id: taskId }))
      expect(status).toEqual({
        id: taskId,
        name: 'not yet',
        state: 'CREATED',
        retry: 0,
        skip: 0,
        elapsed_time: 0,
        start_time: null,
        finish_time: null,
        children: {},
      })
    })

    it('a running task shows RUNNING, running_nodes, its start time and its nodes', async () => {
      const taskId = await taskIn(c, sleepTemplate, 'RUNNING')
      const status = await waitFor(async () => {
        const s = ok<Status>(await c.get('get_task_status', { task_id: taskId }))
        return s.children[sleeping.sleepId]?.state === 'RUNNING' ? s : undefined
      })
      expect(status).toMatchObject({
        id: taskId,
        state: 'RUNNING',
        retry: 0,
        skip: false,
        loop: 1,
        finish_time: null,
      })
      // the sleeping activity is the one node running
      expect(status.running_nodes).toBe(1)
      expect(status.start_time).toMatch(LEGACY_TIME)
      expect(Number.isInteger(status.elapsed_time)).toBe(true)
      const node = status.children[sleeping.sleepId]!
      expect(Object.keys(node)).toEqual(expect.arrayContaining(NODE_KEYS))
      expect(node).toMatchObject({
        id: sleeping.sleepId,
        name: 'wait a while',
        finish_time: null,
        children: {},
      })
      expect(node.start_time).toMatch(LEGACY_TIME)
      const start = status.children[sleeping.startId]
      expect(start).toMatchObject({ name: '', state: 'FINISHED' })
    })

    it('a finished task shows FINISHED with every node finished and no running nodes', async () => {
      const taskId = ok<{ task_id: number }>(
        await c.post('create_and_start_task', { template_id: quickTemplate, name: 'done soon' }),
      ).task_id
      const status = (await waitForState(c, taskId, 'FINISHED')) as Status
      expect(status.finish_time).toMatch(LEGACY_TIME)
      expect(status.running_nodes).toBe(0)
      expect(Object.keys(status.children).sort()).toEqual(
        [quick.activityId, quick.endId, quick.startId].sort(),
      )
      for (const node of Object.values(status.children)) {
        expect(node.state).toBe('FINISHED')
        expect(node.finish_time).toMatch(LEGACY_TIME)
      }
      expect(status.children[quick.activityId]!.name).toBe('say hello')
      expect(status.children[quick.endId]!.name).toBe('')
    })

    it('a suspended task shows SUSPENDED and a revoked one REVOKED with its finish time', async () => {
      const suspended = await taskIn(c, sleepTemplate, 'SUSPENDED')
      expect(ok<Status>(await c.get('get_task_status', { task_id: suspended })).state).toBe('SUSPENDED')
      const revoked = await taskIn(c, sleepTemplate, 'REVOKED')
      const status = ok<Status>(await c.get('get_task_status', { task_id: revoked }))
      expect(status.state).toBe('REVOKED')
      expect(status.finish_time).toMatch(LEGACY_TIME)
    })
  })

  describe('get_tasks_status', () => {
    it('answers {id, name, status, create_time, start_time, finish_time, url} for each task of the project, leaving out unknown ids', async () => {
      const a = await createTask(c, sleepTemplate, { name: 'first of many' })
      const b = await taskIn(c, sleepTemplate, 'RUNNING')
      const list = ok<Array<Record<string, unknown>>>(
        await c.post('get_tasks_status', { task_id_list: [a, String(b), 8888888] }),
      )
      expect(list.map((t) => t.id).sort()).toEqual([a, b].sort())
      for (const t of list) {
        expect(Object.keys(t)).toEqual(
          expect.arrayContaining(['id', 'name', 'status', 'create_time', 'start_time', 'finish_time', 'url']),
        )
        expect(t.url).toBe(`${PUBLIC_URL}/taskflow/execute/${c.id.projectId}/?instance_id=${t.id}`)
        expect(t.create_time).toMatch(LEGACY_TIME)
      }
      const byId = new Map(list.map((t) => [t.id, t]))
      expect(byId.get(a)).toMatchObject({
        name: 'first of many',
        start_time: '',
        finish_time: '',
        status: { state: 'CREATED', start_time: '', finish_time: '' },
        flow_type: 'common',
        current_flow: 'execute_task',
        is_deleted: false,
      })
      expect(byId.get(b)).toMatchObject({ status: { state: 'RUNNING' } })
      expect(byId.get(b)!.start_time).toMatch(LEGACY_TIME)
    })

    it('takes at most 50 ids', async () => {
      ok(await c.post('get_tasks_status', { task_id_list: Array.from({ length: 50 }, (_, i) => i + 1) }))
      expectParamInvalid(
        await c.post('get_tasks_status', { task_id_list: Array.from({ length: 51 }, (_, i) => i + 1) }),
        'task_id_list',
      )
    })

    it('refuses a missing or malformed task_id_list', async () => {
      for (const task_id_list of [undefined, 'abc', [1, 'abc'], [0], { 0: 1 }]) {
        expectParamInvalid(await c.post('get_tasks_status', { task_id_list }), 'task_id_list')
      }
    })
  })

  describe('get_task_detail', () => {
    it('has every key bk-sops documents, with the values of a created task', async () => {
      const taskId = await createTask(c, sleepTemplate, { name: 'detailed', constants: { wait: '9' } })
      const detail = ok(await c.get('get_task_detail', { task_id: taskId }))
      expect(Object.keys(detail)).toEqual(expect.arrayContaining(DETAIL_KEYS))
      expect(detail).toMatchObject({
        id: taskId,
        project_id: c.id.projectId,
        name: 'detailed',
        creator: c.id.username,
        start_time: '',
        finish_time: '',
        elapsed_time: 0,
        template_id: String(sleepTemplate),
      })
      expect(detail.create_time).toMatch(LEGACY_TIME)
      expect((detail.constants as Record<string, { value: unknown }>)['${wait}']!.value).toBe('9')
    })

    it('of a finished task: executor, start and finish times, elapsed_time in whole seconds, and outputs', async () => {
      const taskId = ok<{ task_id: number }>(
        await c.post('create_and_start_task', { template_id: quickTemplate, name: 'with outputs' }),
      ).task_id
      await waitForState(c, taskId, 'FINISHED')
      const detail = ok(await c.get('get_task_detail', { task_id: taskId }))
      expect(detail.executor).toBe(c.id.username)
      expect(detail.start_time).toMatch(LEGACY_TIME)
      expect(detail.finish_time).toMatch(LEGACY_TIME)
      expect(Number.isInteger(detail.elapsed_time)).toBe(true)
      expect(detail.elapsed_time as number).toBeGreaterThanOrEqual(0)
      expect(JSON.stringify(detail.outputs)).toContain('hello')
    })
  })

  describe('get_task_list', () => {
    // A project of its own, so the counts are exact.
    let l: LegacyClient
    let t1: number
    let t2: number
    const ids: Record<string, number> = {}

    beforeAll(async () => {
      l = legacyClient(h, await makeIdentity(h.deps, { role: 'admin' }))
      t1 = await createTemplate(l, sleeping.tree, 'list sleeper')
      t2 = await createTemplate(l, quick.tree, 'list quick')
      ids.alphaCreated = await createTask(l, t1, { name: 'alpha created' })
      ids.alphaRunning = await taskIn(l, t1, 'RUNNING', { name: 'alpha running' })
      ids.betaFinished = ok<{ task_id: number }>(
        await l.post('create_and_start_task', { template_id: t2, name: 'beta finished' }),
      ).task_id
      ids.percent = await createTask(l, t1, { name: 'deploy 100% done' })
      ids.gammaRevoked = await taskIn(l, t1, 'REVOKED')
      await waitForState(l, ids.betaFinished, 'FINISHED')
    })

    const list = async (query: Record<string, string | number | boolean> = {}) => {
      const reply = await l.get('get_task_list', query)
      expectEnvelope(reply, ['count'])
      return {
        ids: ok<Array<{ id: number }>>(reply).map((t) => t.id),
        count: reply.body.count as number,
        data: reply.body.data as Array<Record<string, unknown>>,
      }
    }

    it('lists the newest first with count beside data', async () => {
      const all = await list()
      expect(all.ids).toEqual(Object.values(ids).sort((x, y) => y - x))
      expect(all.count).toBe(5)
      const first = all.data.find((t) => t.id === ids.alphaCreated)!
      expect(first).toMatchObject({ name: 'alpha created' })
      expect(first.create_time).toMatch(LEGACY_TIME)
    })

    it('filters by keyword, a part of the name', async () => {
      expect((await list({ keyword: 'alpha' })).ids.sort()).toEqual(
        [ids.alphaCreated, ids.alphaRunning].sort(),
      )
      expect((await list({ keyword: 'alpha' })).count).toBe(2)
      expect((await list({ keyword: 'running' })).ids).toEqual([ids.alphaRunning])
      expect((await list({ keyword: '100%' })).ids).toEqual([ids.percent])
      expect((await list({ keyword: 'nothing like this' })).ids).toEqual([])
    })

    it('a keyword is matched literally: % and _ are not wildcards', async () => {
      expect((await list({ keyword: '%' })).ids).toEqual([ids.percent])
      expect((await list({ keyword: '_' })).ids).toEqual([])
      expect((await list({ keyword: 'alpha%created' })).ids).toEqual([])
      expect((await list({ keyword: 'alph_' })).ids).toEqual([])
    })

    it("a keyword matches whatever its case, as bk-sops's icontains does, on every database", async () => {
      expect((await list({ keyword: 'ALPHA' })).ids.sort()).toEqual(
        [ids.alphaCreated, ids.alphaRunning].sort(),
      )
      expect((await list({ keyword: 'Beta Finished' })).ids).toEqual([ids.betaFinished])
    })

    it('filters by is_started and is_finished', async () => {
      expect((await list({ is_started: true })).ids.sort()).toEqual(
        [ids.alphaRunning, ids.betaFinished, ids.gammaRevoked].sort(),
      )
      expect((await list({ is_started: 'false' })).ids.sort()).toEqual([ids.alphaCreated, ids.percent].sort())
      expect((await list({ is_finished: true })).ids).toEqual([ids.betaFinished])
      expect((await list({ is_finished: 0 })).count).toBe(4)
      expect((await list({ is_started: 1, is_finished: 'false' })).ids.sort()).toEqual(
        [ids.alphaRunning, ids.gammaRevoked].sort(),
      )
    })

    it('filters by template_id and executor', async () => {
      expect((await list({ template_id: t2 })).ids).toEqual([ids.betaFinished])
      expect((await list({ template_id: t1 })).count).toBe(4)
      expect((await list({ executor: l.id.username })).count).toBe(3)
      expect((await list({ executor: 'nobody' })).count).toBe(0)
    })

    it('filters by create time', async () => {
      expect((await list({ create_time_start: '2000-01-01 00:00:00' })).count).toBe(5)
      expect((await list({ create_time_end: '2000-01-01' })).count).toBe(0)
      expect((await list({ create_time_start: '2999-01-01 00:00:00' })).count).toBe(0)
      expectParamInvalid(
        await l.get('get_task_list', { create_time_start: 'yesterday' }),
        'create_time_start',
      )
    })

    it('pages with offset and limit; count stays the total', async () => {
      const all = (await list()).ids
      const page = await list({ limit: 2 })
      expect(page.ids).toEqual(all.slice(0, 2))
      expect(page.count).toBe(5)
      expect((await list({ offset: 1, limit: 2 })).ids).toEqual(all.slice(1, 3))
      expect((await list({ offset: 4, limit: 200 })).ids).toEqual(all.slice(4))
      expect((await list({ offset: 5 })).ids).toEqual([])
      expect((await list({ limit: 1 })).ids).toEqual(all.slice(0, 1))
    })

    it('refuses a negative limit or offset and non-numbers', async () => {
      for (const limit of [-1, 'ten', '1.5'])
        expectParamInvalid(await l.get('get_task_list', { limit }), 'limit')
      for (const offset of [-1, 'x', '2.5'])
        expectParamInvalid(await l.get('get_task_list', { offset }), 'offset')
      expectParamInvalid(await l.get('get_task_list', { is_started: 'maybe' }), 'is_started')
      expectParamInvalid(await l.get('get_task_list', { template_id: 'abc' }), 'template_id')
    })
  })

  describe('get_task_operate_record', () => {
    it('lists records oldest first with operator, operate_type, operate_source, operate_date, node_id, instance_id, project_id', async () => {
      const taskId = await taskIn(c, sleepTemplate, 'SUSPENDED')
      ok(await c.post('operate_task', { task_id: taskId, action: 'resume' }))
      const records = await recordsOf(c, taskId)
      expect(records.map((r) => r.operate_type)).toEqual(['create', 'start', 'pause', 'resume'])
      for (const r of records) {
        expect(r).toMatchObject({
          operator: c.id.username,
          operate_source: 'api',
          node_id: '',
          instance_id: taskId,
          project_id: c.id.projectId,
        })
        expect(r.operate_date).toMatch(LEGACY_TIME)
      }
      const dates = records.map((r) => r.operate_date)
      expect([...dates].sort()).toEqual(dates)
    })

    it('filters by node_id: a node without operations has none', async () => {
      const taskId = await taskIn(c, sleepTemplate, 'RUNNING')
      expect(await recordsOf(c, taskId, { node_id: sleeping.sleepId })).toEqual([])
      expect(await recordsOf(c, taskId, { node_id: 'no-such-node' })).toEqual([])
      expect((await recordsOf(c, taskId)).length).toBe(2)
    })
  })
})
