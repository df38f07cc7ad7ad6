import { createTRPCClient, httpLink, TRPCClientError } from '@trpc/client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { AppRouter } from '../src/trpc/root'
import {
  expectEnvelope,
  expectParamInvalid,
  expectRefusal,
  LEGACY_TIME,
  type LegacyClient,
  legacyClient,
  ok,
  sleepTree,
} from './fixtures'
import { authHeader, type Harness, type Identity, makeIdentity, startHarness } from './harness'

/**
 * The schedule APIs over real HTTP (no worker: nothing fires here; firing is tested in
 * schedules-firing and schedules-processes): shapes as bk-sops documents them, validation that
 * names the field, the contract's check order, isolation between projects, permissions.
 */

const EVERY_5_MIN = { minute: '*/5', hour: '*', day_of_week: '*', day_of_month: '*', month_of_year: '*' }

describe('periodic task APIs', () => {
  let h: Harness
  let admin: LegacyClient
  let templateId: number

  beforeAll(async () => {
    h = await startHarness({ worker: false })
    admin = legacyClient(h, await makeIdentity(h.deps, { role: 'admin' }))
    templateId = ok<{ template_id: number }>(
      await admin.post('create_template', { name: 'nightly', pipeline_tree: sleepTree('5').tree }),
    ).template_id
  })
  afterAll(async () => {
    await h?.close()
  })

  const create = (c: LegacyClient, body: Record<string, unknown> = {}) =>
    c.post('create_periodic_task', {
      template_id: templateId,
      name: 'every five',
      cron: EVERY_5_MIN,
      ...body,
    })

  it('create_periodic_task answers bk-sops’s fields, disabled, with the tree and its form', async () => {
    const reply = await create(admin, { constants: { '${wait}': '7' } })
    expectEnvelope(reply)
    const data = ok(reply)
    expect(data).toMatchObject({
      name: 'every five',
      cron: '*/5 * * * * (m/h/d/dM/MY)',
      enabled: false,
      total_run_count: 0,
      last_run_at: '',
      next_run_at: null,
      creator: admin.id.username,
      template_id: String(templateId),
      template_source: 'project',
      project_id: admin.id.projectId,
      next_run_times: [],
    })
    expect(Number.isInteger(data.id)).toBe(true)
    const tree = data.pipeline_tree as { constants: Record<string, { value: unknown }> }
    expect(tree.constants['${wait}']?.value).toBe('7')
    expect(Object.keys(data.form as object)).toEqual(['${wait}'])
    expect(data.create_time).toMatch(LEGACY_TIME)
    expect(
      await h.deps.db.prisma.periodicTask.count({ where: { id: data.id as number, enabled: false } }),
    ).toBe(1)
  })

  it('takes the cron as an object with absent fields "*", as a crontab line, or in bk-sops’s written form', async () => {
    const byObject = ok(await create(admin, { cron: { minute: '0', hour: '3' } }))
    expect(byObject.cron).toBe('0 3 * * * (m/h/d/dM/MY)')
    // crontab order: minute hour day_of_month month day_of_week
    const byLine = ok(await create(admin, { cron: '15 2 1-7 * 1' }))
    expect(byLine.cron).toBe('15 2 1 1-7 * (m/h/d/dM/MY)')
    expect(byLine.cron_fields).toEqual({
      minute: '15',
      hour: '2',
      day_of_week: '1',
      day_of_month: '1-7',
      month_of_year: '*',
    })
    // what get_periodic_task_info wrote can be sent back unchanged
    const byBk = ok(await create(admin, { cron: byLine.cron }))
    expect(byBk.cron_fields).toEqual(byLine.cron_fields)
  })

  it('refuses a bad cron, naming the field', async () => {
    expectParamInvalid(await create(admin, { cron: { minute: '61' } }), /^invalid param: cron\.minute: '61'/)
    expectParamInvalid(await create(admin, { cron: { day_of_week: 'funday' } }), 'cron.day_of_week')
    expectParamInvalid(await create(admin, { cron: { hour: '1 2' } }), 'cron.hour: must not contain spaces')
    expectParamInvalid(await create(admin, { cron: { minute: 5 } }), 'cron')
    expectParamInvalid(await create(admin, { cron: '* * *' }), /^invalid param: cron: must be 5 fields/)
    expectParamInvalid(
      await create(admin, { cron: { minute: '0', hour: '0', day_of_month: '31', month_of_year: '2' } }),
      'invalid param: cron: the fields never meet',
    )
    expectParamInvalid(await create(admin, { cron: undefined }), 'invalid param: cron: is required')
  })

  it('refuses other bad parameters, naming the field, and writes nothing', async () => {
    const before = await h.deps.db.prisma.periodicTask.count()
    expectParamInvalid(await create(admin, { name: '' }), 'invalid param: name: must not be empty')
    expectParamInvalid(await create(admin, { constants: 'x' }), 'invalid param: constants')
    expectParamInvalid(await create(admin, { template_id: 'abc' }), 'invalid param: template_id')
    expectParamInvalid(await create(admin, { template_source: 'shared' }), 'invalid param: template_source')
    expectParamInvalid(
      await create(admin, { constants: { '${wait}': '${nope}' } }),
      'references undefined constant ${nope}',
    )
    expect(await h.deps.db.prisma.periodicTask.count()).toBe(before)
  })

  it('a template of another project is answered like a missing one', async () => {
    const other = legacyClient(h, await makeIdentity(h.deps, { role: 'admin' }))
    expectRefusal(
      await create(other),
      3540400,
      `template[id=${templateId}] does not exist in project(${other.id.bkBizId})`,
    )
  })

  it('get_periodic_task_list lists the project’s periodic tasks newest first, and only them', async () => {
    const own = legacyClient(h, await makeIdentity(h.deps, { role: 'admin', projectId: admin.id.projectId }))
    const other = legacyClient(h, await makeIdentity(h.deps, { role: 'admin' }))
    const otherTemplate = ok<{ template_id: number }>(
      await other.post('create_template', { name: 't', pipeline_tree: sleepTree('5').tree }),
    ).template_id
    ok(
      await other.post('create_periodic_task', {
        template_id: otherTemplate,
        name: 'theirs',
        cron: '* * * * *',
      }),
    )
    const a = ok(await create(own, { name: 'list a' }))
    const b = ok(await create(own, { name: 'list b' }))
    const list = ok<Array<Record<string, unknown>>>(await own.get('get_periodic_task_list'))
    expect(list.some((p) => p.name === 'theirs')).toBe(false)
    const ids = list.map((p) => p.id as number)
    expect(ids).toEqual([...ids].sort((x, y) => y - x))
    expect(ids.indexOf(b.id as number)).toBeLessThan(ids.indexOf(a.id as number))
    expect(list.find((p) => p.id === a.id)).toEqual({
      id: a.id,
      name: 'list a',
      cron: '*/5 * * * * (m/h/d/dM/MY)',
      enabled: false,
      total_run_count: 0,
      last_run_at: '',
      next_run_at: null,
      creator: own.id.username,
      template_id: String(templateId),
      template_source: 'project',
      project_id: own.id.projectId,
      bk_biz_id: own.id.bkBizId,
    })
  })

  it('set_periodic_task_enabled turns firing on (next due time set) and off; the info shows the next five', async () => {
    const p = ok(await create(admin))
    const on = await admin.post('set_periodic_task_enabled', { task_id: p.id, enabled: true })
    expect(ok(on)).toEqual({ enabled: true })
    const info = ok(await admin.get('get_periodic_task_info', { task_id: p.id as number }))
    expect(info.enabled).toBe(true)
    expect(info.next_run_at).toMatch(LEGACY_TIME)
    const times = info.next_run_times as string[]
    expect(times).toHaveLength(5)
    expect(times[0]).toBe(info.next_run_at)
    // five minutes apart, on minutes divisible by 5
    const ms = times.map((t) => Date.parse(t.replace(' ', 'T').replace(/ ([+-]\d{2})(\d{2})$/, '$1:$2')))
    for (let i = 1; i < ms.length; i++) expect(ms[i]! - ms[i - 1]!).toBe(300_000)
    for (const t of times) expect(Number(t.slice(14, 16)) % 5).toBe(0)
    const row = await h.deps.db.prisma.periodicTask.findUniqueOrThrow({ where: { id: p.id as number } })
    expect(Number(row.nextRunAt)).toBe(ms[0])
    expect(Number(row.nextRunAt)).toBeGreaterThan(Date.now())

    // enabled omitted means false, as in bk-sops
    expect(ok(await admin.post('set_periodic_task_enabled', { task_id: p.id }))).toEqual({ enabled: false })
    const off = ok(await admin.get('get_periodic_task_info', { task_id: p.id as number }))
    expect(off).toMatchObject({ enabled: false, next_run_at: null, next_run_times: [] })
    expectParamInvalid(
      await admin.post('set_periodic_task_enabled', { task_id: p.id, enabled: 'yes' }),
      'invalid param: enabled',
    )
  })

  it('modify_cron_for_periodic_task answers the new cron; an enabled task’s next due time follows it at once', async () => {
    const p = ok(await create(admin))
    ok(await admin.post('set_periodic_task_enabled', { task_id: p.id, enabled: true }))
    const reply = await admin.post('modify_cron_for_periodic_task', {
      task_id: p.id,
      cron: { minute: '0', hour: '4', day_of_month: '1' },
    })
    expect(ok(reply)).toEqual({ cron: '0 4 * 1 * (m/h/d/dM/MY)' })
    const info = ok(await admin.get('get_periodic_task_info', { task_id: p.id as number }))
    expect(info.cron).toBe('0 4 * 1 * (m/h/d/dM/MY)')
    // the first of a month at 04:00 in the server's zone
    expect(info.next_run_at).toMatch(/^\d{4}-\d{2}-01 04:00:00 [+-]\d{4}$/)
    expectParamInvalid(
      await admin.post('modify_cron_for_periodic_task', { task_id: p.id, cron: { month_of_year: '13' } }),
      'cron.month_of_year',
    )
    expectParamInvalid(
      await admin.post('modify_cron_for_periodic_task', { task_id: p.id }),
      'cron: is required',
    )
  })

  it('modify_constants_for_periodic_task changes the tree firings run and answers all its constants', async () => {
    const p = ok(await create(admin))
    const data = ok<Record<string, { key: string; value: unknown }>>(
      await admin.post('modify_constants_for_periodic_task', {
        task_id: p.id,
        constants: { '${wait}': '42', '${unknown}': 'ignored' },
      }),
    )
    expect(Object.keys(data)).toEqual(['${wait}'])
    expect(data['${wait}']).toMatchObject({ key: '${wait}', value: '42' })
    const info = ok(await admin.get('get_periodic_task_info', { task_id: p.id as number }))
    expect((info.form as Record<string, { value: unknown }>)['${wait}']?.value).toBe('42')
    // without constants: nothing changes
    expect(ok(await admin.post('modify_constants_for_periodic_task', { task_id: p.id }))).toEqual(data)
    expectParamInvalid(
      await admin.post('modify_constants_for_periodic_task', { task_id: p.id, constants: [] }),
      'invalid param: constants',
    )
  })

  it('another project’s periodic task is answered exactly like a missing one, by every API', async () => {
    const p = ok(await create(admin))
    const stranger = legacyClient(h, await makeIdentity(h.deps, { role: 'admin' }))
    const missing = (id: unknown) =>
      `periodic_task[id=${id}] does not exist in project(${stranger.id.bkBizId})`
    for (const id of [p.id, 999999]) {
      expectRefusal(
        await stranger.get('get_periodic_task_info', { task_id: id as number }),
        3540400,
        missing(id),
      )
      expectRefusal(
        await stranger.post('set_periodic_task_enabled', { task_id: id, enabled: true }),
        3540400,
        missing(id),
      )
      expectRefusal(
        await stranger.post('modify_cron_for_periodic_task', { task_id: id, cron: '* * * * *' }),
        3540400,
        missing(id),
      )
      expectRefusal(
        await stranger.post('modify_constants_for_periodic_task', { task_id: id, constants: {} }),
        3540400,
        missing(id),
      )
    }
    const row = await h.deps.db.prisma.periodicTask.findUniqueOrThrow({ where: { id: p.id as number } })
    expect(row.enabled).toBe(false)
  })

  it('permissions: a viewer reads but may not create or change; an operator may; no role, nothing', async () => {
    const p = ok(await create(admin))
    const viewer = legacyClient(
      h,
      await makeIdentity(h.deps, { role: 'viewer', projectId: admin.id.projectId }),
    )
    const operator = legacyClient(
      h,
      await makeIdentity(h.deps, { role: 'operator', projectId: admin.id.projectId }),
    )
    const nobody = legacyClient(h, await makeIdentity(h.deps, { role: null, projectId: admin.id.projectId }))
    const denied = (c: LegacyClient, action: string) =>
      `permission denied: action ${action} on project(${c.id.bkBizId}) for user ${c.id.username}`

    expect(ok(await viewer.get('get_periodic_task_list')).length).toBeGreaterThan(0)
    expect(ok(await viewer.get('get_periodic_task_info', { task_id: p.id as number })).id).toBe(p.id)
    expectRefusal(await create(viewer), 3599999, denied(viewer, 'create_task'))
    for (const [api, body] of [
      ['set_periodic_task_enabled', { enabled: true }],
      ['modify_cron_for_periodic_task', { cron: '* * * * *' }],
      ['modify_constants_for_periodic_task', { constants: {} }],
    ] as const) {
      expectRefusal(
        await viewer.post(api, { task_id: p.id, ...body }),
        3599999,
        denied(viewer, 'create_task'),
      )
    }
    expectRefusal(await nobody.get('get_periodic_task_list'), 3599999, denied(nobody, 'project_view'))
    expect(ok(await create(operator)).creator).toBe(operator.id.username)
    expect(ok(await operator.post('set_periodic_task_enabled', { task_id: p.id, enabled: true }))).toEqual({
      enabled: true,
    })
  })

  it('checks run in the contract’s order: parameters before the project, the project before the task, the task before permission', async () => {
    const viewer = legacyClient(
      h,
      await makeIdentity(h.deps, { role: 'viewer', projectId: admin.id.projectId }),
    )
    expectParamInvalid(
      await viewer.post('create_periodic_task', {
        bk_biz_id: 1,
        template_id: templateId,
        name: 'x',
        cron: { minute: '99' },
      }),
      'cron.minute',
    )
    expectRefusal(
      await viewer.post('create_periodic_task', {
        bk_biz_id: 987654321,
        template_id: templateId,
        name: 'x',
        cron: '* * * * *',
      }),
      3540400,
      'project(987654321) with scope(cmdb_biz) does not exist.',
    )
    expectRefusal(
      await viewer.post('set_periodic_task_enabled', { task_id: 999998, enabled: true }),
      3540400,
      `periodic_task[id=999998] does not exist in project(${viewer.id.bkBizId})`,
    )
  })
})

describe('clocked task APIs', () => {
  let h: Harness
  let admin: LegacyClient
  let templateId: number

  beforeAll(async () => {
    h = await startHarness({ worker: false })
    admin = legacyClient(h, await makeIdentity(h.deps, { role: 'admin' }))
    templateId = ok<{ template_id: number }>(
      await admin.post('create_template', { name: 'once', pipeline_tree: sleepTree('5').tree }),
    ).template_id
  })
  afterAll(async () => {
    await h?.close()
  })

  /** A time an hour ahead as `YYYY-MM-DD HH:MM:SS+0800` (Shanghai), and its epoch ms (whole seconds). */
  const inAnHour = () => {
    const ms = Math.floor((Date.now() + 3_600_000) / 1000) * 1000
    const local = new Date(ms + 8 * 3_600_000).toISOString()
    return { ms, text: `${local.slice(0, 10)} ${local.slice(11, 19)}+0800` }
  }

  const create = (c: LegacyClient, body: Record<string, unknown> = {}) =>
    c.post('create_clocked_task', {
      template_id: templateId,
      task_name: 'at one',
      plan_start_time: inAnHour().text,
      ...body,
    })

  it('create_clocked_task answers bk-sops’s fields, not started, the time read with its UTC offset', async () => {
    const when = inAnHour()
    const reply = await create(admin, {
      plan_start_time: when.text,
      task_parameters: { constants: { '${wait}': '1' }, template_schemes_id: [] },
    })
    expectEnvelope(reply)
    const data = ok(reply)
    expect(data).toMatchObject({
      task_name: 'at one',
      task_parameters: { constants: { '${wait}': '1' }, template_schemes_id: [] },
      state: 'not_started',
      task_id: null,
      creator: admin.id.username,
      project_id: admin.id.projectId,
      template_id: templateId,
      template_name: 'once',
      template_source: 'project',
    })
    expect(data.clocked_task_id).toBe(data.id)
    expect(data.plan_start_time).toMatch(LEGACY_TIME)
    const row = await h.deps.db.prisma.clockedTask.findUniqueOrThrow({ where: { id: data.id as number } })
    expect(Number(row.planStartAt)).toBe(when.ms)
    // the other forms of a time: ISO with Z, and no offset (the server's zone)
    const iso = new Date(when.ms).toISOString().replace('.000', '')
    expect(
      Number(
        (
          await h.deps.db.prisma.clockedTask.findUniqueOrThrow({
            where: { id: ok(await create(admin, { plan_start_time: iso })).id as number },
          })
        ).planStartAt,
      ),
    ).toBe(when.ms)
    const local = ok(await create(admin, { plan_start_time: (data.plan_start_time as string).slice(0, 19) }))
    expect(local.plan_start_time).toBe(data.plan_start_time)
  })

  it('refuses bad parameters, naming the field, and writes nothing', async () => {
    const before = await h.deps.db.prisma.clockedTask.count()
    expectParamInvalid(await create(admin, { plan_start_time: 'tomorrow' }), 'invalid param: plan_start_time')
    expectParamInvalid(
      await create(admin, { plan_start_time: '2030-02-31 10:00:00' }),
      'plan_start_time: not a valid time',
    )
    expectParamInvalid(
      await create(admin, { plan_start_time: '2001-01-01 10:00:00+0000' }),
      'plan_start_time: must not be in the past',
    )
    expectParamInvalid(await create(admin, { task_name: '' }), 'invalid param: task_name')
    expectParamInvalid(
      await create(admin, { task_parameters: { constants: 5 } }),
      'task_parameters.constants',
    )
    expectParamInvalid(
      await create(admin, { task_parameters: { template_schemes_id: [99999] } }),
      /template_schemes_id: scheme 99999 does not exist/,
    )
    expectParamInvalid(
      await create(admin, { task_parameters: { constants: { '${wait}': '${x}' } } }),
      'references undefined constant ${x}',
    )
    expect(await h.deps.db.prisma.clockedTask.count()).toBe(before)
  })

  it('get_clocked_task_list: newest first, count beside data, filters, the caller’s actions, another zone on request', async () => {
    const own = legacyClient(h, await makeIdentity(h.deps, { role: 'admin' }))
    const t = ok<{ template_id: number }>(
      await own.post('create_template', { name: 'mine', pipeline_tree: sleepTree('5').tree }),
    ).template_id
    const ids: number[] = []
    for (const name of ['alpha job', 'beta job', 'Alpha two']) {
      ids.push(
        ok(
          await own.post('create_clocked_task', {
            template_id: t,
            task_name: name,
            plan_start_time: inAnHour().text,
          }),
        ).id as number,
      )
    }
    ok(await create(admin, { task_name: 'alpha elsewhere' }))
    const reply = await own.get('get_clocked_task_list')
    expectEnvelope(reply, ['count'])
    expect(reply.body.count).toBe(3)
    const list = ok<Array<Record<string, unknown>>>(reply)
    expect(list.map((c) => c.id)).toEqual([...ids].reverse())
    expect(list[0]).toMatchObject({
      task_name: 'Alpha two',
      state: 'not_started',
      template_name: 'mine',
      auth_actions: ['clocked_task_view', 'clocked_task_edit', 'clocked_task_delete', 'flow_view'],
    })
    for (const c of list)
      for (const k of ['plan_start_time', 'create_time', 'edit_time']) expect(c[k]).toMatch(LEGACY_TIME)

    const alpha = await own.get('get_clocked_task_list', { task_name: 'ALPHA' })
    expect((alpha.body.data as Array<{ task_name: string }>).map((c) => c.task_name)).toEqual([
      'Alpha two',
      'alpha job',
    ])
    expect(alpha.body.count).toBe(2)
    expect(ok<unknown[]>(await own.get('get_clocked_task_list', { id: ids[1]! })).length).toBe(1)
    const page = await own.get('get_clocked_task_list', { limit: 1, offset: 1 })
    expect((page.body.data as Array<{ id: number }>).map((c) => c.id)).toEqual([ids[1]])
    expect(page.body.count).toBe(3)
    expect(ok<unknown[]>(await own.get('get_clocked_task_list', { state: 'started' }))).toEqual([])

    const shanghai = ok<Array<{ plan_start_time: string }>>(
      await own.get('get_clocked_task_list', { expected_timezone: 'Asia/Shanghai', id: ids[0]! }),
    )
    expect(shanghai[0]!.plan_start_time).toMatch(/ \+0800$/)
    expectParamInvalid(
      await own.get('get_clocked_task_list', { expected_timezone: 'Mars/Olympus' }),
      'expected_timezone',
    )
    expectParamInvalid(await own.get('get_clocked_task_list', { state: 'done' }), 'invalid param: state')
    expectParamInvalid(await own.get('get_clocked_task_list', { limit: 0 }), 'invalid param: limit')

    const viewer = legacyClient(
      h,
      await makeIdentity(h.deps, { role: 'viewer', projectId: own.id.projectId }),
    )
    const seen = ok<Array<{ auth_actions: string[] }>>(await viewer.get('get_clocked_task_list'))
    expect(seen[0]!.auth_actions).toEqual(['clocked_task_view', 'flow_view'])
  })

  it('permissions and isolation: a viewer may not create; another project’s template is not found', async () => {
    const viewer = legacyClient(
      h,
      await makeIdentity(h.deps, { role: 'viewer', projectId: admin.id.projectId }),
    )
    expectRefusal(
      await create(viewer),
      3599999,
      `permission denied: action create_task on project(${viewer.id.bkBizId}) for user ${viewer.id.username}`,
    )
    const stranger = legacyClient(h, await makeIdentity(h.deps, { role: 'admin' }))
    expectRefusal(
      await create(stranger),
      3540400,
      `template[id=${templateId}] does not exist in project(${stranger.id.bkBizId})`,
    )
    const nobody = legacyClient(h, await makeIdentity(h.deps, { role: null, projectId: admin.id.projectId }))
    expectRefusal(
      await nobody.get('get_clocked_task_list'),
      3599999,
      `permission denied: action project_view on project(${nobody.id.bkBizId}) for user ${nobody.id.username}`,
    )
  })

  it('wrong methods and unknown schedule APIs answer as every API does', async () => {
    const wrong = await admin.get('create_clocked_task')
    expectRefusal(wrong, 1306405, 'method GET not allowed for create_clocked_task, use POST', 405)
    expectRefusal(
      await admin.post('delete_clocked_task', { task_id: 1 }),
      1306404,
      'component not found: delete_clocked_task',
      404,
    )
  })
})

describe('periodic.* and clocked.* over tRPC', () => {
  let h: Harness
  let id: Identity

  beforeAll(async () => {
    h = await startHarness({ worker: false })
    id = await makeIdentity(h.deps, { role: 'admin' })
  })
  afterAll(async () => {
    await h?.close()
  })

  const client = (who: Identity) =>
    createTRPCClient<AppRouter>({
      links: [httpLink({ url: `${h.url}/trpc`, headers: () => authHeader(who) })],
    })

  it('the same use cases, typed: create, enable, change, list, and clocked delete', async () => {
    const api = client(id)
    const project = { bk_biz_id: id.bkBizId }
    const { template_id } = await api.template.create.mutate({
      ...project,
      name: 't',
      pipeline_tree: sleepTree('5').tree,
    })
    const p = await api.periodic.create.mutate({
      ...project,
      template_id,
      name: 'typed',
      cron: '*/10 * * * *',
    })
    expect(p.enabled).toBe(false)
    expect(await api.periodic.setEnabled.mutate({ ...project, task_id: p.id, enabled: true })).toEqual({
      enabled: true,
    })
    expect(await api.periodic.setCron.mutate({ ...project, task_id: p.id, cron: { minute: '7' } })).toEqual({
      cron: '7 * * * * (m/h/d/dM/MY)',
    })
    const constants = await api.periodic.setConstants.mutate({
      ...project,
      task_id: p.id,
      constants: { wait: '3' },
    })
    expect(constants['${wait}']?.value).toBe('3')
    const info = await api.periodic.get.query({ ...project, task_id: p.id })
    expect(info.next_run_times).toHaveLength(5)
    expect(info.next_run_times.every((t) => t.slice(14, 16) === '07')).toBe(true)
    expect((await api.periodic.list.query(project)).map((x) => x.id)).toEqual([p.id])

    const at = new Date(Date.now() + 86_400_000).toISOString().replace(/\.\d{3}/, '')
    const c = await api.clocked.create.mutate({
      ...project,
      template_id,
      task_name: 'later',
      plan_start_time: at,
    })
    expect((await api.clocked.list.query(project)).count).toBe(1)
    expect(await api.clocked.delete.mutate({ ...project, task_id: c.id })).toEqual({
      id: c.id,
      deleted: true,
      state: 'not_started',
      task_id: null,
    })
    expect((await api.clocked.list.query(project)).count).toBe(0)
    const again = await api.clocked.delete.mutate({ ...project, task_id: c.id }).catch((e: unknown) => e)
    expect(again).toBeInstanceOf(TRPCClientError)
    expect((again as TRPCClientError<AppRouter>).message).toBe(
      `clocked_task[id=${c.id}] does not exist in project(${id.bkBizId})`,
    )
  })

  it('refusals carry the legacy code: a bad cron names its field; a viewer may not delete', async () => {
    const api = client(id)
    const project = { bk_biz_id: id.bkBizId }
    const { template_id } = await api.template.create.mutate({
      ...project,
      name: 't2',
      pipeline_tree: sleepTree('5').tree,
    })
    const bad = await api.periodic.create
      .mutate({ ...project, template_id, name: 'bad', cron: { hour: '25' } })
      .catch((e: unknown) => e as TRPCClientError<AppRouter>)
    expect(bad).toBeInstanceOf(TRPCClientError)
    expect((bad as TRPCClientError<AppRouter>).message).toMatch(/^invalid param: cron\.hour: '25'/)
    expect(((bad as TRPCClientError<AppRouter>).data as { legacyCode: number }).legacyCode).toBe(3540000)

    const c = await api.clocked.create.mutate({
      ...project,
      template_id,
      task_name: 'keep',
      plan_start_time: new Date(Date.now() + 86_400_000).toISOString(),
    })
    const viewer = await makeIdentity(h.deps, { role: 'viewer', projectId: id.projectId })
    const denied = await client(viewer)
      .clocked.delete.mutate({ ...project, task_id: c.id })
      .catch((e: unknown) => e as TRPCClientError<AppRouter>)
    expect(((denied as TRPCClientError<AppRouter>).data as { legacyCode: number }).legacyCode).toBe(3599999)
    expect(await h.deps.db.prisma.clockedTask.count({ where: { id: c.id } })).toBe(1)
  })
})
