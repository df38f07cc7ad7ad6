import { createTreeBuilder } from '@stdops/core/testing'
import { sql } from '@stdops/db'
import { TRPCClientError } from '@trpc/client'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createRuntime } from '../src/deps'
import { readEnv } from '../src/env'
import { followTaskEvents, type TaskEvent } from '../src/services/events'
import { operateTask } from '../src/services/tasks'
import type { AppRouter } from '../src/trpc/root'
import { clientFor } from './fixtures'
import { type Harness, type Identity, makeIdentity, startHarness, waitFor } from './harness'

/** start → set_variables → sleep_timer (`seconds`) → end: a short real run. */
function shortTree(seconds: number) {
  const b = createTreeBuilder()
  const vars = b.activity('set_variables', {
    name: 'set',
    data: { variables: { hook: false, value: { x: '1' } } },
  })
  const sleep = b.activity('sleep_timer', {
    name: 'sleep',
    data: { bk_timing: { hook: false, value: String(seconds) } },
  })
  b.chain(b.startId, vars, sleep, b.endId)
  return b.build()
}

type Client = ReturnType<typeof clientFor>

interface Followed {
  events: Array<{ id: string; data: Omit<TaskEvent, 'data'> & { data?: unknown } }>
  /** the server ended the stream (after the final event) */
  completed: boolean
  /** times the link lost the connection and reopened it */
  reconnects: number
}

/**
 * Subscribes to task.events and collects until the server ends the stream, or until `cutAfter`
 * says to cut it (the subscription is aborted, as a dropped connection would be).
 */
function follow(
  client: Client,
  input: { bk_biz_id: number; task_id: number; lastEventId?: string },
  cutAfter?: (e: TaskEvent) => boolean,
): Promise<Followed> {
  return new Promise((resolve, reject) => {
    const events: Followed['events'] = []
    let cut = false
    let reconnects = 0
    const timer = setTimeout(() => {
      sub.unsubscribe()
      reject(new Error(`no end of stream within 20 s; got seqs ${events.map((e) => e.id).join(',')}`))
    }, 20_000)
    const sub = client.task.events.subscribe(input, {
      onData: (tracked) => {
        events.push(tracked)
        if (!cut && cutAfter?.(tracked.data as TaskEvent)) {
          cut = true
          clearTimeout(timer)
          sub.unsubscribe()
          resolve({ events, completed: false, reconnects })
        }
      },
      // also called when we cut the stream ourselves
      onComplete: () => {
        clearTimeout(timer)
        resolve({ events, completed: !cut, reconnects })
      },
      onConnectionStateChange: (state) => {
        if (state.state === 'connecting' && state.error) reconnects += 1
      },
      onError: (err) => {
        clearTimeout(timer)
        reject(err)
      },
    })
  })
}

async function tableSeqs(h: Harness, taskId: number) {
  const rows = await h.deps.db.query<{ seq: number; type: string; node_id: string | null; state: string }>(
    sql`SELECT seq, type, node_id, state FROM task_events WHERE task_id = ${taskId} ORDER BY seq`,
  )
  return rows.map((r) => ({ seq: Number(r.seq), type: r.type, node_id: r.node_id ?? null, state: r.state }))
}

const shape = (f: Followed) =>
  f.events.map((e) => ({ seq: e.data.seq, type: e.data.type, node_id: e.data.node_id, state: e.data.state }))

describe('task.events', () => {
  let h: Harness
  let id: Identity
  let client: Client
  let templateId: number
  let longTemplateId: number
  let mediumTemplateId: number

  beforeAll(async () => {
    h = await startHarness()
    id = await makeIdentity(h.deps, { role: 'admin' })
    client = clientFor(h.url, id)
    templateId = (
      await client.template.create.mutate({
        bk_biz_id: id.bkBizId,
        name: 'short',
        pipeline_tree: shortTree(1),
      })
    ).template_id
    longTemplateId = (
      await client.template.create.mutate({
        bk_biz_id: id.bkBizId,
        name: 'long',
        pipeline_tree: shortTree(60),
      })
    ).template_id
    mediumTemplateId = (
      await client.template.create.mutate({
        bk_biz_id: id.bkBizId,
        name: 'medium',
        pipeline_tree: shortTree(3),
      })
    ).template_id
  })
  afterAll(async () => {
    await h?.close()
  })

  const newTask = async (name: string, template = templateId) =>
    (await client.task.create.mutate({ bk_biz_id: id.bkBizId, template_id: template, name })).task_id

  it('streams every transition of a run in seq order, tracked by seq, and ends after FINISHED', async () => {
    const taskId = await newTask('whole run')
    const following = follow(client, { bk_biz_id: id.bkBizId, task_id: taskId })
    await client.task.start.mutate({ bk_biz_id: id.bkBizId, task_id: taskId })
    const got = await following
    expect(got.completed).toBe(true)
    expect(got.events.map((e) => e.id)).toEqual(got.events.map((e) => String(e.data.seq)))
    expect(shape(got)).toEqual(await tableSeqs(h, taskId))
    const states = got.events.map(
      (e) => `${e.data.type === 'task_state' ? 'task' : e.data.node_id}:${e.data.state}`,
    )
    expect(states[0]).toBe('task:CREATED')
    expect(states[1]).toBe('task:RUNNING')
    expect(states.at(-1)).toBe('task:FINISHED')
    // Each node of the short tree runs and finishes, in the tree's order.
    const finishedNodes = got.events
      .filter((e) => e.data.type === 'node_state' && e.data.state === 'FINISHED')
      .map((e) => e.data.node_id)
    expect(finishedNodes).toHaveLength(4)
  })

  it('a subscription cut mid-run and resumed with its last id misses nothing and repeats nothing', async () => {
    const taskId = await newTask('cut and resume')
    const first = follow(
      client,
      { bk_biz_id: id.bkBizId, task_id: taskId },
      (e) => e.type === 'node_state' && e.state === 'RUNNING',
    )
    await client.task.start.mutate({ bk_biz_id: id.bkBizId, task_id: taskId })
    const before = await first
    expect(before.completed).toBe(false)
    // Events go on committing while nobody listens.
    await new Promise((r) => setTimeout(r, 400))
    const lastId = before.events.at(-1)!.id
    const after = await follow(client, { bk_biz_id: id.bkBizId, task_id: taskId, lastEventId: lastId })
    expect(after.completed).toBe(true)
    expect(after.events[0]!.data.seq).toBe(Number(lastId) + 1)
    const seqs = [...before.events, ...after.events].map((e) => e.data.seq)
    const table = await tableSeqs(h, taskId)
    expect(seqs).toEqual(table.map((r) => r.seq))
    expect([...shape(before), ...shape(after)]).toEqual(table)
  })

  it('a dropped connection is reopened by the SSE link with its last id: nothing missed, nothing twice', async () => {
    const taskId = await newTask('dropped', mediumTemplateId)
    const following = follow(client, { bk_biz_id: id.bkBizId, task_id: taskId })
    await client.task.start.mutate({ bk_biz_id: id.bkBizId, task_id: taskId })
    await waitFor(async () => {
      const rows = await h.deps.db.query<{ n: number }>(
        sql`SELECT COUNT(*) AS n FROM task_events WHERE task_id = ${taskId} AND type = ${'node_state'}`,
      )
      return Number(rows[0]?.n) >= 3 ? true : undefined
    })
    h.server.app.server.closeAllConnections()
    const got = await following
    expect(got.completed).toBe(true)
    expect(got.reconnects).toBeGreaterThan(0)
    expect(shape(got)).toEqual(await tableSeqs(h, taskId))
  })

  it('resumed at or past the final event, ends at once with nothing', async () => {
    const taskId = await newTask('already over')
    await client.task.start.mutate({ bk_biz_id: id.bkBizId, task_id: taskId })
    const all = await follow(client, { bk_biz_id: id.bkBizId, task_id: taskId })
    const last = all.events.at(-1)!.id
    const again = await follow(client, { bk_biz_id: id.bkBizId, task_id: taskId, lastEventId: last })
    expect(again).toEqual({ events: [], completed: true, reconnects: 0 })
  })

  it('ends after REVOKED and what committed with it, following a change made by another process', async () => {
    const taskId = await newTask('revoked elsewhere', longTemplateId)
    await client.task.start.mutate({ bk_biz_id: id.bkBizId, task_id: taskId })
    await waitFor(async () => {
      const rows = await h.deps.db.query<{ n: number }>(
        sql`SELECT COUNT(*) AS n FROM node_states WHERE task_id = ${taskId} AND state = ${'RUNNING'}`,
      )
      return Number(rows[0]?.n) === 1 ? true : undefined
    })
    const whole = follow(client, { bk_biz_id: id.bkBizId, task_id: taskId })
    const cutAtRevoked = follow(
      client,
      { bk_biz_id: id.bkBizId, task_id: taskId },
      (e) => e.type === 'task_state' && e.state === 'REVOKED',
    )
    // A second API runtime on the same database (no worker): nothing it does notifies this one in-process.
    const other = await createRuntime(
      readEnv({ DATABASE_URL: h.dbUrl, LOG_LEVEL: 'silent', STDOPS_DEMO: '0' }),
      pino({ level: 'silent' }),
    )
    try {
      const caller = { app: { id: 0, code: id.appCode, trusted: true }, username: id.username, userId: null }
      await operateTask(
        other.deps,
        caller,
        { bk_biz_id: id.bkBizId, scope: 'cmdb_biz' },
        taskId,
        'revoke',
        'app',
      )
    } finally {
      await other.close()
    }
    const got = await whole
    const table = await tableSeqs(h, taskId)
    expect(got.completed).toBe(true)
    expect(shape(got)).toEqual(table)
    const revokedAt = table.findIndex((e) => e.type === 'task_state' && e.state === 'REVOKED')
    // the sleeping node is revoked in the same transaction, after the task's own event
    expect(table.slice(revokedAt + 1).map((e) => `${e.type}:${e.state}`)).toEqual(['node_state:REVOKED'])

    // Cut right after the task's REVOKED event: resuming from it still delivers the rest.
    const before = await cutAtRevoked
    const after = await follow(client, {
      bk_biz_id: id.bkBizId,
      task_id: taskId,
      lastEventId: before.events.at(-1)!.id,
    })
    expect(after.completed).toBe(true)
    expect([...shape(before), ...shape(after)]).toEqual(table)
  })

  it('refuses, without retrying, a caller who may not view the task', async () => {
    const taskId = await newTask('private')
    const stranger = await makeIdentity(h.deps, { role: 'admin' })
    const refusal = async (c: Client, bkBizId: number) => {
      const err = await follow(c, { bk_biz_id: bkBizId, task_id: taskId }).then(
        () => null,
        (e: unknown) => e,
      )
      expect(err).toBeInstanceOf(TRPCClientError)
      return (err as TRPCClientError<AppRouter>).data as { legacyCode?: number; code?: string }
    }
    // a task of another project is answered like a missing one
    expect(await refusal(clientFor(h.url, stranger), stranger.bkBizId)).toMatchObject({ legacyCode: 3540400 })
    // no role in the task's project
    expect(await refusal(clientFor(h.url, stranger), id.bkBizId)).toMatchObject({ legacyCode: 3599999 })
    // a wrong secret
    expect(await refusal(clientFor(h.url, { ...id, appSecret: 'wrong' }), id.bkBizId)).toMatchObject({
      legacyCode: 1306000,
    })
  })

  it('a viewer may follow; an invalid lastEventId is a parameter error', async () => {
    const taskId = await newTask('viewed')
    const viewer = await makeIdentity(h.deps, { role: 'viewer', projectId: id.projectId })
    const c = clientFor(h.url, viewer)
    const first = await follow(c, { bk_biz_id: id.bkBizId, task_id: taskId }, () => true)
    expect(first.events.map((e) => e.data.state)).toEqual(['CREATED'])
    const err = await follow(c, { bk_biz_id: id.bkBizId, task_id: taskId, lastEventId: 'x' }).catch(
      (e: unknown) => e,
    )
    expect((err as TRPCClientError<AppRouter>).data).toMatchObject({ legacyCode: 3540000 })
  })

  it('stops following when its signal aborts', async () => {
    const taskId = await newTask('aborted')
    const ac = new AbortController()
    const seen: number[] = []
    const started = Date.now()
    setTimeout(() => ac.abort(), 300)
    for await (const e of followTaskEvents(h.deps, taskId, 0, ac.signal)) seen.push(e.seq)
    expect(seen).toEqual([1])
    expect(Date.now() - started).toBeLessThan(2_000)
  })
})
