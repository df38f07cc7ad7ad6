import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTemplate, legacyClient, ok, quickTree, sleepTree } from './fixtures'
import { authHeader, esb, type Harness, makeIdentity, startHarness } from './harness'

/**
 * Operate records name the app that made the call beside the user it acted for, so what a trusted
 * or user-skip app did on a user's behalf can be told apart from what the user did through their
 * own app.
 */

let h: Harness
beforeAll(async () => {
  h = await startHarness({ worker: false })
})
afterAll(async () => {
  await h?.close()
})

interface Record {
  operator: string
  operate_type: string
  extra_info: { app_code: string }
}

describe('operate records name the app', () => {
  it("the user's own app, a user-skip app naming the user, and the tRPC door each leave their app code in extra_info", async () => {
    const user = await makeIdentity(h.deps, { role: 'admin' })
    const skip = await makeIdentity(h.deps, { userSkip: true, role: null, projectId: user.projectId })
    const c = legacyClient(h, user)
    const templateId = await createTemplate(c, sleepTree().tree)
    const taskId = ok<{ task_id: number }>(
      await c.post('create_task', { template_id: templateId, name: 'audited' }),
    ).task_id
    // the user-skip app starts it, naming the user (whose role it then has)
    ok(
      await esb(h.url, 'start_task', {
        body: {
          bk_app_code: skip.appCode,
          bk_app_secret: skip.appSecret,
          bk_username: user.username,
          bk_biz_id: user.bkBizId,
          task_id: taskId,
        },
      }),
    )
    // the user pauses it through tRPC with their own app
    const res = await fetch(`${h.url}/trpc/task.operate`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-bk-app-code': user.appCode,
        'x-bk-app-secret': user.appSecret,
        authorization: `Bearer ${user.token}`,
      },
      body: JSON.stringify({ bk_biz_id: user.bkBizId, task_id: taskId, action: 'pause' }),
    })
    expect(res.status, await res.clone().text()).toBe(200)
    const records = ok<Record[]>(await c.get('get_task_operate_record', { task_id: taskId }))
    expect(records.map((r) => [r.operate_type, r.operator, r.extra_info])).toEqual([
      ['create', user.username, { app_code: user.appCode }],
      ['start', user.username, { app_code: skip.appCode }],
      ['pause', user.username, { app_code: user.appCode }],
    ])
  })

  it('a trusted app acting in a project is named on the record', async () => {
    const user = await makeIdentity(h.deps, { role: 'admin' })
    const trusted = await makeIdentity(h.deps, { trusted: true, role: null, projectId: user.projectId })
    const templateId = await createTemplate(legacyClient(h, user), quickTree().tree)
    const reply = await esb(h.url, 'create_task', {
      body: { bk_biz_id: user.bkBizId, template_id: templateId, name: 'by a trusted app' },
      headers: authHeader(trusted),
    })
    const taskId = ok<{ task_id: number }>(reply).task_id
    const records = ok<Record[]>(
      await legacyClient(h, user).get('get_task_operate_record', { task_id: taskId }),
    )
    expect(records).toHaveLength(1)
    expect(records[0]).toMatchObject({
      operator: trusted.username,
      extra_info: { app_code: trusted.appCode },
    })
  })
})
