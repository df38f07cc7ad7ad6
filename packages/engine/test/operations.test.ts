import { createTreeBuilder } from '@stdops/core/testing'
import { sql } from '@stdops/db'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Engine } from '../src/index'
import {
  createHarness,
  events,
  gapFree,
  type Harness,
  httpServer,
  insertTask,
  jobs,
  nodes,
  operate,
  task,
  waitFor,
  waitForState,
} from './helpers'

let h: Harness
let engine: Engine

beforeAll(async () => {
  h = await createHarness()
  engine = await h.engine({ callbackRetryMs: 50 })
})
afterAll(async () => {
  await h?.close()
})

/** start → parallel → 10 × (first → second) → converge → end. */
function forkOfTen(first: { code: string; data: Record<string, { hook: boolean; value: unknown }> }) {
  const b = createTreeBuilder()
  const fork = b.gateway('ParallelGateway')
  const join = b.gateway('ConvergeGateway')
  b.chain(b.startId, fork)
  const firsts: string[] = []
  const seconds: string[] = []
  for (let i = 0; i < 10; i++) {
    const a = b.activity(first.code, { data: first.data })
    const c = b.activity('noop')
    b.chain(fork, a, c, join)
    firsts.push(a)
    seconds.push(c)
  }
  b.chain(join, b.endId)
  return { tree: b.build(), firsts, seconds }
}

async function pauseAndResume(first: {
  code: string
  data: Record<string, { hook: boolean; value: unknown }>
}) {
  const { tree, firsts, seconds } = forkOfTen(first)
  const id = await insertTask(h.db, tree)
  await operate(engine, id, 'start')
  await waitFor('10 running first nodes', async () => (await engine.runningNodes(h.db, id)) === 10)
  const pausedAt = await operate(engine, id, 'pause')

  // The running ones carry on and finish; what they lead to is held.
  await waitFor(
    'the running nodes to finish',
    async () => (await engine.runningNodes(h.db, id)) === 0,
    10_000,
  )
  await new Promise((r) => setTimeout(r, 300))
  let n = await nodes(h.db, id)
  for (const a of firsts) expect(n.get(a)?.state).toBe('FINISHED')
  for (const c of seconds) expect(n.get(c)?.state).toBe('READY')
  const late = [...n.values()].filter((x) => x.started_at !== null && x.started_at > pausedAt)
  expect(late.map((x) => x.node_id)).toEqual([])
  expect((await task(h.db, id)).state).toBe('SUSPENDED')
  expect((await jobs(h.db, id)).filter((j) => j.kind === 'node')).toHaveLength(10)

  const resumedAt = await operate(engine, id, 'resume')
  await waitForState(h.db, id, 'FINISHED')
  n = await nodes(h.db, id)
  for (const c of seconds) {
    expect(n.get(c)?.state).toBe('FINISHED')
    expect(n.get(c)!.started_at!).toBeGreaterThanOrEqual(resumedAt)
  }
  expect(gapFree((await events(h.db, id)).map((e) => e.seq))).toBe(true)
}

describe('pause and resume', () => {
  // The branches last 1 s: on a loaded machine the ten starts and the pause fit in it, so every
  // first node is still running when the pause commits.
  it('pause on a fork of 10 running branches (workers held ~1 s): no node starts after the pause commits, the running ones finish, resume finishes the task', async () => {
    await pauseAndResume({ code: 'sleep_ms', data: { ms: { hook: false, value: 1000 } } })
  })

  it('the same with sleep_timer nodes: their timers fire during the pause, what follows waits for resume', async () => {
    await pauseAndResume({ code: 'sleep_timer', data: { bk_timing: { hook: false, value: 1 } } })
  })

  it('a running timer fires on time while its task is paused, however many of its jobs are held', async () => {
    // Nine quick branches finish during the pause and leave nine held node jobs, due before the
    // tenth branch's timer: the claim must rank only what it may claim, or the timer waits for resume.
    const b = createTreeBuilder()
    const fork = b.gateway('ParallelGateway')
    const join = b.gateway('ConvergeGateway')
    b.chain(b.startId, fork)
    for (let i = 0; i < 9; i++) {
      b.chain(
        fork,
        b.activity('sleep_ms', { data: { ms: { hook: false, value: 1500 } } }),
        b.activity('noop'),
        join,
      )
    }
    const timer = b.activity('sleep_timer', { data: { bk_timing: { hook: false, value: 3 } } })
    b.chain(fork, timer, join)
    b.chain(join, b.endId)
    const id = await insertTask(h.db, b.build())
    await operate(engine, id, 'start')
    await waitFor(
      'ten running nodes and the timer row',
      async () =>
        (await engine.runningNodes(h.db, id)) === 10 &&
        (await jobs(h.db, id)).some((j) => j.kind === 'timer'),
    )
    await operate(engine, id, 'pause')
    const [timerJob] = (await jobs(h.db, id)).filter((j) => j.kind === 'timer')
    await waitFor(
      'nine held node jobs',
      async () => (await jobs(h.db, id)).filter((j) => j.kind === 'node').length === 9,
    )
    const fired = await waitFor(
      'the timer to fire',
      async () => (await nodes(h.db, id)).get(timer)?.finished_at ?? null,
      5000,
    )
    expect(fired - Number(timerJob!.due_at)).toBeLessThan(1500)
    expect((await task(h.db, id)).state).toBe('SUSPENDED')
    await operate(engine, id, 'resume')
    await waitForState(h.db, id, 'FINISHED')
  })

  it('a pause racing with many node completions never lets a node start after it', async () => {
    const b = createTreeBuilder()
    const fork = b.gateway('ParallelGateway')
    const join = b.gateway('ConvergeGateway')
    b.chain(b.startId, fork)
    for (let i = 0; i < 30; i++) {
      b.chain(
        fork,
        b.activity('sleep_ms', { data: { ms: { hook: false, value: 5 + (i % 7) * 5 } } }),
        b.activity('noop'),
        join,
      )
    }
    b.chain(join, b.endId)
    const id = await insertTask(h.db, b.build())
    await operate(engine, id, 'start')
    await new Promise((r) => setTimeout(r, 20))
    const pausedAt = await operate(engine, id, 'pause')
    await waitFor('quiet', async () => (await engine.runningNodes(h.db, id)) === 0)
    await new Promise((r) => setTimeout(r, 200))
    const late = [...(await nodes(h.db, id)).values()].filter(
      (x) => x.started_at !== null && x.started_at > pausedAt,
    )
    expect(late).toEqual([])
    await operate(engine, id, 'resume')
    await waitForState(h.db, id, 'FINISHED')
  })
})

describe('revoke', () => {
  it('revoke during a long sleep_timer: node and task REVOKED at once, timer dropped, callback_url called exactly once', async () => {
    const receiver = await httpServer((_req, res) => {
      res.writeHead(200).end('ok')
    })
    try {
      const b = createTreeBuilder()
      const timer = b.activity('sleep_timer', { data: { bk_timing: { hook: false, value: 3600 } } })
      b.chain(b.startId, timer, b.endId)
      const id = await insertTask(h.db, b.build(), { callbackUrl: `${receiver.url}/cb` })
      await operate(engine, id, 'start')
      await waitFor('the timer row', async () => (await jobs(h.db, id)).some((j) => j.kind === 'timer'))
      const t0 = Date.now()
      await operate(engine, id, 'revoke')
      await waitFor('node REVOKED', async () => (await nodes(h.db, id)).get(timer)?.state === 'REVOKED', 1000)
      expect(Date.now() - t0).toBeLessThan(1000)
      expect((await task(h.db, id)).state).toBe('REVOKED')
      await waitFor('the callback', async () => receiver.calls.length === 1)
      await waitFor('callback recorded', async () => (await task(h.db, id)).callback_status === 'success')
      await new Promise((r) => setTimeout(r, 300))
      expect(receiver.calls).toHaveLength(1)
      expect(Object.fromEntries(new URLSearchParams(receiver.calls[0]!.body))).toEqual({
        task_id: String(id),
        task_success: 'False',
        task_status: 'REVOKED',
      })
      expect(await jobs(h.db, id)).toEqual([])
      const t = await task(h.db, id)
      expect(t.callback_attempts).toBe(1)
      const history = await h.db.query<{ state: string; finished_at: number | null }>(
        sql`SELECT state, finished_at FROM node_histories WHERE task_id = ${id} AND node_id = ${timer}`,
      )
      expect(history).toHaveLength(1)
      expect(history[0]!.state).toBe('REVOKED')
      expect(history[0]!.finished_at).not.toBeNull()
    } finally {
      await receiver.close()
    }
  })

  it('revoke during a bk_http_request to a slow server: the request is aborted within 1 s and its result fenced', async () => {
    let closedAt = 0
    const slow = await httpServer((req, res) => {
      req.socket.on('close', () => {
        closedAt = Date.now()
      })
      setTimeout(() => res.writeHead(200).end('{}'), 20_000).unref()
    })
    const receiver = await httpServer((_req, res) => {
      res.writeHead(204).end()
    })
    try {
      const b = createTreeBuilder()
      const call = b.activity('bk_http_request', {
        data: {
          bk_http_request_method: { hook: false, value: 'GET' },
          bk_http_request_url: { hook: false, value: `${slow.url}/slow` },
          bk_http_timeout: { hook: false, value: 60 },
        },
      })
      b.chain(b.startId, call, b.endId)
      const id = await insertTask(h.db, b.build(), { callbackUrl: `${receiver.url}/cb` })
      await operate(engine, id, 'start')
      await waitFor('the request to arrive', async () => slow.calls.length === 1 || null)
      const t0 = Date.now()
      await operate(engine, id, 'revoke')
      expect((await nodes(h.db, id)).get(call)?.state).toBe('REVOKED')
      await waitFor('the connection to close', async () => closedAt > 0, 1000)
      expect(closedAt - t0).toBeLessThan(1000)
      const fenced = await waitFor('the fenced result', async () => {
        const rows = await h.db.query<{ node_id: string; reason: string }>(
          sql`SELECT node_id, reason FROM fenced_results WHERE task_id = ${id}`,
        )
        return rows.length > 0 ? rows : null
      })
      expect(fenced[0]!.node_id).toBe(call)
      expect((await nodes(h.db, id)).get(call)?.state).toBe('REVOKED')
      await waitFor('the callback', async () => receiver.calls.length === 1)
      await new Promise((r) => setTimeout(r, 200))
      expect(receiver.calls).toHaveLength(1)
      expect((await task(h.db, id)).callback_status).toBe('success')
    } finally {
      await slow.close()
      await receiver.close()
    }
  })
})

describe('callback_url', () => {
  it('is called once after FINISHED commits, with the final state', async () => {
    const receiver = await httpServer((_req, res) => {
      res.writeHead(200).end()
    })
    try {
      const b = createTreeBuilder()
      b.chain(b.startId, b.activity('noop'), b.endId)
      const id = await insertTask(h.db, b.build(), { callbackUrl: `${receiver.url}/done` })
      await operate(engine, id, 'start')
      await waitForState(h.db, id, 'FINISHED')
      await waitFor('callback recorded', async () => (await task(h.db, id)).callback_status === 'success')
      await new Promise((r) => setTimeout(r, 200))
      expect(receiver.calls).toHaveLength(1)
      expect(receiver.calls[0]).toMatchObject({ method: 'POST', url: '/done' })
      expect(Object.fromEntries(new URLSearchParams(receiver.calls[0]!.body))).toEqual({
        task_id: String(id),
        task_success: 'True',
        task_status: 'FINISHED',
      })
    } finally {
      await receiver.close()
    }
  })

  it('is retried with backoff on failure and recorded; never sent again after it succeeded', async () => {
    let answers = 0
    const receiver = await httpServer((_req, res) => {
      answers += 1
      res.writeHead(answers <= 2 ? 500 : 200).end()
    })
    try {
      const b = createTreeBuilder()
      b.chain(b.startId, b.activity('noop'), b.endId)
      const id = await insertTask(h.db, b.build(), { callbackUrl: `${receiver.url}/flaky` })
      await operate(engine, id, 'start')
      await waitFor('callback recorded', async () => (await task(h.db, id)).callback_status === 'success')
      await new Promise((r) => setTimeout(r, 300))
      expect(receiver.calls).toHaveLength(3)
      const t = await task(h.db, id)
      expect(t.callback_attempts).toBe(3)
      expect(t.callback_error).toBeNull()
    } finally {
      await receiver.close()
    }
  })

  it('gives up after 5 tries and records the failure', async () => {
    const receiver = await httpServer((_req, res) => {
      res.writeHead(503).end()
    })
    try {
      const b = createTreeBuilder()
      b.chain(b.startId, b.activity('noop'), b.endId)
      const id = await insertTask(h.db, b.build(), { callbackUrl: `${receiver.url}/down` })
      await operate(engine, id, 'start')
      await waitFor(
        'callback failed',
        async () => (await task(h.db, id)).callback_status === 'failed',
        15_000,
      )
      const t = await task(h.db, id)
      expect(t.callback_attempts).toBe(5)
      expect(t.callback_error).toMatch(/503/)
      expect(receiver.calls).toHaveLength(5)
      expect(await jobs(h.db, id)).toEqual([])
    } finally {
      await receiver.close()
    }
  })
})
