import { createTreeBuilder } from '@stdops/core/testing'
import { sql } from '@stdops/db'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createHarness,
  type Harness,
  httpServer,
  insertTask,
  jobs,
  operate,
  TESTER,
  waitFor,
  waitForState,
} from './helpers'

let h: Harness
let receiver: Awaited<ReturnType<typeof httpServer>>
/** How many more calls answer 500 before the receiver accepts. */
let failNext = 0

beforeAll(async () => {
  h = await createHarness()
  receiver = await httpServer((_req, res) => {
    if (failNext > 0) {
      failNext -= 1
      res.writeHead(500).end()
    } else res.writeHead(200).end('ok')
  })
})
afterAll(async () => {
  await h?.close()
  await receiver?.close()
})

const callsTo = (path: string) => receiver.calls.filter((c) => c.url === path)
const form = (body: string) => Object.fromEntries(new URLSearchParams(body))

async function callbackRows(taskId: number) {
  return h.db.query<{ event: string; status: string; attempts: number }>(
    sql`SELECT event, status, attempts FROM task_callbacks WHERE task_id = ${taskId} ORDER BY id`,
  )
}
const allSent = (taskId: number, n: number) =>
  waitFor(`${n} callbacks sent`, async () => {
    const rows = await callbackRows(taskId)
    return rows.length === n && rows.every((r) => r.status === 'success')
  })

describe('callback_url events', () => {
  it('v1: a form-encoded POST on a node failure, then on finish after the retry; one call per event', async () => {
    const engine = await h.engine({ callbackRetryMs: 50 })
    const b = createTreeBuilder()
    const c = b.activity('check', { data: { ok: { hook: false, value: false } } })
    b.chain(b.startId, c, b.endId)
    const id = await insertTask(h.db, b.build(), { callbackUrl: `${receiver.url}/v1/${'x'}` })
    await operate(engine, id, 'start')
    await allSent(id, 1)
    await engine.operateNode({ ...TESTER, taskId: id, nodeId: c, action: 'retry', inputs: { ok: true } })
    await waitForState(h.db, id, 'FINISHED')
    await allSent(id, 2)
    const calls = callsTo('/v1/x')
    expect(calls.map((x) => x.method)).toEqual(['POST', 'POST'])
    expect(calls.map((x) => form(x.body))).toEqual([
      { task_id: String(id), task_success: 'False', task_status: 'FAILED' },
      { task_id: String(id), task_success: 'True', task_status: 'FINISHED' },
    ])
    expect((await callbackRows(id)).map((r) => r.event)).toEqual([
      expect.stringMatching(`^node_failed:${c}:`),
      'finished',
    ])
    await engine.stop()
  })

  it('v2: a JSON POST with real booleans and the task outputs; revoke is its own event', async () => {
    const engine = await h.engine({ callbackRetryMs: 50 })
    const b = createTreeBuilder()
    b.constant('greeting', 'hello')
    b.output('greeting')
    b.chain(b.startId, b.activity('noop'), b.endId)
    const done = await insertTask(h.db, b.build(), {
      callbackUrl: `${receiver.url}/v2/done`,
      callbackVersion: 'v2',
    })
    await operate(engine, done, 'start')
    await allSent(done, 1)
    expect(callsTo('/v2/done').map((x) => JSON.parse(x.body))).toEqual([
      {
        task_id: done,
        task_success: true,
        task_status: 'FINISHED',
        task_outputs: [{ key: '${greeting}', name: 'greeting', value: 'hello' }],
      },
    ])

    const s = createTreeBuilder()
    s.chain(s.startId, s.activity('sleep_ms', { data: { ms: { hook: false, value: 20_000 } } }), s.endId)
    const revoked = await insertTask(h.db, s.build(), {
      callbackUrl: `${receiver.url}/v2/revoked`,
      callbackVersion: 'v2',
    })
    await operate(engine, revoked, 'start')
    await operate(engine, revoked, 'revoke')
    await allSent(revoked, 1)
    expect(callsTo('/v2/revoked').map((x) => JSON.parse(x.body))).toEqual([
      { task_id: revoked, task_success: false, task_status: 'REVOKED', task_outputs: [] },
    ])
    await engine.stop()
  })

  it('each event is sent once across a restart: a pending try is taken up, a sent one never repeated', async () => {
    failNext = 1
    const first = await h.engine({ callbackRetryMs: 2000 })
    const b = createTreeBuilder()
    b.chain(b.startId, b.activity('noop'), b.endId)
    const id = await insertTask(h.db, b.build(), { callbackUrl: `${receiver.url}/restart` })
    await operate(first, id, 'start')
    await waitFor('the first try to fail', async () => (await callbackRows(id))[0]?.attempts === 1 || null)
    await first.stop()
    const second = await h.engine({ callbackRetryMs: 2000 })
    await allSent(id, 1)
    await second.stop()
    const third = await h.engine({ callbackRetryMs: 2000 })
    // Nothing is left that could send it again: no callback job, the event recorded as sent.
    expect((await jobs(h.db, id)).filter((j) => j.kind === 'callback')).toEqual([])
    expect(await callbackRows(id)).toEqual(
      [{ event: 'finished', status: 'success', attempts: 2 }].map((r) =>
        expect.objectContaining({ ...r, attempts: expect.anything() }),
      ),
    )
    expect(Number((await callbackRows(id))[0]!.attempts)).toBe(2)
    expect(callsTo('/restart')).toHaveLength(2)
    await third.stop()
  })
})
