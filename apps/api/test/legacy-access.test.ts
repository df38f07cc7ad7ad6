import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import * as admin from '../src/services/admin'
import {
  createTask,
  createTemplate,
  expectParamInvalid,
  expectRefusal,
  type LegacyClient,
  legacyClient,
  ok,
  quickTree,
  type Reply,
  rowCounts,
  stateOf,
} from './fixtures'
import { esb, type Harness, type Identity, makeIdentity, startHarness } from './harness'

const UNKNOWN_BIZ = 2_000_000_000

/** A reply without what differs from request to request, and with `[id=<id>]` in the message. */
const comparable = (r: Reply, id: number) => ({
  status: r.status,
  result: r.body.result,
  code: r.body.code,
  data: r.body.data,
  message: r.body.message.replace(`[id=${id}]`, '[id=<id>]'),
  keys: Object.keys(r.body).sort(),
})

describe('project resolution, ownership and permissions', () => {
  let h: Harness
  let adminA: Identity // admin of project A
  let a: LegacyClient
  let b: LegacyClient // admin of project B
  let templateA: number
  let templateB: number
  let taskA: number
  let taskB: number

  beforeAll(async () => {
    h = await startHarness({ worker: false })
    adminA = await makeIdentity(h.deps, { role: 'admin' })
    a = legacyClient(h, adminA)
    b = legacyClient(h, await makeIdentity(h.deps, { role: 'admin' }))
    templateA = await createTemplate(a, quickTree().tree, 'template of A')
    templateB = await createTemplate(b, quickTree().tree, 'template of B')
    taskA = await createTask(a, templateA, { name: 'task of A' })
    taskB = await createTask(b, templateB, { name: 'task of B' })
  })
  afterAll(async () => {
    await h?.close()
  })

  describe('check order: authentication, parameters, project, task, permission, operation', () => {
    it('authentication before parameters', async () => {
      const reply = await esb(h.url, 'operate_task', {
        body: { bk_biz_id: 'not-a-number', task_id: 'abc', action: 'pause' },
      })
      expectRefusal(reply, 1306000, 'APP Code [bk_app_code] cannot be empty')
      const get = await esb(h.url, 'get_task_status', { query: { bk_biz_id: -5, task_id: 'x' } })
      expectRefusal(get, 1306000, 'APP Code [bk_app_code] cannot be empty')
    })

    it('authentication in the header before a body that is not JSON', async () => {
      const reply = await esb(h.url, 'create_task', {
        raw: 'this is not json',
        headers: {
          'X-Bkapi-Authorization': JSON.stringify({
            bk_app_code: adminA.appCode,
            bk_app_secret: 'wrong-secret-012345',
            bk_token: adminA.token,
          }),
        },
      })
      expectRefusal(
        reply,
        1306000,
        `APP Secret verification failed, please confirm the APP Secret and APP Code [bk_app_code=${adminA.appCode}] match`,
      )
    })

    it('parameters before the project', async () => {
      const reply = await a.post('operate_task', { bk_biz_id: UNKNOWN_BIZ, task_id: 'abc', action: 'pause' })
      expectParamInvalid(reply, 'task_id')
      expectParamInvalid(await a.get('get_task_status', { bk_biz_id: UNKNOWN_BIZ, task_id: '0' }), 'task_id')
      expectParamInvalid(
        await a.post('create_task', { bk_biz_id: UNKNOWN_BIZ, template_id: templateA, name: '' }),
        'name',
      )
    })

    it('the project before the task', async () => {
      const reply = await a.post('operate_task', { bk_biz_id: UNKNOWN_BIZ, task_id: 999999, action: 'pause' })
      expectRefusal(reply, 3540400, `project(${UNKNOWN_BIZ}) with scope(cmdb_biz) does not exist.`)
    })

    it('the task before the permission', async () => {
      const viewer = legacyClient(
        h,
        await makeIdentity(h.deps, { role: 'viewer', projectId: adminA.projectId }),
      )
      const reply = await viewer.post('operate_task', { task_id: 999999, action: 'pause' })
      expectRefusal(reply, 3540400, `task[id=999999] does not exist in project(${adminA.bkBizId})`)
      const stranger = legacyClient(
        h,
        await makeIdentity(h.deps, { role: null, projectId: adminA.projectId }),
      )
      expectRefusal(
        await stranger.get('get_task_detail', { task_id: 999999 }),
        3540400,
        `task[id=999999] does not exist in project(${adminA.bkBizId})`,
      )
    })

    it('the template before the permission in create_task', async () => {
      const viewer = legacyClient(
        h,
        await makeIdentity(h.deps, { role: 'viewer', projectId: adminA.projectId }),
      )
      const reply = await viewer.post('create_task', { template_id: 999999, name: 'x' })
      expectRefusal(reply, 3540400, `template[id=999999] does not exist in project(${adminA.bkBizId})`)
    })

    it('the permission before the operation', async () => {
      const viewer = legacyClient(
        h,
        await makeIdentity(h.deps, { role: 'viewer', projectId: adminA.projectId }),
      )
      // the operation itself would be refused with "task not started"
      const reply = await viewer.post('operate_task', { task_id: taskA, action: 'pause' })
      expectRefusal(
        reply,
        3599999,
        `permission denied: action task_operate on project(${adminA.bkBizId}) for user ${viewer.id.username}`,
      )
      // and an unknown action with "task command is invalid"
      const bogus = await viewer.post('operate_task', { task_id: taskA, action: 'bogus' })
      expectRefusal(
        bogus,
        3599999,
        `permission denied: action task_operate on project(${adminA.bkBizId}) for user ${viewer.id.username}`,
      )
    })
  })

  describe('project resolution', () => {
    it('an unknown project answers 3540400 "project(<id>) with scope(<scope>) does not exist."', async () => {
      expectRefusal(
        await a.get('get_template_list', { bk_biz_id: UNKNOWN_BIZ }),
        3540400,
        `project(${UNKNOWN_BIZ}) with scope(cmdb_biz) does not exist.`,
      )
      expectRefusal(
        await a.get('get_template_list', { bk_biz_id: UNKNOWN_BIZ, scope: 'project' }),
        3540400,
        `project(${UNKNOWN_BIZ}) with scope(project) does not exist.`,
      )
    })

    it('an id beyond the 32-bit range names no project, and is not an internal error', async () => {
      const big = 2 ** 53 - 1
      expectRefusal(
        await a.get('get_template_list', { bk_biz_id: big }),
        3540400,
        `project(${big}) with scope(cmdb_biz) does not exist.`,
      )
      expectRefusal(
        await a.post('get_tasks_status', { bk_biz_id: 2147483648, task_id_list: [1] }),
        3540400,
        'project(2147483648) with scope(cmdb_biz) does not exist.',
      )
    })

    it('scope cmdb_biz is the default and resolves by the business id', async () => {
      const implicit = ok(await a.get('get_task_detail', { task_id: taskA }))
      const explicit = ok(await a.get('get_task_detail', { task_id: taskA, scope: 'cmdb_biz' }))
      expect(explicit).toEqual({ ...implicit, elapsed_time: explicit.elapsed_time })
      expect(implicit.project_id).toBe(adminA.projectId)
    })

    it("scope project resolves by the project's own id", async () => {
      expect(adminA.projectId).not.toBe(adminA.bkBizId)
      const byId = ok<Array<{ id: number }>>(
        await a.get('get_template_list', { bk_biz_id: adminA.projectId, scope: 'project' }),
      )
      const byBiz = ok<Array<{ id: number }>>(await a.get('get_template_list'))
      expect(byId).toEqual(byBiz)
      expect(byId.map((t) => t.id)).toEqual([templateA])
      ok(
        await a.post('operate_task', {
          bk_biz_id: adminA.projectId,
          scope: 'project',
          task_id: taskA,
          action: 'start',
        }),
      )
      expect(await stateOf(h, taskA)).toBe('RUNNING')
      // the business id is not a project id
      expectRefusal(
        await a.get('get_template_list', { scope: 'project' }),
        3540400,
        `project(${adminA.bkBizId}) with scope(project) does not exist.`,
      )
    })

    it('any other scope is a bad parameter (3540000)', async () => {
      for (const scope of ['biz', 'PROJECT', 'cmdb', '', 'project ']) {
        expectParamInvalid(await a.get('get_template_list', { scope }), 'scope')
        expectParamInvalid(await a.post('get_tasks_status', { scope, task_id_list: [taskA] }), 'scope')
      }
      expectParamInvalid(await a.post('get_tasks_status', { scope: 1, task_id_list: [taskA] }), 'scope')
    })
  })

  describe('ownership: a task or template of another project is answered exactly like a missing one', () => {
    const MISSING = 1_999_999

    const cases: Array<[string, 'GET' | 'POST', (id: number) => Record<string, unknown>]> = [
      ['get_task_status', 'GET', (id) => ({ task_id: id })],
      ['get_task_detail', 'GET', (id) => ({ task_id: id })],
      ['get_task_operate_record', 'GET', (id) => ({ task_id: id })],
      ['operate_task', 'POST', (id) => ({ task_id: id, action: 'revoke' })],
      ['start_task', 'POST', (id) => ({ task_id: id })],
    ]
    for (const [api, method, params] of cases) {
      it(`${api}: a task of another project gives the same reply as a task that does not exist`, async () => {
        const call = (id: number) =>
          method === 'GET' ? a.get(api, params(id) as Record<string, number>) : a.post(api, params(id))
        const foreign = await call(taskB)
        const missing = await call(MISSING)
        expectRefusal(foreign, 3540400, `task[id=${taskB}] does not exist in project(${adminA.bkBizId})`)
        expect(comparable(foreign, taskB)).toEqual(comparable(missing, MISSING))
      })
    }

    it('a user who is admin in both projects still cannot reach a task through the wrong project', async () => {
      const both = await makeIdentity(h.deps, { role: 'admin', projectId: adminA.projectId })
      await admin.grant(h.deps, both.username, b.id.projectId, 'admin')
      const viaA = legacyClient(h, both)
      expectRefusal(
        await viaA.get('get_task_status', { task_id: taskB }),
        3540400,
        `task[id=${taskB}] does not exist in project(${adminA.bkBizId})`,
      )
      ok(await viaA.get('get_task_status', { bk_biz_id: b.id.bkBizId, task_id: taskB }))
      expectRefusal(
        await viaA.post('operate_task', { task_id: taskB, action: 'start' }),
        3540400,
        `task[id=${taskB}] does not exist in project(${adminA.bkBizId})`,
      )
      expect(await stateOf(h, taskB)).toBe('CREATED')
    })

    it('get_template_info and create_task: a template of another project is answered like a missing one', async () => {
      const foreign = await a.get('get_template_info', { template_id: templateB })
      const missing = await a.get('get_template_info', { template_id: MISSING })
      expectRefusal(
        foreign,
        3540400,
        `template[id=${templateB}] does not exist in project(${adminA.bkBizId})`,
      )
      expect(comparable(foreign, templateB)).toEqual(comparable(missing, MISSING))
      const before = await rowCounts(h)
      const create = await a.post('create_task', { template_id: templateB, name: 'stolen' })
      expectRefusal(create, 3540400, `template[id=${templateB}] does not exist in project(${adminA.bkBizId})`)
      expect(await rowCounts(h)).toEqual(before)
    })

    it("get_tasks_status and get_task_list never show another project's tasks", async () => {
      const list = ok<Array<{ id: number }>>(
        await a.post('get_tasks_status', { task_id_list: [taskA, taskB, MISSING] }),
      )
      expect(list.map((t) => t.id)).toEqual([taskA])
      const tasks = ok<Array<{ id: number }>>(await a.get('get_task_list'))
      expect(tasks.map((t) => t.id)).not.toContain(taskB)
      expect(tasks.map((t) => t.id)).toContain(taskA)
    })
  })

  describe('permissions by role', () => {
    const denied = (id: Identity, action: string) =>
      `permission denied: action ${action} on project(${id.bkBizId}) for user ${id.username}`

    it('a viewer reads everything and may not create or operate', async () => {
      const vid = await makeIdentity(h.deps, { role: 'viewer', projectId: adminA.projectId })
      const v = legacyClient(h, vid)
      const task = await createTask(a, templateA, { name: 'seen by a viewer' })
      ok(await v.get('get_template_list'))
      ok(await v.get('get_template_info', { template_id: templateA }))
      ok(await v.get('get_task_list'))
      ok(await v.get('get_task_status', { task_id: task }))
      ok(await v.get('get_task_detail', { task_id: task }))
      ok(await v.get('get_task_operate_record', { task_id: task }))
      ok(await v.post('get_tasks_status', { task_id_list: [task] }))
      const before = await rowCounts(h)
      for (const action of ['start', 'pause', 'resume', 'revoke']) {
        expectRefusal(
          await v.post('operate_task', { task_id: task, action }),
          3599999,
          denied(vid, 'task_operate'),
        )
      }
      expectRefusal(await v.post('start_task', { task_id: task }), 3599999, denied(vid, 'task_operate'))
      expectRefusal(
        await v.post('create_task', { template_id: templateA, name: 'no' }),
        3599999,
        denied(vid, 'create_task'),
      )
      expectRefusal(
        await v.post('create_and_start_task', { template_id: templateA, name: 'no' }),
        3599999,
        denied(vid, 'create_task'),
      )
      expectRefusal(
        await v.post('create_template', { name: 'no', pipeline_tree: quickTree().tree }),
        3599999,
        denied(vid, 'template_edit'),
      )
      expect(await rowCounts(h)).toEqual(before)
      expect(await stateOf(h, task)).toBe('CREATED')
    })

    it('an operator creates and operates tasks, but may not create templates', async () => {
      const oid = await makeIdentity(h.deps, { role: 'operator', projectId: adminA.projectId })
      const o = legacyClient(h, oid)
      const task = await createTask(o, templateA, { name: 'by an operator' })
      ok(await o.post('operate_task', { task_id: task, action: 'start' }))
      ok(await o.post('operate_task', { task_id: task, action: 'pause' }))
      ok(await o.post('operate_task', { task_id: task, action: 'resume' }))
      ok(await o.post('operate_task', { task_id: task, action: 'revoke' }))
      ok(await o.post('create_and_start_task', { template_id: templateA, name: 'started by an operator' }))
      ok(await o.post('start_task', { task_id: await createTask(o, templateA) }))
      const before = await rowCounts(h)
      expectRefusal(
        await o.post('create_template', { name: 'no', pipeline_tree: quickTree().tree }),
        3599999,
        denied(oid, 'template_edit'),
      )
      expect(await rowCounts(h)).toEqual(before)
    })

    it('an admin can create templates', async () => {
      const id = await createTemplate(a, quickTree().tree, 'by an admin')
      expect(ok(await a.get('get_template_info', { template_id: id })).name).toBe('by an admin')
    })

    it('a user with no role in the project is denied everything, reads included', async () => {
      const nid = await makeIdentity(h.deps, { role: null, projectId: adminA.projectId })
      const n = legacyClient(h, nid)
      expectRefusal(await n.get('get_template_list'), 3599999, denied(nid, 'project_view'))
      expectRefusal(
        await n.get('get_template_info', { template_id: templateA }),
        3599999,
        denied(nid, 'project_view'),
      )
      expectRefusal(await n.get('get_task_list'), 3599999, denied(nid, 'project_view'))
      expectRefusal(
        await n.post('get_tasks_status', { task_id_list: [taskA] }),
        3599999,
        denied(nid, 'project_view'),
      )
      expectRefusal(await n.get('get_task_status', { task_id: taskA }), 3599999, denied(nid, 'task_view'))
      expectRefusal(await n.get('get_task_detail', { task_id: taskA }), 3599999, denied(nid, 'task_view'))
      expectRefusal(
        await n.get('get_task_operate_record', { task_id: taskA }),
        3599999,
        denied(nid, 'task_view'),
      )
      expectRefusal(
        await n.post('operate_task', { task_id: taskA, action: 'pause' }),
        3599999,
        denied(nid, 'task_operate'),
      )
      expectRefusal(
        await n.post('create_task', { template_id: templateA, name: 'no' }),
        3599999,
        denied(nid, 'create_task'),
      )
      expectRefusal(
        await n.post('create_template', { name: 'no', pipeline_tree: quickTree().tree }),
        3599999,
        denied(nid, 'template_edit'),
      )
    })

    it('a role in one project gives nothing in another', async () => {
      // adminA is admin of A only
      expectRefusal(
        await a.get('get_template_list', { bk_biz_id: b.id.bkBizId }),
        3599999,
        `permission denied: action project_view on project(${b.id.bkBizId}) for user ${adminA.username}`,
      )
    })

    it('the denial names the project as the caller named it (scope project)', async () => {
      const nid = await makeIdentity(h.deps, { role: null, projectId: adminA.projectId })
      const reply = await legacyClient(h, nid).get('get_template_list', {
        bk_biz_id: adminA.projectId,
        scope: 'project',
      })
      expectRefusal(
        reply,
        3599999,
        `permission denied: action project_view on project(${adminA.projectId}) for user ${nid.username}`,
      )
    })
  })
})
