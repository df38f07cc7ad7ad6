import { createTreeBuilder, exclusiveTree, linearTree, parallelTree } from '@stdops/core/testing'
import { sql } from '@stdops/db'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Engine } from '../src/index'
import {
  createHarness,
  events,
  gapFree,
  type Harness,
  insertTask,
  jobs,
  nodes,
  operate,
  states,
  task,
  waitFor,
  waitForState,
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

async function run(tree: unknown) {
  const id = await insertTask(h.db, tree)
  await operate(engine, id, 'start')
  return id
}

describe('execution of pipeline trees', () => {
  it('runs a linear tree to FINISHED, every node FINISHED once, events gap-free', async () => {
    const tree = linearTree(3, 'noop')
    const id = await run(tree)
    await waitForState(h.db, id, 'FINISHED')
    const s = await states(h.db, id)
    expect(Object.values(s)).toHaveLength(5)
    expect(Object.values(s).every((x) => x === 'FINISHED')).toBe(true)
    const t = await task(h.db, id)
    expect(t.version).toBe(2) // start (API) + finish (engine)
    const ev = await events(h.db, id)
    expect(gapFree(ev.map((e) => e.seq))).toBe(true)
    expect(ev.at(-1)).toMatchObject({ type: 'task_state', state: 'FINISHED' })
    expect(await jobs(h.db, id)).toEqual([])
    expect(await engine.runningNodes(h.db, id)).toBe(0)
  })

  it('parallel gateway runs every branch and the converge waits for all of them', async () => {
    const b = createTreeBuilder()
    const fork = b.gateway('ParallelGateway')
    const join = b.gateway('ConvergeGateway')
    const fast = b.activity('noop')
    const slow = b.activity('sleep_ms', { data: { ms: { hook: false, value: 200 } } })
    const after = b.activity('noop')
    b.chain(b.startId, fork)
    b.chain(fork, fast, join)
    b.chain(fork, slow, join)
    b.chain(join, after, b.endId)
    const id = await run(b.build())
    await waitForState(h.db, id, 'FINISHED')
    const n = await nodes(h.db, id)
    expect(n.get(join)?.state).toBe('FINISHED')
    expect(n.get(join)?.loop).toBe(1)
    // The converge started only after the slow branch finished.
    expect(n.get(join)!.started_at!).toBeGreaterThanOrEqual(n.get(slow)!.finished_at!)
    expect(n.get(after)!.started_at!).toBeGreaterThanOrEqual(n.get(slow)!.finished_at!)
  })

  it('exclusive gateway takes the one branch whose condition holds; the others never run', async () => {
    const tree = exclusiveTree('noop') as {
      activities: Record<string, { name: string }>
      constants: Record<string, { value: unknown }>
    }
    tree.constants['${branch}']!.value = 'b'
    const id = await run(tree)
    await waitForState(h.db, id, 'FINISHED')
    const s = await states(h.db, id)
    const byName = Object.fromEntries(Object.entries(tree.activities).map(([nid, a]) => [a.name, s[nid]]))
    expect(byName).toEqual({ A: undefined, B: 'FINISHED', C: undefined })
  })

  it('exclusive gateway falls back to its default flow when no condition holds', async () => {
    const tree = exclusiveTree('noop') as {
      activities: Record<string, { name: string }>
      constants: Record<string, { value: unknown }>
    }
    tree.constants['${branch}']!.value = 'zzz'
    const id = await run(tree)
    await waitForState(h.db, id, 'FINISHED')
    const s = await states(h.db, id)
    const byName = Object.fromEntries(Object.entries(tree.activities).map(([nid, a]) => [a.name, s[nid]]))
    expect(byName).toEqual({ A: undefined, B: undefined, C: 'FINISHED' })
  })

  it('conditional parallel gateway runs the 2 of 3 branches whose conditions hold, and the converge waits for those 2', async () => {
    const b = createTreeBuilder()
    b.constant('n', 5)
    const fork = b.gateway('ConditionalParallelGateway')
    const join = b.gateway('ConvergeGateway')
    const a = b.activity('sleep_ms', { data: { ms: { hook: false, value: 100 } } })
    const bb = b.activity('noop')
    const c = b.activity('noop')
    b.flow(b.startId, fork)
    b.flow(fork, a, { condition: '${n} > 1' })
    b.flow(fork, bb, { condition: '${n} in (4, 5, 6)' })
    b.flow(fork, c, { condition: '${n} < 0' })
    b.chain(a, join)
    b.chain(bb, join)
    b.chain(c, join)
    b.flow(join, b.endId)
    const id = await run(b.build())
    await waitForState(h.db, id, 'FINISHED')
    const n = await nodes(h.db, id)
    expect(n.get(a)?.state).toBe('FINISHED')
    expect(n.get(bb)?.state).toBe('FINISHED')
    expect(n.has(c)).toBe(false)
    expect(n.get(join)?.state).toBe('FINISHED')
    expect(n.get(join)!.started_at!).toBeGreaterThanOrEqual(n.get(a)!.finished_at!)
  })

  it('nested forks: an inner parallel block inside one branch of an outer one', async () => {
    const b = createTreeBuilder()
    const outer = b.gateway('ParallelGateway')
    const outerJoin = b.gateway('ConvergeGateway')
    const inner = b.gateway('ParallelGateway')
    const innerJoin = b.gateway('ConvergeGateway')
    const x = b.activity('sleep_ms', { data: { ms: { hook: false, value: 50 } } })
    const y = b.activity('noop')
    const z = b.activity('sleep_ms', { data: { ms: { hook: false, value: 150 } } })
    const w = b.activity('noop')
    b.chain(b.startId, outer)
    b.chain(outer, inner)
    b.chain(inner, x, innerJoin)
    b.chain(inner, y, innerJoin)
    b.chain(innerJoin, w, outerJoin)
    b.chain(outer, z, outerJoin)
    b.chain(outerJoin, b.endId)
    const id = await run(b.build())
    await waitForState(h.db, id, 'FINISHED')
    const n = await nodes(h.db, id)
    for (const nid of [outer, inner, x, y, z, w, innerJoin, outerJoin])
      expect(n.get(nid)?.state, nid).toBe('FINISHED')
    expect(n.get(innerJoin)!.started_at!).toBeGreaterThanOrEqual(n.get(x)!.finished_at!)
    expect(n.get(outerJoin)!.started_at!).toBeGreaterThanOrEqual(n.get(z)!.finished_at!)
    expect(n.get(outerJoin)!.started_at!).toBeGreaterThanOrEqual(n.get(w)!.finished_at!)
  })

  it('constants with references feed inputs; component_outputs constants feed a later condition and activity', async () => {
    const b = createTreeBuilder()
    b.constant('host', 'example.org')
    b.constant('port', 8080)
    b.constant('addr', '${host}:${port}')
    b.constant('level', '', { source_type: 'component_outputs', source_info: {} })
    const produce = b.activity('set_variables', {
      data: { variables: { hook: false, value: { level: 7, where: '${addr}' } } },
    })
    const choice = b.gateway('ExclusiveGateway')
    const join = b.gateway('ConvergeGateway')
    const high = b.activity('set_variables', {
      data: { variables: { hook: false, value: { seen: '${level}' } } },
    })
    const low = b.activity('noop')
    b.chain(b.startId, produce, choice)
    b.flow(choice, high, { condition: '${level} >= 5' })
    b.flow(choice, low, { isDefault: true })
    b.chain(high, join)
    b.chain(low, join)
    b.chain(join, b.endId)
    b.output('level')
    b.output('addr')
    const tree = b.build() as { constants: Record<string, { source_info: unknown }> }
    tree.constants['${level}']!.source_info = { [produce]: ['level'] }
    const id = await run(tree)
    await waitForState(h.db, id, 'FINISHED')
    const n = await nodes(h.db, id)
    expect(n.get(produce)?.inputs).toEqual({ variables: { level: 7, where: 'example.org:8080' } })
    expect(n.get(produce)?.outputs).toEqual({ level: 7, where: 'example.org:8080' })
    expect(n.get(high)?.state).toBe('FINISHED')
    expect(n.get(high)?.outputs).toEqual({ seen: 7 })
    expect(n.has(low)).toBe(false)
    const t = await task(h.db, id)
    expect(JSON.parse(t.outputs)).toEqual({ '${level}': 7, '${addr}': 'example.org:8080' })
    expect(JSON.parse(t.constants)['${level}'].value).toBe(7)
  })

  it('a loop of 3 passes through one activity, counted in loop and in one history row per pass', async () => {
    const b = createTreeBuilder()
    b.constant('n', 0, { source_type: 'component_outputs' })
    const inc = b.activity('increment', { data: { value: { hook: true, value: '${n}' } } })
    const choice = b.gateway('ExclusiveGateway')
    b.chain(b.startId, inc, choice)
    b.flow(choice, inc, { condition: '${n} < 3' })
    b.flow(choice, b.endId, { isDefault: true })
    const tree = b.build() as { constants: Record<string, { source_info: unknown }> }
    tree.constants['${n}']!.source_info = { [inc]: ['value'] }
    const id = await run(tree)
    await waitForState(h.db, id, 'FINISHED')
    const n = await nodes(h.db, id)
    expect(n.get(inc)).toMatchObject({ state: 'FINISHED', loop: 3, outputs: { value: 3 } })
    expect(n.get(choice)?.loop).toBe(3)
    const history = await h.db.query<{ loop: number; attempt: number; state: string }>(sqlHistory(id, inc))
    expect(history.map((r) => [Number(r.loop), Number(r.attempt), r.state])).toEqual([
      [1, 1, 'FINISHED'],
      [2, 1, 'FINISHED'],
      [3, 1, 'FINISHED'],
    ])
  })

  it('the 101st pass through one node fails it with a clear error; the task stays RUNNING', async () => {
    const b = createTreeBuilder()
    const a = b.activity('noop')
    const choice = b.gateway('ExclusiveGateway')
    b.chain(b.startId, a, choice)
    b.flow(choice, a, { condition: '1 == 1' })
    b.flow(choice, b.endId, { isDefault: true })
    const id = await run(b.build())
    const failed = await waitFor(
      'the loop limit',
      async () => {
        const n = (await nodes(h.db, id)).get(a)
        return n?.state === 'FAILED' ? n : null
      },
      30_000,
    )
    expect(failed.loop).toBe(101)
    expect(failed.error).toMatch(/loop limit.*100/)
    expect((await task(h.db, id)).state).toBe('RUNNING')
  })

  it('error_ignorable: a failing activity counts as passed (FINISHED, error_ignored) and the run goes on', async () => {
    const b = createTreeBuilder()
    const bad = b.activity('fail', {
      data: { message: { hook: false, value: 'boom' } },
      errorIgnorable: true,
    })
    const next = b.activity('noop')
    b.chain(b.startId, bad, next, b.endId)
    const id = await run(b.build())
    await waitForState(h.db, id, 'FINISHED')
    const n = await nodes(h.db, id)
    expect(n.get(bad)).toMatchObject({ state: 'FINISHED', error_ignored: true, error: 'boom' })
    expect(n.get(next)?.state).toBe('FINISHED')
  })

  it('a failing activity is FAILED with its error, the root stays RUNNING and nothing after it runs', async () => {
    const b = createTreeBuilder()
    const bad = b.activity('fail', { data: { message: { hook: false, value: 'disk full' } } })
    const next = b.activity('noop')
    b.chain(b.startId, bad, next, b.endId)
    const id = await run(b.build())
    await waitFor('the failure', async () => (await nodes(h.db, id)).get(bad)?.state === 'FAILED')
    await new Promise((r) => setTimeout(r, 150))
    const n = await nodes(h.db, id)
    expect(n.get(bad)?.error).toBe('disk full')
    expect(n.has(next)).toBe(false)
    expect((await task(h.db, id)).state).toBe('RUNNING')
    expect(await jobs(h.db, id)).toEqual([])
  })

  it('invalid inputs fail the node with a message naming the field', async () => {
    const b = createTreeBuilder()
    const timer = b.activity('sleep_timer', { data: { bk_timing: { hook: false, value: 'soon' } } })
    b.chain(b.startId, timer, b.endId)
    const id = await run(b.build())
    const n = await waitFor('the failure', async () => {
      const row = (await nodes(h.db, id)).get(timer)
      return row?.state === 'FAILED' ? row : null
    })
    expect(n.error).toMatch(/^input bk_timing: /)
    expect(n.inputs).toEqual({ bk_timing: 'soon' })
  })

  it('a parallel block of 20 branches finishes with a gap-free event log', async () => {
    const id = await run(parallelTree(20, 'noop'))
    await waitForState(h.db, id, 'FINISHED')
    const ev = await events(h.db, id)
    expect(gapFree(ev.map((e) => e.seq))).toBe(true)
    const finished = ev.filter((e) => e.type === 'node_state' && e.state === 'FINISHED')
    expect(finished).toHaveLength(24)
  })
})

function sqlHistory(taskId: number, nodeId: string) {
  return sql`SELECT loop, attempt, state FROM node_histories WHERE task_id = ${taskId} AND node_id = ${nodeId} ORDER BY loop, attempt`
}
