/**
 * PostgreSQL: the node steps of one task do not wait for each other on the task row. One branch's
 * start is held open between its read and its write (a wrapped executor stops it before its write
 * statement); meanwhile the other branch's start commits, and a pause commits, and the held start
 * then writes nothing: a node start commits before a pause or not at all.
 */
import { createTreeBuilder } from '@stdops/core/testing'
import { type Db, type Executor, sql } from '@stdops/db'
import pino from 'pino'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createComponentRegistry } from '../src/components'
import { createEngine, type Engine } from '../src/index'
import { type ClaimedJob, claimJobs, GraphCache } from '../src/store'
import { NO_TELEMETRY } from '../src/telemetry'
import { TEST_COMPONENTS } from '../src/testing'
import { recordResult, type StartOutcome, startNode, type TransitionEnv } from '../src/transitions'
import {
  createHarness,
  events,
  gapFree,
  type Harness,
  insertTask,
  nodes,
  operate,
  PROVIDER,
  task,
  waitFor,
} from './helpers'

const WORKER = 'step-test'

let h: Harness
let engine: Engine
const env: TransitionEnv = {
  registry: createComponentRegistry(TEST_COMPONENTS),
  graphs: new GraphCache(),
  workerId: WORKER,
  logger: pino({ level: 'silent' }),
  telemetry: NO_TELEMETRY,
}

beforeEach(async () => {
  h = await createHarness()
  // No worker: the test runs the steps itself.
  engine = createEngine({ db: h.db, components: TEST_COMPONENTS })
  h.engines.push(engine)
})
afterEach(async () => {
  await h?.close()
})

/** A task whose fork's two branches (noop activities) are due, claimed by WORKER. */
async function forkWithTwoDueBranches(): Promise<{
  taskId: number
  a: string
  b: string
  join: string
  jobs: ClaimedJob[]
}> {
  const t = createTreeBuilder()
  const fork = t.gateway('ParallelGateway')
  const join = t.gateway('ConvergeGateway')
  const a = t.activity('noop')
  const b = t.activity('noop')
  t.chain(t.startId, fork)
  t.chain(fork, a, join)
  t.chain(fork, b, join)
  t.chain(join, t.endId)
  const taskId = await insertTask(h.db, t.build())
  await operate(engine, taskId, 'start')
  const jobs = await claimJobs(h.db, WORKER, Date.now(), 60_000, 10)
  expect(jobs.map((j) => j.nodeId).sort()).toEqual([a, b].sort())
  return { taskId, a, b, join, jobs }
}

/** Runs `step` in a transaction of its own that stops before its write statement until release() is called. */
function heldStep<T>(db: Db, step: (tx: Executor) => Promise<T>) {
  let reachedWrite!: () => void
  const atWrite = new Promise<void>((resolve) => {
    reachedWrite = resolve
  })
  let release!: () => void
  const released = new Promise<void>((resolve) => {
    release = resolve
  })
  const done = db.tx((tx) => {
    const gated: Executor = {
      provider: tx.provider,
      query: async (q) => {
        if (/^\s*WITH u AS \(UPDATE tasks/.test(q.compile('postgresql').text)) {
          reachedWrite()
          await released
        }
        return tx.query(q)
      },
      execute: (q) => tx.execute(q),
      afterCommit: (fn) => tx.afterCommit(fn),
      publish: (channel, key) => tx.publish(channel, key),
    }
    return step(gated)
  })
  return { atWrite, done, release }
}

const heldStart = (db: Db, job: ClaimedJob) => heldStep(db, (tx) => startNode(env, tx, job, Date.now()))

async function nodeState(taskId: number, nodeId: string) {
  return (await nodes(h.db, taskId)).get(nodeId)?.state ?? null
}

describe.skipIf(PROVIDER !== 'postgresql')('PostgreSQL: node steps of one task', () => {
  it('two branches of a fork are in their start transactions at once: one commits while the other is open', async () => {
    const { taskId, a, b, jobs } = await forkWithTwoDueBranches()
    const jobA = jobs.find((j) => j.nodeId === a)!
    const jobB = jobs.find((j) => j.nodeId === b)!
    const held = heldStart(h.db, jobA)
    await held.atWrite
    // A's transaction is open, its locks taken and its rows read; B's start runs and commits.
    const outB: StartOutcome = await h.db.tx((tx) => startNode(env, tx, jobB, Date.now()))
    expect(outB.kind).toBe('run')
    expect(await nodeState(taskId, b)).toBe('RUNNING')
    expect(await nodeState(taskId, a)).not.toBe('RUNNING')
    held.release()
    const outA = await held.done
    expect(outA.kind).toBe('run')
    expect(await nodeState(taskId, a)).toBe('RUNNING')
    const ev = await events(h.db, taskId)
    expect(gapFree(ev.map((e) => e.seq))).toBe(true)
  })

  it('a start held open across a pause writes nothing: the pause committed first, the node does not start', async () => {
    const { taskId, a, jobs } = await forkWithTwoDueBranches()
    const jobA = jobs.find((j) => j.nodeId === a)!
    const held = heldStart(h.db, jobA)
    await held.atWrite
    // The pause does not wait for the open start (it holds no lock the pause needs) and commits.
    await operate(engine, taskId, 'pause')
    held.release()
    const outA = await held.done
    expect(outA.kind).toBe('held')
    expect(await nodeState(taskId, a)).not.toBe('RUNNING')
    const [job] = await h.db.query<{ lease_owner: string | null }>(
      sql`SELECT lease_owner FROM jobs WHERE id = ${jobA.id}`,
    )
    expect(job?.lease_owner).toBeNull()
    const ev = await events(h.db, taskId)
    expect(ev.at(-1)).toMatchObject({ type: 'task_state', state: 'SUSPENDED' })
    expect(ev.some((e) => e.node_id === a && e.state === 'RUNNING')).toBe(false)
    expect(gapFree(ev.map((e) => e.seq))).toBe(true)
    // Resumed, the node starts.
    await operate(engine, taskId, 'resume')
    const [again] = await claimJobs(h.db, WORKER, Date.now(), 60_000, 10).then((js) =>
      js.filter((j) => j.nodeId === a),
    )
    expect(again).toBeDefined()
    const out = await h.db.tx((tx) => startNode(env, tx, again!, Date.now()))
    expect(out.kind).toBe('run')
    expect(await nodeState(taskId, a)).toBe('RUNNING')
  })
  it("two completions meet at the converge: the second waits there for the first one's step, then counts its arrival and is timed after it", async () => {
    const { taskId, a, b, join, jobs } = await forkWithTwoDueBranches()
    for (const j of jobs) expect((await h.db.tx((tx) => startNode(env, tx, j, Date.now()))).kind).toBe('run')
    const jobA = jobs.find((j) => j.nodeId === a)!
    const jobB = jobs.find((j) => j.nodeId === b)!
    let clock = Date.now() + 10_000
    const timed: TransitionEnv = { ...env, now: () => clock }
    const done = { status: 'finished', outputs: {} } as const
    // b's completion takes the converge's lock (its walk reaches it) and stops before its write.
    const first = heldStep(h.db, (tx) => recordResult(timed, tx, jobB, done, done, clock, null))
    await first.atWrite
    const bFinished = clock
    clock += 1000
    // a's completion, timed by its worker before b's, waits for the converge's lock.
    const second = h.db.tx((tx) => recordResult(timed, tx, jobA, done, done, bFinished - 5000, null))
    await waitFor('a step waiting for an advisory lock', async () => {
      const waiting = await h.db.query(
        sql`SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
              AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
      )
      return waiting.length > 0
    })
    expect(await nodeState(taskId, join)).toBeNull()
    first.release()
    expect((await first.done).applied).not.toBeNull()
    expect((await second).applied?.finished).toBe(true)
    const n = await nodes(h.db, taskId)
    expect(n.get(b)?.finished_at).toBe(bFinished)
    expect(n.get(join)?.state).toBe('FINISHED')
    expect(n.get(join)!.started_at!).toBeGreaterThanOrEqual(bFinished)
    expect((await task(h.db, taskId)).state).toBe('FINISHED')
    const ev = await events(h.db, taskId)
    expect(ev.filter((e) => e.node_id === join && e.state === 'FINISHED')).toHaveLength(1)
    expect(gapFree(ev.map((e) => e.seq))).toBe(true)
  })
})
