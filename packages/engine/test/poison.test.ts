import { Writable } from 'node:stream'
import { createTreeBuilder } from '@stdops/core/testing'
import { createDb, openSqlite, sql, sqlitePath } from '@stdops/db'
import pino from 'pino'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { createEngine, defineComponent, type Engine } from '../src/index'
import { TEST_COMPONENTS } from '../src/testing'
import {
  createHarness,
  events,
  type Harness,
  insertTask,
  jobs,
  nodes,
  operate,
  PROVIDER,
  waitFor,
} from './helpers'

/**
 * Poison jobs and transient database errors: a job whose transaction keeps failing is retried
 * with backoff and its node ends FAILED with the error after a bounded number of tries; a
 * component's result survives a transient database error (a held SQLite write lock, a killed
 * PostgreSQL connection) and is recorded once, the component having run once.
 */

let executions = 0
/** Before its result is returned: what the test does to the database meanwhile. */
let beforeReturn: (taskId: number) => Promise<void> = async () => {}

/** Finishes with outputs that cannot be written: serialising them throws inside the transaction. */
const poisonOutput = defineComponent({
  code: 'poison_output',
  inputs: z.object({}).loose(),
  outputs: z.custom<Record<string, unknown>>((v) => typeof v === 'object' && v !== null),
  async execute() {
    executions += 1
    return {
      status: 'finished',
      outputs: {
        toJSON() {
          throw new Error('poisoned output')
        },
      },
    }
  },
})

/** Its inputs cannot be checked: validating them throws, inside the node's start transaction. */
const poisonInputs = defineComponent({
  code: 'poison_inputs',
  inputs: z
    .object({})
    .loose()
    .transform(() => {
      throw new Error('poisoned inputs')
    }),
  outputs: z.object({}),
  async execute() {
    executions += 1
    return { status: 'finished', outputs: {} }
  },
})

/** Counts its runs; lets the test act on the database before it returns its result. */
const counted = defineComponent({
  code: 'counted',
  inputs: z.object({}).loose(),
  outputs: z.object({ ran: z.number() }),
  async execute(_inputs, ctx) {
    executions += 1
    await beforeReturn(ctx.taskId)
    return { status: 'finished', outputs: { ran: executions } }
  },
})

let h: Harness
let logLines: Array<Record<string, unknown>>
let engine: Engine
beforeEach(async () => {
  executions = 0
  beforeReturn = async () => {}
  logLines = []
  h = await createHarness()
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString('utf8').split('\n')) if (l.trim()) logLines.push(JSON.parse(l))
      done()
    },
  })
  engine = createEngine({
    db: h.db,
    components: [...TEST_COMPONENTS, poisonOutput, poisonInputs, counted],
    pollMs: 50,
    jobRetryMs: 10,
    logger: pino({ level: 'info' }, sink),
  })
  h.engines.push(engine)
  await engine.startWorker()
})
afterEach(async () => {
  await h?.close()
})

function oneNode(code: string) {
  const b = createTreeBuilder()
  const node = b.activity(code)
  b.chain(b.startId, node, b.endId)
  return { tree: b.build(), node }
}

async function historyOf(taskId: number, nodeId: string) {
  return h.db.query<{ attempt: number; state: string; error: string | null }>(
    sql`SELECT attempt, state, error FROM node_histories WHERE task_id = ${taskId} AND node_id = ${nodeId} ORDER BY id`,
  )
}

async function waitForNode(taskId: number, nodeId: string, state: string, timeoutMs = 20_000) {
  return waitFor(
    `node ${nodeId} ${state}`,
    async () => {
      const n = (await nodes(h.db, taskId)).get(nodeId)
      return n?.state === state ? n : null
    },
    timeoutMs,
  )
}

describe('poison jobs', () => {
  it('a result whose transaction always throws: the node ends FAILED with the error after 8 tries; the component ran once', async () => {
    const { tree, node } = oneNode('poison_output')
    const id = await insertTask(h.db, tree)
    await operate(engine, id, 'start')
    const failed = await waitForNode(id, node, 'FAILED')
    expect(failed.error).toMatch(/recording the result failed: poisoned output \(8 tries\)/)
    expect(executions).toBe(1)
    // Nothing loops: its job is gone, one pass in its history, the failure once in the event log.
    expect(await jobs(h.db, id)).toEqual([])
    expect((await historyOf(id, node)).map((r) => r.state)).toEqual(['FAILED'])
    const nodeEvents = (await events(h.db, id)).filter((e) => e.node_id === node).map((e) => e.state)
    expect(nodeEvents.filter((s) => s === 'FAILED')).toHaveLength(1)
    expect(
      logLines.filter((l) => l.msg === 'recording a result failed; the result is kept and recorded again'),
    ).toHaveLength(8)
  })

  it('a node whose start transaction always throws: retried with backoff, its last error kept, then FAILED with it; never executed', async () => {
    const { tree, node } = oneNode('poison_inputs')
    const id = await insertTask(h.db, tree)
    await operate(engine, id, 'start')
    // Between tries the job waits, unleased, with its failures and last error on it.
    const kept = await waitFor('a failure kept on the job', async () => {
      const [row] = await h.db.query<{ failures: number; last_error: string | null }>(
        sql`SELECT failures, last_error FROM jobs WHERE task_id = ${id}`,
      )
      return row && Number(row.failures) >= 1 ? row : null
    })
    expect(kept.last_error).toMatch(/poisoned inputs/)
    const failed = await waitForNode(id, node, 'FAILED')
    expect(failed.error).toMatch(/poisoned inputs \(8 tries\)/)
    expect(executions).toBe(0)
    expect(await jobs(h.db, id)).toEqual([])
    expect(logLines.filter((l) => l.msg === 'job failed; it will be retried')).toHaveLength(8)
  })
})

describe('transient database errors while a result is recorded', () => {
  it.runIf(PROVIDER === 'sqlite')(
    'SQLite: a write lock held by another connection for 5 s; the result is recorded once, the component ran once, the event loop kept turning',
    async () => {
      let holder: ReturnType<typeof openSqlite> | null = null
      let released = 0
      beforeReturn = async () => {
        holder = openSqlite(h.t.url)
        holder.prepare('BEGIN IMMEDIATE').run()
        setTimeout(() => {
          holder?.prepare('COMMIT').run()
          holder?.close()
          released = Date.now()
        }, 5000)
      }
      // The event loop's longest stall while the lock is held.
      let last = Date.now()
      let stall = 0
      const ticker = setInterval(() => {
        const t = Date.now()
        stall = Math.max(stall, t - last)
        last = t
      }, 20)
      try {
        const { tree, node } = oneNode('counted')
        const id = await insertTask(h.db, tree)
        await operate(engine, id, 'start')
        const finished = await waitForNode(id, node, 'FINISHED')
        expect(released).toBeGreaterThan(0)
        expect(Number(finished.finished_at)).toBeGreaterThanOrEqual(released - 50)
        expect(executions).toBe(1)
        expect((await historyOf(id, node)).map((r) => `${r.attempt}:${r.state}`)).toEqual(['1:FINISHED'])
        const [fenced] = await h.db.query<{ n: number }>(sql`SELECT COUNT(*) AS n FROM fenced_results`)
        expect(Number(fenced!.n)).toBe(0)
        // Never frozen for the lock's 5 s (a margin for a loaded machine, where any process may wait its turn).
        expect(stall).toBeLessThan(2500)
      } finally {
        clearInterval(ticker)
      }
      expect(sqlitePath(h.t.url)).not.toBe(':memory:')
    },
    30_000,
  )

  it.runIf(PROVIDER === 'postgresql')(
    "PostgreSQL: the recording transaction's connection is killed (pg_terminate_backend); the result is recorded once, the component ran once",
    async () => {
      // Another process's connections: one holds the task row, one watches and kills.
      const other = createDb(h.t.url, { poolSize: 2 })
      let killed: number | null = null
      let holding: Promise<void> | null = null
      try {
        // The component returns while the test holds its task row: the recording waits on the lock.
        beforeReturn = async (taskId) => {
          let locked!: () => void
          const isLocked = new Promise<void>((r) => {
            locked = r
          })
          holding = other.tx(async (tx) => {
            await tx.query(sql`SELECT id FROM tasks WHERE id = ${taskId} FOR UPDATE`)
            locked()
            const [row] = await waitFor('the recording waiting on the task row', async () => {
              const r = await other.query<{ pid: number }>(
                sql`SELECT pid FROM pg_stat_activity WHERE datname = current_database()
                      AND wait_event_type = 'Lock' AND state = 'active'`,
              )
              return r.length > 0 ? r : null
            })
            killed = Number(row!.pid)
            await other.query(sql`SELECT pg_terminate_backend(${killed})`)
          })
          await isLocked
        }
        const { tree, node } = oneNode('counted')
        const id = await insertTask(h.db, tree)
        await operate(engine, id, 'start')
        await waitForNode(id, node, 'FINISHED')
        expect(killed).not.toBeNull()
        expect(executions).toBe(1)
        expect((await historyOf(id, node)).map((r) => `${r.attempt}:${r.state}`)).toEqual(['1:FINISHED'])
        const [fenced] = await h.db.query<{ n: number }>(sql`SELECT COUNT(*) AS n FROM fenced_results`)
        expect(Number(fenced!.n)).toBe(0)
        // The kill was felt, and the kept result recorded again.
        const retried = logLines.filter(
          (l) => l.msg === 'recording a result failed; the result is kept and recorded again',
        )
        expect(retried).toHaveLength(1)
      } finally {
        await holding
        await other.close()
      }
    },
    30_000,
  )
})
