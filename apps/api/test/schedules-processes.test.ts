import { renameSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type MigratableDb, sql } from '@stdops/db'
import { createTestDatabaseUrl } from '@stdops/db/testing'
import { wallClockStamp } from '@stdops/engine'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { quickTree } from './fixtures'
import { authHeader, esb, type Identity, waitFor } from './harness'
import {
  type Child,
  count,
  isPostgres,
  killAll,
  openAndBootstrap,
  serverEnv,
  sleep,
  startProcess,
  stopProcess,
} from './procs'

/**
 * Schedules across real server processes whose clock the test moves: each process is started
 * with the test-only preload (test/support/test-hooks.mjs) and reads a simulated-time offset from
 * a file. Several worker processes need PostgreSQL; on SQLite the same tests run with one `serve`.
 * The processes run in Asia/Shanghai (TZ), so that task names show the server's zone.
 */

const pg = isPostgres()
const TZ = 'Asia/Shanghai'

interface World {
  dbUrl: string
  db: MigratableDb
  id: Identity
  clockFile: string
  env: Record<string, string>
  drop(): Promise<void>
}

let world: World | null = null

async function openWorld(): Promise<World> {
  const { url, drop } = await createTestDatabaseUrl()
  const { db, id } = await openAndBootstrap(url)
  const clockFile = join(tmpdir(), `stdops-clock-${process.pid}-${Date.now()}`)
  writeFileSync(clockFile, '0')
  const env = serverEnv(url, { STDOPS_TEST_CLOCK_FILE: clockFile, TZ })
  world = { dbUrl: url, db, id, clockFile, env, drop }
  return world
}

afterEach(async () => {
  await killAll()
  if (world) {
    const w = world
    world = null
    await w.db.close()
    await w.drop()
  }
})
afterAll(async () => {
  await killAll()
})

/** Sets the processes' simulated time to `at` (epoch ms) from now on; it runs on with real time. */
function setClock(w: World, at: number) {
  const tmp = `${w.clockFile}.tmp`
  writeFileSync(tmp, String(at - Date.now()))
  renameSync(tmp, w.clockFile)
}

const start = (command: 'serve' | 'api' | 'worker', env: Record<string, string>, name?: string) =>
  startProcess(command, env, { testHooks: true, ...(name ? { name } : {}) })

/** PostgreSQL: an API process and `workers` worker processes; SQLite (one process only): `serve`. */
async function startTopology(env: Record<string, string>, workers = 1) {
  if (pg) {
    const [api, ...ws] = await Promise.all([
      start('api', env),
      ...Array.from({ length: workers }, (_, i) => start('worker', env, `worker${i + 1}`)),
    ])
    return { api: api!, workers: ws }
  }
  const serve = await start('serve', env)
  return { api: serve, workers: [serve] }
}

function client(api: Child, id: Identity) {
  const headers = authHeader(id)
  return {
    post: (name: string, body: Record<string, unknown>) =>
      esb(api.url!, name, { method: 'POST', body: { bk_biz_id: id.bkBizId, ...body }, headers }),
  }
}

/** A template that finishes at once, and an enabled periodic task of it; returns its id and first due time. */
async function enabledPeriodic(w: World, api: Child, name: string, cron: string) {
  const c = client(api, w.id)
  const t = await c.post('create_template', { name: 'quick', pipeline_tree: quickTree().tree })
  expect(t.body.code, JSON.stringify(t.body)).toBe(0)
  const p = await c.post('create_periodic_task', {
    template_id: (t.body.data as { template_id: number }).template_id,
    name,
    cron,
  })
  expect(p.body.code, JSON.stringify(p.body)).toBe(0)
  const id = (p.body.data as { id: number }).id
  const e = await c.post('set_periodic_task_enabled', { task_id: id, enabled: true })
  expect(e.body.code, JSON.stringify(e.body)).toBe(0)
  const [row] = await w.db.query<{ next_run_at: number }>(
    sql`SELECT next_run_at FROM periodic_tasks WHERE id = ${id}`,
  )
  return { id, firstDue: Number(row!.next_run_at) }
}

interface FiringRow {
  due_at: number
  task_id: number | null
  worker: string
  name: string | null
  state: string | null
}

async function firings(db: MigratableDb, periodicId: number): Promise<FiringRow[]> {
  const rows = await db.query<FiringRow>(
    sql`SELECT f.due_at, f.task_id, f.worker, t.name, t.state FROM periodic_firings f
        LEFT JOIN tasks t ON t.id = f.task_id WHERE f.periodic_task_id = ${periodicId} ORDER BY f.due_at`,
  )
  return rows.map((r) => ({
    ...r,
    due_at: Number(r.due_at),
    task_id: r.task_id === null ? null : Number(r.task_id),
  }))
}

const tasksOf = (w: World) =>
  w.db.query<{ id: number; name: string; state: string; create_method: string }>(
    sql`SELECT t.id, t.name, t.state, t.create_method FROM tasks t JOIN projects p ON p.id = t.project_id
        WHERE p.bk_biz_id = ${w.id.bkBizId} ORDER BY t.id`,
  )

/** Moves simulated time just past `due` and waits until `n` firings of the periodic task exist. */
async function fireAt(w: World, periodicId: number, due: number, n: number) {
  setClock(w, due + 300)
  return waitFor(
    async () => {
      const f = await firings(w.db, periodicId)
      return f.length >= n ? f : undefined
    },
    20_000,
    50,
  )
}

const MINUTE = 60_000

describe('periodic tasks across processes', () => {
  it(`every minute for 10 simulated minutes gives 10 tasks, ${pg ? '3 worker processes racing for each firing' : 'one serve process (SQLite)'}`, async () => {
    const w = await openWorld()
    const { api, workers } = await startTopology(w.env, pg ? 3 : 1)
    const { id, firstDue } = await enabledPeriodic(w, api, 'minutely', '* * * * *')
    for (let k = 0; k < 10; k++) await fireAt(w, id, firstDue + k * MINUTE, k + 1)
    // a little longer: nobody fires a minute twice, whatever the race
    await sleep(700)
    const f = await firings(w.db, id)
    expect(f.map((x) => x.due_at)).toEqual(Array.from({ length: 10 }, (_, k) => firstDue + k * MINUTE))
    expect(f.map((x) => x.name)).toEqual(f.map((x) => `minutely_${wallClockStamp(x.due_at, TZ)}`))
    expect(f.every((x) => x.task_id !== null)).toBe(true)
    const workerIds = new Set(workers.map((c) => c.workerId!))
    expect(
      f.every((x) => workerIds.has(x.worker)),
      JSON.stringify(f.map((x) => x.worker)),
    ).toBe(true)
    const tasks = await tasksOf(w)
    expect(tasks).toHaveLength(10)
    expect(tasks.every((t) => t.create_method === 'periodic')).toBe(true)
    await waitFor(
      async () => ((await tasksOf(w)).every((t) => t.state === 'FINISHED') ? true : undefined),
      20_000,
    )
    expect(await count(w.db, sql`SELECT total_run_count AS n FROM periodic_tasks WHERE id = ${id}`)).toBe(10)
    if (pg) {
      const byWorker = new Map<string, number>()
      for (const x of f) byWorker.set(x.worker, (byWorker.get(x.worker) ?? 0) + 1)
      console.info(`firings per worker: ${JSON.stringify([...byWorker.values()])}`)
    }
    for (const c of new Set([api, ...workers])) expect((await stopProcess(c)).code, c.name).toBe(0)
  }, 120_000)

  it('a process killed between creating a firing’s task and recording the firing leaves exactly one task', async () => {
    const w = await openWorld()
    const faulty = { ...w.env, STDOPS_TEST_FAULT: 'schedule:task-created' }
    // the process that fires is the one that dies: on SQLite that is the only one
    const api = pg ? await start('api', w.env) : await start('serve', faulty)
    const worker = pg ? await start('worker', faulty) : api
    const { id, firstDue } = await enabledPeriodic(w, api, 'crashy', '*/5 * * * *')
    setClock(w, firstDue + 300)
    const died = await worker.exited
    expect(died.signal).toBe('SIGKILL')
    expect(worker.lines.some((l) => l.includes('test fault schedule:task-created'))).toBe(true)
    // the task was created, then the process died before the firing committed: none of it stays
    expect(await tasksOf(w)).toEqual([])
    expect(await firings(w.db, id)).toEqual([])
    expect(await count(w.db, sql`SELECT next_run_at AS n FROM periodic_tasks WHERE id = ${id}`)).toBe(
      firstDue,
    )

    const again = await start(pg ? 'worker' : 'serve', w.env)
    const f = await waitFor(async () => {
      const rows = await firings(w.db, id)
      return rows.length > 0 ? rows : undefined
    }, 20_000)
    await sleep(700)
    const pairs = (rows: FiringRow[]) => rows.map((x) => [x.due_at, x.task_id])
    expect(pairs(await firings(w.db, id))).toEqual(pairs(f))
    expect(f).toHaveLength(1)
    expect(f[0]).toMatchObject({
      due_at: firstDue,
      worker: again.workerId,
      name: `crashy_${wallClockStamp(firstDue, TZ)}`,
    })
    const tasks = await tasksOf(w)
    expect(tasks.map((t) => t.id)).toEqual([f[0]!.task_id])
    for (const c of new Set([api, again])) if (c.alive) expect((await stopProcess(c)).code, c.name).toBe(0)
  }, 90_000)

  it('2 hours of downtime, then a restart: one catch-up task for the latest missed minute, not 120; then the cadence goes on', async () => {
    const w = await openWorld()
    const first = await startTopology(w.env)
    const { id, firstDue } = await enabledPeriodic(w, first.api, 'steady', '* * * * *')
    await fireAt(w, id, firstDue, 1)
    for (const c of new Set([first.api, ...first.workers])) expect((await stopProcess(c)).code).toBe(0)

    // down from firstDue + 0.3 s to firstDue + 120 min 20 s: due times firstDue + 1 … + 120 min pass unseen
    setClock(w, firstDue + 120 * MINUTE + 20_000)
    const second = await startTopology(w.env)
    const caught = await waitFor(async () => {
      const rows = await firings(w.db, id)
      return rows.length >= 2 ? rows : undefined
    }, 20_000)
    await sleep(700)
    expect(await firings(w.db, id)).toHaveLength(2)
    expect(caught[1]!.due_at).toBe(firstDue + 120 * MINUTE)
    expect(caught[1]!.name).toBe(`steady_${wallClockStamp(firstDue + 120 * MINUTE, TZ)}`)
    // then every minute again
    const f = await fireAt(w, id, firstDue + 121 * MINUTE, 3)
    expect(f.map((x) => x.due_at - firstDue)).toEqual([0, 120 * MINUTE, 121 * MINUTE])
    expect(await tasksOf(w)).toHaveLength(3)
    for (const c of new Set([second.api, ...second.workers])) expect((await stopProcess(c)).code).toBe(0)
  }, 90_000)
})

describe('clocked tasks across processes', () => {
  it('fires once at its time, across a restart in between', async () => {
    const w = await openWorld()
    const base = Date.parse('2027-03-01T00:00:00Z')
    setClock(w, base)
    const first = await startTopology(w.env)
    const c = client(first.api, w.id)
    const t = await c.post('create_template', { name: 'quick', pipeline_tree: quickTree().tree })
    const planned = base + 5 * MINUTE
    const r = await c.post('create_clocked_task', {
      template_id: (t.body.data as { template_id: number }).template_id,
      task_name: 'once',
      plan_start_time: new Date(planned).toISOString(),
    })
    expect(r.body.code, JSON.stringify(r.body)).toBe(0)
    const clockedId = (r.body.data as { id: number }).id
    // the whole server goes down before the planned time and comes back after it
    for (const p of new Set([first.api, ...first.workers])) expect((await stopProcess(p)).code).toBe(0)
    setClock(w, planned + 30 * MINUTE)
    const second = await startTopology(w.env)
    const row = await waitFor(async () => {
      const [x] = await w.db.query<{ state: string; task_id: number | null; fired_at: number }>(
        sql`SELECT state, task_id, fired_at FROM clocked_tasks WHERE id = ${clockedId}`,
      )
      return x?.state === 'started' ? x : undefined
    }, 20_000)
    const tasks = await tasksOf(w)
    expect(tasks.map((x) => [x.id, x.name, x.create_method])).toEqual([
      [Number(row.task_id), 'once', 'clocked'],
    ])
    expect(Number(row.fired_at)).toBeGreaterThanOrEqual(planned)
    // and never again, through another restart
    for (const p of new Set([second.api, ...second.workers])) expect((await stopProcess(p)).code).toBe(0)
    setClock(w, planned + 24 * 60 * MINUTE)
    const third = await startTopology(w.env)
    await sleep(1500)
    expect(await tasksOf(w)).toHaveLength(1)
    for (const p of new Set([third.api, ...third.workers])) expect((await stopProcess(p)).code).toBe(0)
  }, 90_000)
})
