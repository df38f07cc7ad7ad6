import { CONSTANT_LIMITS } from '@stdops/core'
import { createTreeBuilder } from '@stdops/core/testing'
import { MAX_BOUND_PARAMETERS, sql } from '@stdops/db'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Engine } from '../src/index'
import { insertEvents } from '../src/store/events'
import { insertJobs, nodeJobRows } from '../src/store/jobs'
import {
  createHarness,
  type Harness,
  httpServer,
  insertTask,
  nodes,
  operate,
  PROVIDER,
  waitFor,
} from './helpers'

let h: Harness
let engine: Engine
beforeAll(async () => {
  h = await createHarness()
  engine = await h.engine()
})
afterAll(async () => {
  await h?.close()
})

describe('many-row inserts', () => {
  it(`inserts more rows than one statement may bind (${PROVIDER}: ${MAX_BOUND_PARAMETERS[PROVIDER]} parameters) in several statements`, async () => {
    const b = createTreeBuilder()
    b.chain(b.startId, b.endId)
    const taskId = await insertTask(h.db, b.build())
    // 7 parameters an event: 12,000 events need 84,000, past both databases' limits
    const events = Array.from({ length: 12_000 }, (_, i) => ({
      type: 'node_state' as const,
      nodeId: `n${i}`,
      state: 'READY',
    }))
    // 9 parameters a job (two of them literals): 10,000 jobs
    const jobs = nodeJobRows(
      taskId,
      Array.from({ length: 10_000 }, (_, i) => `n${i}`),
      Date.now() + 3_600_000,
    )
    await h.db.tx(async (tx) => {
      await insertEvents(tx, taskId, 1, events, Date.now())
      await insertJobs(tx, jobs)
    })
    const [e] = await h.db.query<{ n: number }>(
      sql`SELECT COUNT(*) AS n FROM task_events WHERE task_id = ${taskId}`,
    )
    const [j] = await h.db.query<{ n: number }>(sql`SELECT COUNT(*) AS n FROM jobs WHERE task_id = ${taskId}`)
    expect(Number(e!.n)).toBe(12_000)
    expect(Number(j!.n)).toBe(10_000)
    await h.db.execute(sql`DELETE FROM jobs WHERE task_id = ${taskId}`)
  })
})

describe('outputs', () => {
  it('an answer nested 100,000 deep fails its node naming the limit, instead of breaking the worker when stored', async () => {
    const deep = '['.repeat(100_000) + ']'.repeat(100_000)
    const server = await httpServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(deep)
    })
    try {
      const b = createTreeBuilder()
      const node = b.activity('bk_http_request', {
        data: { bk_http_request_url: { hook: false, value: server.url } },
      })
      b.chain(b.startId, node, b.endId)
      const id = await insertTask(h.db, b.build())
      await operate(engine, id, 'start')
      const row = await waitFor('the node to fail', async () => {
        const n = (await nodes(h.db, id)).get(node)
        return n?.state === 'FAILED' ? n : null
      })
      expect(row.error).toBe(
        'component bk_http_request execute: outputs nest deeper than 64 levels (the limit)',
      )
    } finally {
      await server.close()
    }
  })
})

describe('inputs rendered at node start', () => {
  it('an input that renders past the limit fails its node naming the input and the limit, storing nothing of it', async () => {
    const b = createTreeBuilder()
    const node = b.activity('noop', {
      data: { big: { hook: true, value: '${twice}${twice}' } },
    })
    b.chain(b.startId, node, b.endId)
    b.constant('once', 'z'.repeat(600_000))
    b.constant('twice', '${once}${once}')
    const id = await insertTask(h.db, b.build())
    await operate(engine, id, 'start')
    const row = await waitFor('the node to fail', async () => {
      const n = (await nodes(h.db, id)).get(node)
      return n?.state === 'FAILED' ? n : null
    })
    expect(row.error).toBe(
      `input big renders to more than ${CONSTANT_LIMITS.valueChars} characters (the limit of one rendered value)`,
    )
    expect(row.inputs).toBeNull()
  })
})
