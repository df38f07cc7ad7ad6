import { createTreeBuilder } from '@stdops/core/testing'
import { sql } from '@stdops/db'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createRuntime } from '../src/deps'
import { readEnv } from '../src/env'
import { followTaskEvents, type TaskEvent } from '../src/services/events'
import { operateTask } from '../src/services/tasks'
import { createTask, createTemplate, type LegacyClient, legacyClient, ok } from './fixtures'
import { type Harness, type Identity, makeIdentity, startHarness, waitFor } from './harness'

/**
 * The event stream is woken by the commit that appended events (NOTIFY on PostgreSQL, across
 * processes; in-process on SQLite), not by its poll: followed with a poll of 60 s, a run's events
 * still arrive as they commit.
 */

const POLL_MS = 60_000
/** SQLite serves one process: a change made elsewhere is a PostgreSQL matter. */
const ON_POSTGRES = /^postgres(ql)?:/.test(process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL ?? '')
let h: Harness
let id: Identity
let c: LegacyClient

beforeAll(async () => {
  h = await startHarness()
  id = await makeIdentity(h.deps)
  c = legacyClient(h, id)
})
afterAll(async () => {
  await h?.close()
})

/** start → set_variables → sleep_timer (`seconds`) → end. */
function tree(seconds: number) {
  const b = createTreeBuilder()
  const vars = b.activity('set_variables', { data: { variables: { hook: false, value: { x: '1' } } } })
  const sleep = b.activity('sleep_timer', { data: { bk_timing: { hook: false, value: String(seconds) } } })
  b.chain(b.startId, vars, sleep, b.endId)
  return b.build()
}

async function collect(taskId: number, signal?: AbortSignal): Promise<TaskEvent[]> {
  const got: TaskEvent[] = []
  for await (const e of followTaskEvents(h.deps, taskId, 0, signal, { pollMs: POLL_MS })) got.push(e)
  return got
}

async function tableSeqs(taskId: number) {
  const rows = await h.deps.db.query<{ seq: number }>(
    sql`SELECT seq FROM task_events WHERE task_id = ${taskId} ORDER BY seq`,
  )
  return rows.map((r) => Number(r.seq))
}

describe('the event stream is woken after commit', () => {
  it('a run followed with a 60 s poll delivers every event as it commits and ends after FINISHED', async () => {
    const taskId = await createTask(c, await createTemplate(c, tree(1)))
    const began = Date.now()
    const following = collect(taskId)
    ok(await c.post('operate_task', { task_id: taskId, action: 'start' }))
    const got = await following
    // Several commits, a 1 s timer between them: a follower sleeping its 60 s poll would still be asleep.
    expect(Date.now() - began).toBeLessThan(20_000)
    expect(got.map((e) => e.seq)).toEqual(await tableSeqs(taskId))
    expect(got.at(-1)).toMatchObject({ type: 'task_state', state: 'FINISHED' })
  }, 40_000)

  it.runIf(ON_POSTGRES)(
    'on PostgreSQL, a revoke made by another process wakes the follower at once',
    async () => {
      const taskId = await createTask(c, await createTemplate(c, tree(600)))
      ok(await c.post('operate_task', { task_id: taskId, action: 'start' }))
      await waitFor(async () => {
        const rows = await h.deps.db.query<{ n: number }>(
          sql`SELECT COUNT(*) AS n FROM node_states WHERE task_id = ${taskId} AND state = ${'RUNNING'}`,
        )
        return Number(rows[0]?.n) === 1 ? true : undefined
      })
      const following = collect(taskId)
      // Let the follower read what is there and go to sleep on its 60 s poll.
      await new Promise((r) => setTimeout(r, 500))
      const other = await createRuntime(
        readEnv({ DATABASE_URL: h.dbUrl, LOG_LEVEL: 'silent', STDOPS_DEMO: '0' }),
        pino({ level: 'silent' }),
      )
      const revokedAt = Date.now()
      try {
        const caller = {
          app: { id: 0, code: id.appCode, trusted: true },
          username: id.username,
          userId: null,
        }
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
      const got = await following
      expect(Date.now() - revokedAt).toBeLessThan(10_000)
      expect(got.map((e) => e.seq)).toEqual(await tableSeqs(taskId))
      expect(got.some((e) => e.type === 'task_state' && e.state === 'REVOKED')).toBe(true)
    },
    40_000,
  )
})
