import { createTRPCClient, httpLink, TRPCClientError } from '@trpc/client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { AppRouter } from '../src/trpc/root'
import { LEGACY_TIME, PUBLIC_URL, quickTree, rowCounts, sleepTree } from './fixtures'
import { authHeader, type Harness, type Identity, makeIdentity, startHarness } from './harness'

function clientWith(h: Harness, headers: Record<string, string>) {
  return createTRPCClient<AppRouter>({ links: [httpLink({ url: `${h.url}/trpc`, headers: () => headers })] })
}

/** The app headers with `Authorization: Bearer <bk_token>`. */
const appHeaders = (id: Identity) => ({
  'X-Bk-App-Code': id.appCode,
  'X-Bk-App-Secret': id.appSecret,
  Authorization: `Bearer ${id.token}`,
})

type LegacyErrorData = { legacyCode?: number; httpStatus?: number; code?: string; stack?: unknown }

/** Awaits a call that must fail; returns the TRPCClientError with its legacy code and message checked. */
async function refused(call: Promise<unknown>, legacyCode: number, message: string | RegExp) {
  const err = await call.then(
    (value) => {
      throw new Error(`expected a refusal, got ${JSON.stringify(value)}`)
    },
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(TRPCClientError)
  const e = err as TRPCClientError<AppRouter>
  const data = e.data as LegacyErrorData
  expect({ legacyCode: data.legacyCode, message: e.message }).toEqual({
    legacyCode,
    message: typeof message === 'string' ? message : expect.stringMatching(message),
  })
  expect(data.stack).toBeUndefined()
  expect(e.message).not.toMatch(/\n\s+at |node_modules/)
  return e
}

describe('the tRPC API', () => {
  let h: Harness
  let admin: Identity

  beforeAll(async () => {
    h = await startHarness({ worker: false, env: { STDOPS_PUBLIC_URL: PUBLIC_URL } })
    admin = await makeIdentity(h.deps, { role: 'admin' })
  })
  afterAll(async () => {
    await h?.close()
  })

  it('template.create, template.list and template.get, authenticated by X-Bkapi-Authorization', async () => {
    const api = clientWith(h, authHeader(admin))
    const { tree } = quickTree()
    const { template_id } = await api.template.create.mutate({
      bk_biz_id: admin.bkBizId,
      name: 'over trpc',
      pipeline_tree: tree,
    })
    expect(Number.isInteger(template_id)).toBe(true)
    const list = await api.template.list.query({ bk_biz_id: admin.bkBizId })
    expect(list.map((t) => t.id)).toContain(template_id)
    const got = await api.template.get.query({ bk_biz_id: admin.bkBizId, template_id })
    expect(got).toMatchObject({
      id: template_id,
      name: 'over trpc',
      creator: admin.username,
      pipeline_tree: tree,
    })
    expect(got.create_time).toMatch(LEGACY_TIME)
  })

  it('task.create, start, operate, status, detail, list and records, authenticated by app headers and a Bearer token', async () => {
    const api = clientWith(h, appHeaders(admin))
    const { tree, sleepId } = sleepTree()
    const { template_id } = await api.template.create.mutate({
      bk_biz_id: admin.bkBizId,
      name: 'sleeper',
      pipeline_tree: tree,
    })
    const created = await api.task.create.mutate({
      bk_biz_id: admin.bkBizId,
      template_id,
      name: 'trpc task',
      constants: { wait: '30' },
    })
    expect(created.task_url).toBe(
      `${PUBLIC_URL}/taskflow/execute/${admin.projectId}/?instance_id=${created.task_id}`,
    )
    const task_id = created.task_id

    const createdStatus = await api.task.status.query({ bk_biz_id: admin.bkBizId, task_id })
    expect(createdStatus).toEqual({
      id: task_id,
      name: 'trpc task',
      state: 'CREATED',
      retry: 0,
      skip: 0,
      elapsed_time: 0,
      start_time: null,
      finish_time: null,
      children: {},
    })

    expect(await api.task.start.mutate({ bk_biz_id: admin.bkBizId, task_id })).toEqual({
      task_url: created.task_url,
    })
    expect((await api.task.status.query({ bk_biz_id: admin.bkBizId, task_id })).state).toBe('RUNNING')
    await api.task.operate.mutate({ bk_biz_id: admin.bkBizId, task_id, action: 'pause' })
    expect((await api.task.status.query({ bk_biz_id: admin.bkBizId, task_id })).state).toBe('SUSPENDED')
    await api.task.operate.mutate({ bk_biz_id: admin.bkBizId, task_id, action: 'resume' })

    const detail = await api.task.detail.query({ bk_biz_id: admin.bkBizId, task_id })
    expect(detail).toMatchObject({
      id: task_id,
      name: 'trpc task',
      creator: admin.username,
      executor: admin.username,
      template_id: String(template_id),
    })
    expect((detail.constants as Record<string, { value: unknown }>)['${wait}']!.value).toBe('30')

    const list = await api.task.list.query({ bk_biz_id: admin.bkBizId, keyword: 'trpc' })
    expect(list.count).toBe(1)
    expect(list.list.map((t) => t.id)).toEqual([task_id])

    const records = await api.task.records.query({ bk_biz_id: admin.bkBizId, task_id })
    expect(records.map((r) => [r.operate_type, r.operator])).toEqual([
      ['create', admin.username],
      ['start', admin.username],
      ['pause', admin.username],
      ['resume', admin.username],
    ])
    // tRPC is not the ESB api: its records say so
    expect(new Set(records.map((r) => r.operate_source))).toEqual(new Set(['app']))
    expect(await api.task.records.query({ bk_biz_id: admin.bkBizId, task_id, node_id: sleepId })).toEqual([])
  })

  it('pausing twice is a TRPCClientError with legacyCode 3545000 and "task is already suspended"', async () => {
    const api = clientWith(h, appHeaders(admin))
    const { template_id } = await api.template.create.mutate({
      bk_biz_id: admin.bkBizId,
      name: 't',
      pipeline_tree: sleepTree().tree,
    })
    const { task_id } = await api.task.create.mutate({ bk_biz_id: admin.bkBizId, template_id, name: 'twice' })
    await refused(
      api.task.operate.mutate({ bk_biz_id: admin.bkBizId, task_id, action: 'pause' }),
      3545000,
      'task not started',
    )
    await api.task.start.mutate({ bk_biz_id: admin.bkBizId, task_id })
    await api.task.operate.mutate({ bk_biz_id: admin.bkBizId, task_id, action: 'pause' })
    const e = await refused(
      api.task.operate.mutate({ bk_biz_id: admin.bkBizId, task_id, action: 'pause' }),
      3545000,
      'task is already suspended',
    )
    expect((e.data as LegacyErrorData).httpStatus).toBe(409)
    await refused(
      api.task.operate.mutate({ bk_biz_id: admin.bkBizId, task_id, action: 'jump' }),
      3545000,
      'task command is invalid',
    )
    await refused(
      api.task.start.mutate({ bk_biz_id: admin.bkBizId, task_id }),
      3545000,
      'task already started',
    )
    const records = await api.task.records.query({ bk_biz_id: admin.bkBizId, task_id })
    expect(records.map((r) => r.operate_type)).toEqual(['create', 'start', 'pause'])
  })

  it('a missing task or project carries legacyCode 3540400 and the legacy message', async () => {
    const api = clientWith(h, authHeader(admin))
    await refused(
      api.task.status.query({ bk_biz_id: admin.bkBizId, task_id: 424242 }),
      3540400,
      `task[id=424242] does not exist in project(${admin.bkBizId})`,
    )
    await refused(
      api.template.list.query({ bk_biz_id: 2_000_000_001 }),
      3540400,
      'project(2000000001) with scope(cmdb_biz) does not exist.',
    )
  })

  it('authentication failures carry legacyCode 1306000 and the ESB messages', async () => {
    await refused(
      clientWith(h, {}).template.list.query({ bk_biz_id: admin.bkBizId }),
      1306000,
      'APP Code [bk_app_code] cannot be empty',
    )
    await refused(
      clientWith(h, { ...appHeaders(admin), Authorization: 'Bearer not-a-real-token' }).template.list.query({
        bk_biz_id: admin.bkBizId,
      }),
      1306000,
      'User authentication failed, please check if the bk_token is valid',
    )
    await refused(
      clientWith(h, {
        'X-Bk-App-Code': admin.appCode,
        'X-Bk-App-Secret': admin.appSecret,
      }).template.list.query({ bk_biz_id: admin.bkBizId }),
      1306000,
      'User authentication failed, please provide a valid user identity, such as bk_token, bk_username',
    )
    await refused(
      clientWith(h, {
        ...appHeaders(admin),
        'X-Bk-App-Secret': 'wrong-secret-0123456789',
      }).template.list.query({ bk_biz_id: admin.bkBizId }),
      1306000,
      `APP Secret verification failed, please confirm the APP Secret and APP Code [bk_app_code=${admin.appCode}] match`,
    )
  })

  it('authentication comes before input validation', async () => {
    await refused(
      clientWith(h, {}).task.status.query({ bk_biz_id: 'x', task_id: 'abc' }),
      1306000,
      'APP Code [bk_app_code] cannot be empty',
    )
  })

  it('a user-skip app may name the user with X-Bk-Username', async () => {
    const skip = await makeIdentity(h.deps, { role: 'viewer', userSkip: true })
    const api = clientWith(h, {
      'X-Bk-App-Code': skip.appCode,
      'X-Bk-App-Secret': skip.appSecret,
      'X-Bk-Username': skip.username,
    })
    expect(await api.template.list.query({ bk_biz_id: skip.bkBizId })).toEqual([])
  })

  it('a permission denial carries legacyCode 3599999 and the permission message', async () => {
    const viewer = await makeIdentity(h.deps, { role: 'viewer', projectId: admin.projectId })
    const api = clientWith(h, appHeaders(viewer))
    const adminApi = clientWith(h, appHeaders(admin))
    const { template_id } = await adminApi.template.create.mutate({
      bk_biz_id: admin.bkBizId,
      name: 't',
      pipeline_tree: quickTree().tree,
    })
    const { task_id } = await adminApi.task.create.mutate({
      bk_biz_id: admin.bkBizId,
      template_id,
      name: 'guarded',
    })
    await refused(
      api.task.operate.mutate({ bk_biz_id: admin.bkBizId, task_id, action: 'start' }),
      3599999,
      `permission denied: action task_operate on project(${admin.bkBizId}) for user ${viewer.username}`,
    )
    await refused(
      api.template.create.mutate({ bk_biz_id: admin.bkBizId, name: 'no', pipeline_tree: quickTree().tree }),
      3599999,
      `permission denied: action template_edit on project(${admin.bkBizId}) for user ${viewer.username}`,
    )
    expect((await api.task.detail.query({ bk_biz_id: admin.bkBizId, task_id })).name).toBe('guarded')
  })

  it('bad input carries legacyCode 3540000 with a message naming the field, and writes nothing', async () => {
    const api = clientWith(h, appHeaders(admin))
    const before = await rowCounts(h)
    await refused(api.task.status.query({ bk_biz_id: admin.bkBizId, task_id: 'abc' }), 3540000, /task_id/)
    await refused(
      api.task.operate.mutate({ bk_biz_id: admin.bkBizId, task_id: 0, action: 'pause' }),
      3540000,
      /task_id/,
    )
    await refused(
      api.task.create.mutate({ bk_biz_id: admin.bkBizId, template_id: 1, name: 'n'.repeat(101) }),
      3540000,
      /name/,
    )
    await refused(api.task.list.query({ bk_biz_id: admin.bkBizId, limit: -1 }), 3540000, /limit/)
    await refused(api.task.list.query({ bk_biz_id: admin.bkBizId, offset: -1 }), 3540000, /offset/)
    await refused(
      api.template.list.query({ bk_biz_id: admin.bkBizId, scope: 'biz' as never }),
      3540000,
      /scope/,
    )
    await refused(
      api.template.create.mutate({ bk_biz_id: admin.bkBizId, name: 'x', pipeline_tree: { nope: true } }),
      3540000,
      /^invalid pipeline_tree: /,
    )
    await refused(
      api.template.create.mutate({ bk_biz_id: -1, name: 'x', pipeline_tree: {} }),
      3540000,
      /bk_biz_id/,
    )
    expect(await rowCounts(h)).toEqual(before)
  })

  it('an input that is not an object carries legacyCode 3540000', async () => {
    const api = clientWith(h, appHeaders(admin))
    await refused(api.template.list.query('nonsense' as never), 3540000, /./)
    await refused(api.template.list.query(undefined as never), 3540000, /./)
  })
})
