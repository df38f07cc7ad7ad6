import { TRPCClientError } from '@trpc/client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { AppRouter } from '../src/trpc/root'
import { clientFor, createTemplate, legacyClient, ok, sleepTree } from './fixtures'
import { type Harness, type Identity, makeIdentity, startHarness, waitFor } from './harness'

/**
 * Event streams are bounded: each ends after STDOPS_STREAM_MAX_MS (the client follows again from
 * its last event), a user holds at most STDOPS_STREAM_MAX_PER_USER at once, and lastEventId is
 * validated before it reaches the database.
 */

type Client = ReturnType<typeof clientFor>

interface Stream {
  seqs: number[]
  /** resolves when the server ends the stream ('complete') or refuses it ('error') */
  ended: Promise<{ how: 'complete' | 'error'; error?: unknown; at: number }>
  close(): void
}

function open(c: Client, input: { bk_biz_id: number; task_id: number; lastEventId?: string }): Stream {
  const seqs: number[] = []
  let done: (v: { how: 'complete' | 'error'; error?: unknown; at: number }) => void = () => {}
  const ended = new Promise<{ how: 'complete' | 'error'; error?: unknown; at: number }>((r) => {
    done = r
  })
  const sub = c.task.events.subscribe(input, {
    onData: (t) => seqs.push(Number(t.id)),
    onComplete: () => done({ how: 'complete', at: Date.now() }),
    onError: (error) => done({ how: 'error', error, at: Date.now() }),
  })
  return { seqs, ended, close: () => sub.unsubscribe() }
}

async function runningTask(h: Harness, id: Identity) {
  const c = legacyClient(h, id)
  const templateId = await createTemplate(c, sleepTree('600').tree)
  return ok<{ task_id: number }>(
    await c.post('create_and_start_task', { template_id: templateId, name: 'long' }),
  ).task_id
}

describe('maximum duration', () => {
  let h: Harness
  beforeAll(async () => {
    h = await startHarness({ env: { STDOPS_STREAM_MAX_MS: '1500' } })
  })
  afterAll(async () => {
    await h?.close()
  })

  it('a stream of a task still running ends after STDOPS_STREAM_MAX_MS and resumes from its last event', async () => {
    const id = await makeIdentity(h.deps)
    const c = clientFor(h.url, id)
    const taskId = await runningTask(h, id)
    const t0 = Date.now()
    const first = open(c, { bk_biz_id: id.bkBizId, task_id: taskId })
    const end = await first.ended
    expect(end.how).toBe('complete')
    // the limit, not something sooner (margin for a loaded machine on the other side)
    expect(end.at - t0).toBeGreaterThanOrEqual(1400)
    expect(end.at - t0).toBeLessThan(10_000)
    expect(first.seqs.length).toBeGreaterThan(0)
    await waitFor(async () => (h.deps.streams.openFor(id.username) === 0 ? true : undefined))
    // resumed from the last event seen: nothing is sent twice, and the stream is live again
    const last = first.seqs.at(-1)!
    const again = open(c, { bk_biz_id: id.bkBizId, task_id: taskId, lastEventId: String(last) })
    await waitFor(async () => (h.deps.streams.openFor(id.username) === 1 ? true : undefined))
    ok(await legacyClient(h, id).post('operate_task', { task_id: taskId, action: 'revoke' }))
    const second = await again.ended
    expect(second.how).toBe('complete')
    expect(again.seqs[0]).toBe(last + 1)
    expect(Math.min(...again.seqs)).toBeGreaterThan(last)
  })
})

describe('open streams per user, and lastEventId', () => {
  let h: Harness
  beforeAll(async () => {
    h = await startHarness({ env: { STDOPS_STREAM_MAX_PER_USER: '2' } })
  })
  afterAll(async () => {
    await h?.close()
  })

  it('a user holds at most STDOPS_STREAM_MAX_PER_USER streams; the next is refused naming the limit, another user is not affected', async () => {
    const id = await makeIdentity(h.deps)
    const other = await makeIdentity(h.deps, { projectId: id.projectId })
    const c = clientFor(h.url, id)
    const taskId = await runningTask(h, id)
    const ref = { bk_biz_id: id.bkBizId, task_id: taskId }
    const a = open(c, ref)
    const b = open(c, ref)
    await waitFor(async () => (h.deps.streams.openFor(id.username) === 2 ? true : undefined))
    const third = open(c, ref)
    const refused = await third.ended
    expect(refused.how).toBe('error')
    const err = refused.error as TRPCClientError<AppRouter>
    expect(err).toBeInstanceOf(TRPCClientError)
    expect(err.data).toMatchObject({ code: 'TOO_MANY_REQUESTS', legacyCode: 1306429 })
    expect(err.message).toMatch(
      /too many open event streams for user .+: at most 2 at once \(STDOPS_STREAM_MAX_PER_USER\)/,
    )
    expect(h.deps.streams.openFor(id.username)).toBe(2)
    // another user of the same project is not affected
    const theirs = open(clientFor(h.url, other), ref)
    await waitFor(async () => (h.deps.streams.openFor(other.username) === 1 ? true : undefined))
    // closing one frees its slot
    a.close()
    await waitFor(async () => (h.deps.streams.openFor(id.username) === 1 ? true : undefined))
    const fourth = open(c, ref)
    await waitFor(async () => (h.deps.streams.openFor(id.username) === 2 ? true : undefined))
    for (const s of [b, theirs, fourth]) s.close()
    await waitFor(async () =>
      h.deps.streams.openFor(id.username) + h.deps.streams.openFor(other.username) === 0 ? true : undefined,
    )
  })

  it('task.changes counts against the same limit', async () => {
    const id = await makeIdentity(h.deps)
    const c = clientFor(h.url, id)
    const subs = [0, 1, 2].map(() => {
      let result: (v: unknown) => void = () => {}
      const outcome = new Promise((r) => {
        result = r
      })
      const sub = c.task.changes.subscribe(
        { bk_biz_id: id.bkBizId, task_ids: [] },
        { onError: (e) => result(e), onComplete: () => result('complete') },
      )
      return { sub, outcome }
    })
    const refused = await Promise.race(subs.map((s) => s.outcome))
    expect((refused as TRPCClientError<AppRouter>).data).toMatchObject({ code: 'TOO_MANY_REQUESTS' })
    expect(h.deps.streams.openFor(id.username)).toBe(2)
    for (const s of subs) s.sub.unsubscribe()
    await waitFor(async () => (h.deps.streams.openFor(id.username) === 0 ? true : undefined))
  })

  it('a lastEventId above 2^31 − 1 is refused as a bad parameter naming it, on either database; 2^31 − 1 itself is followed', async () => {
    const id = await makeIdentity(h.deps)
    const c = clientFor(h.url, id)
    const taskId = await runningTask(h, id)
    for (const lastEventId of ['2147483648', '99999999999', '18446744073709551616']) {
      const s = open(c, { bk_biz_id: id.bkBizId, task_id: taskId, lastEventId })
      const end = await s.ended
      expect(end.how, lastEventId).toBe('error')
      const err = end.error as TRPCClientError<AppRouter>
      expect(err.data, lastEventId).toMatchObject({ code: 'BAD_REQUEST', legacyCode: 3540000 })
      expect(err.message).toMatch(/lastEventId/)
    }
    const max = open(c, { bk_biz_id: id.bkBizId, task_id: taskId, lastEventId: '2147483647' })
    await waitFor(async () => (h.deps.streams.openFor(id.username) === 1 ? true : undefined))
    ok(await legacyClient(h, id).post('operate_task', { task_id: taskId, action: 'revoke' }))
    // past every event: the stream sends nothing, and it is not an internal error
    max.close()
    expect(max.seqs).toEqual([])
    await waitFor(async () => (h.deps.streams.openFor(id.username) === 0 ? true : undefined))
  })
})
