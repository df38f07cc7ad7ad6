import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { FAST_MUTATIONS } from '../src/trpc/fast'
import { createTask, createTemplate, legacyClient, ok, quickTree } from './fixtures'
import { type Harness, type Identity, makeIdentity, startHarness } from './harness'

/**
 * The hot mutations' own route (trpc/fast.ts) answers exactly as tRPC's adapter does: the same
 * request, once to the route and once inside a batch of two that only the adapter serves, gets
 * the same status and the same body (the batch's entries).
 */

let h: Harness
let id: Identity
beforeAll(async () => {
  h = await startHarness({ worker: false })
  id = await makeIdentity(h.deps, { role: 'admin' })
})
afterAll(async () => {
  await h?.close()
})

const appHeaders = (who: Identity) => ({
  'content-type': 'application/json',
  'X-Bk-App-Code': who.appCode,
  'X-Bk-App-Secret': who.appSecret,
  Authorization: `Bearer ${who.token}`,
})

async function post(path: string, body: string, headers: Record<string, string>) {
  const res = await fetch(`${h.url}/trpc/${path}`, { method: 'POST', headers, body })
  return { status: res.status, body: JSON.parse(await res.text()) as unknown }
}

/** The same call to the fast route and, twice over, through the adapter (a batch of two). */
async function both(path: string, input: unknown, headers: Record<string, string>) {
  const fast = await post(path, JSON.stringify(input), headers)
  const adapter = await post(`${path},${path}?batch=1`, JSON.stringify({ 0: input, 1: input }), headers)
  return { fast, adapter }
}

describe('the fast route of the hot tRPC mutations', () => {
  it('is the route that serves them', () => {
    for (const path of FAST_MUTATIONS)
      expect(h.server.app.hasRoute({ method: 'POST', url: `/trpc/${path}` }), path).toBe(true)
  })

  it('refuses invalid input, an unknown caller and an operation the state forbids exactly as the adapter does', async () => {
    const c = legacyClient(h, id)
    const taskId = await createTask(c, await createTemplate(c, quickTree().tree))
    const cases: Array<[string, unknown, Record<string, string>]> = [
      ['task.operate', { bk_biz_id: id.bkBizId, task_id: taskId, action: 'explode' }, appHeaders(id)],
      ['task.operate', { bk_biz_id: id.bkBizId }, appHeaders(id)],
      ['task.operate', { bk_biz_id: id.bkBizId, task_id: taskId, action: 'pause' }, appHeaders(id)],
      [
        'task.operate',
        { bk_biz_id: id.bkBizId, task_id: taskId, action: 'pause' },
        { 'content-type': 'application/json' },
      ],
      ['task.start', { bk_biz_id: id.bkBizId, task_id: 999_999 }, appHeaders(id)],
    ]
    for (const [path, input, headers] of cases) {
      const { fast, adapter } = await both(path, input, headers)
      expect(fast.status, JSON.stringify(fast.body)).toBeGreaterThanOrEqual(400)
      expect(fast.status).toBe(adapter.status)
      expect(adapter.body).toEqual([fast.body, fast.body])
    }
  })

  it('applies a mutation and answers in the same shape', async () => {
    const c = legacyClient(h, id)
    const first = await createTask(c, await createTemplate(c, quickTree().tree))
    const second = await createTask(c, await createTemplate(c, quickTree().tree))
    const fast = await post(
      'task.start',
      JSON.stringify({ bk_biz_id: id.bkBizId, task_id: first }),
      appHeaders(id),
    )
    const adapter = await post(
      'task.start?batch=1',
      JSON.stringify({ 0: { bk_biz_id: id.bkBizId, task_id: second } }),
      appHeaders(id),
    )
    expect(fast.status).toBe(200)
    expect(adapter.status).toBe(200)
    // The same reply but for the task's own id.
    const of = (body: unknown, taskId: number) =>
      JSON.parse(JSON.stringify(body).replaceAll(`instance_id=${taskId}`, 'instance_id=ID'))
    expect([of(fast.body, first)]).toEqual(of(adapter.body, second))
    for (const taskId of [first, second]) {
      const status = ok<{ state: string }>(await c.get('get_task_status', { task_id: taskId }))
      expect(status.state).not.toBe('CREATED')
    }
  })

  it('a body that is not JSON is a parse error, as the adapter answers it', async () => {
    const fast = await post('task.operate', '{not json', appHeaders(id))
    const adapter = await post('task.operate,task.operate?batch=1', '{not json', appHeaders(id))
    expect(fast.status).toBe(400)
    expect(adapter.status).toBe(400)
    expect((fast.body as { error: { data: { code: string } } }).error.data.code).toBe('PARSE_ERROR')
  })
})
