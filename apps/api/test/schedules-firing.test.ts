import { sql } from '@stdops/db'
import { createTRPCClient, httpLink } from '@trpc/client'
import { afterEach, describe, expect, it } from 'vitest'
import type { AppRouter } from '../src/trpc/root'
import { type LegacyClient, legacyClient, ok, quickTree, sleepTree } from './fixtures'
import { authHeader, type Harness, makeIdentity, startHarness, waitFor } from './harness'

/**
 * Firing, in one process whose clock the test holds (the runtime's injected clock): daylight
 * saving in a zone that has it, disabling, and firings that cannot create their task. The
 * multi-process guarantees (several workers, a crash mid-firing, downtime) are in
 * schedules-processes.test.ts.
 */

let h: Harness | null = null
afterEach(async () => {
  await h?.close()
  h = null
})

/** A server whose clock reads `clock.at`, and an admin of a new project with a template. */
async function world(opts: { timeZone?: string; tree?: unknown } = {}) {
  const clock = { at: Date.parse('2026-01-01T00:00:00Z') }
  // UTC unless a test needs another zone: names and legacy times then do not depend on the machine's
  h = await startHarness({ hooks: { now: () => clock.at, timeZone: opts.timeZone ?? 'UTC' } })
  const c = legacyClient(h, await makeIdentity(h.deps, { role: 'admin' }))
  const templateId = ok<{ template_id: number }>(
    await c.post('create_template', { name: 't', pipeline_tree: opts.tree ?? quickTree().tree }),
  ).template_id
  return { h, c, clock, templateId }
}

interface Firing {
  due_at: number
  task_id: number | null
  error: string | null
  name: string | null
}

async function firings(hh: Harness, periodicId: number): Promise<Firing[]> {
  const rows = await hh.deps.db.query<Firing>(
    sql`SELECT f.due_at, f.task_id, f.error, t.name FROM periodic_firings f LEFT JOIN tasks t ON t.id = f.task_id
        WHERE f.periodic_task_id = ${periodicId} ORDER BY f.id`,
  )
  return rows.map((r) => ({
    due_at: Number(r.due_at),
    task_id: r.task_id === null ? null : Number(r.task_id),
    error: r.error,
    name: r.name,
  }))
}

/** Moves the clock to `at` and waits for the `n`th firing of the periodic task. */
async function stepTo(w: Awaited<ReturnType<typeof world>>, periodicId: number, at: number, n: number) {
  w.clock.at = at
  return waitFor(async () => {
    const f = await firings(w.h, periodicId)
    return f.length >= n ? f : undefined
  }, 15_000)
}

async function createEnabled(c: LegacyClient, templateId: number, name: string, cron: unknown) {
  const p = ok<{ id: number }>(await c.post('create_periodic_task', { template_id: templateId, name, cron }))
  ok(await c.post('set_periodic_task_enabled', { task_id: p.id, enabled: true }))
  return p.id
}

const utc = (s: string) => Date.parse(s)

describe('daylight saving (Europe/Berlin), as croner documents it (Vixie cron’s rules)', () => {
  it('spring forward: a time inside the skipped hour fires at the first minute after it (03:00), once; the next day at 02:30 again', async () => {
    const w = await world({ timeZone: 'Europe/Berlin' })
    w.clock.at = utc('2026-03-28T12:00:00Z')
    const id = await createEnabled(w.c, w.templateId, 'nightly', { minute: '30', hour: '2' })
    // 2026-03-29 02:00 CET → 03:00 CEST: 02:30 does not exist that night
    await stepTo(w, id, utc('2026-03-29T01:00:01Z'), 1)
    w.clock.at = utc('2026-03-29T23:00:00Z')
    await new Promise((r) => setTimeout(r, 600))
    const f = await stepTo(w, id, utc('2026-03-30T00:30:01Z'), 2)
    expect(f.map((x) => [new Date(x.due_at).toISOString(), x.name])).toEqual([
      ['2026-03-29T01:00:00.000Z', 'nightly_20260329030000'],
      ['2026-03-30T00:30:00.000Z', 'nightly_20260330023000'],
    ])
  })

  it('spring forward: an interval cron skips the times that do not exist (02:00, 02:30) and goes on at 03:00', async () => {
    const w = await world({ timeZone: 'Europe/Berlin' })
    w.clock.at = utc('2026-03-29T00:10:00Z')
    const id = await createEnabled(w.c, w.templateId, 'half', '*/30 * * * *')
    for (const [at, n] of [
      ['2026-03-29T00:30:01Z', 1], // 01:30 CET
      ['2026-03-29T01:00:01Z', 2], // 03:00 CEST: one hour later in real time, 02:00 and 02:30 never were
      ['2026-03-29T01:30:01Z', 3], // 03:30 CEST
    ] as const) {
      await stepTo(w, id, utc(at), n)
    }
    const f = await firings(w.h, id)
    expect(f.map((x) => [new Date(x.due_at).toISOString(), x.name])).toEqual([
      ['2026-03-29T00:30:00.000Z', 'half_20260329013000'],
      ['2026-03-29T01:00:00.000Z', 'half_20260329030000'],
      ['2026-03-29T01:30:00.000Z', 'half_20260329033000'],
    ])
  })

  it('fall back: a fixed time inside the repeated hour fires once (its first, summer-time occurrence); a wildcard hour fires on both passes', async () => {
    const w = await world({ timeZone: 'Europe/Berlin' })
    w.clock.at = utc('2026-10-24T12:00:00Z')
    const fixed = await createEnabled(w.c, w.templateId, 'fixed', { minute: '30', hour: '2' })
    w.clock.at = utc('2026-10-25T00:10:00Z')
    const every30 = await createEnabled(w.c, w.templateId, 'half', '*/30 * * * *')
    // 2026-10-25 03:00 CEST → 02:00 CET: 02:00–02:59 happens twice
    for (const [at, n] of [
      ['2026-10-25T00:30:01Z', 1], // 02:30 CEST
      ['2026-10-25T01:00:01Z', 2], // 02:00 CET
      ['2026-10-25T01:30:01Z', 3], // 02:30 CET
      ['2026-10-25T02:00:01Z', 4], // 03:00 CET
    ] as const) {
      await stepTo(w, every30, utc(at), n)
    }
    const half = await firings(w.h, every30)
    expect(half.map((x) => [new Date(x.due_at).toISOString(), x.name])).toEqual([
      ['2026-10-25T00:30:00.000Z', 'half_20261025023000'],
      ['2026-10-25T01:00:00.000Z', 'half_20261025020000'],
      ['2026-10-25T01:30:00.000Z', 'half_20261025023000'],
      ['2026-10-25T02:00:00.000Z', 'half_20261025030000'],
    ])
    const f = await stepTo(w, fixed, utc('2026-10-26T01:30:01Z'), 2)
    expect(f.map((x) => [new Date(x.due_at).toISOString(), x.name])).toEqual([
      ['2026-10-25T00:30:00.000Z', 'fixed_20261025023000'],
      ['2026-10-26T01:30:00.000Z', 'fixed_20261026023000'],
    ])
  })
})

describe('firing', () => {
  it('a firing creates and starts a task as the schedule’s creator: create_method periodic, records, last_run_at and total_run_count', async () => {
    const w = await world()
    const id = await createEnabled(w.c, w.templateId, 'report', '*/5 * * * *')
    const [f] = await stepTo(w, id, utc('2026-01-01T00:05:00.200Z'), 1)
    const task = await w.h.deps.db.prisma.task.findUniqueOrThrow({ where: { id: f!.task_id! } })
    expect(task).toMatchObject({
      name: 'report_20260101000500',
      creator: w.c.id.username,
      executor: w.c.id.username,
      createMethod: 'periodic',
      projectId: w.c.id.projectId,
      templateId: w.templateId,
    })
    expect(task.startedAt).not.toBeNull()
    const records = ok<Array<{ operate_type: string; operate_source: string; operator: string }>>(
      await w.c.get('get_task_operate_record', { task_id: task.id }),
    )
    expect(records.map((r) => [r.operate_type, r.operate_source, r.operator])).toEqual([
      ['create', 'periodic', w.c.id.username],
      ['start', 'periodic', w.c.id.username],
    ])
    await waitFor(async () =>
      (await w.h.deps.db.prisma.task.findUniqueOrThrow({ where: { id: task.id } })).state === 'FINISHED'
        ? true
        : undefined,
    )
    const info = ok(await w.c.get('get_periodic_task_info', { task_id: id }))
    expect(info).toMatchObject({ total_run_count: 1, next_run_at: expect.stringMatching(/00:10:00/) })
    expect(info.last_run_at).toMatch(/^2026-01-01 00:05:00/)
  })

  it('disabling stops future firings; the task already created runs on to the end', async () => {
    const w = await world({ tree: sleepTree('30').tree })
    const id = await createEnabled(w.c, w.templateId, 'slow', '* * * * *')
    const [f] = await stepTo(w, id, utc('2026-01-01T00:01:00.100Z'), 1)
    await waitFor(async () =>
      (await w.h.deps.db.query(sql`SELECT id FROM jobs WHERE task_id = ${f!.task_id} AND kind = 'timer'`))
        .length === 1
        ? true
        : undefined,
    )
    ok(await w.c.post('set_periodic_task_enabled', { task_id: id, enabled: false }))
    // ten minutes later: no new firing, and the running task's 30 s timer has long come due
    w.clock.at = utc('2026-01-01T00:11:00Z')
    await waitFor(async () =>
      (await w.h.deps.db.prisma.task.findUniqueOrThrow({ where: { id: f!.task_id! } })).state === 'FINISHED'
        ? true
        : undefined,
    )
    await new Promise((r) => setTimeout(r, 800))
    expect(await firings(w.h, id)).toHaveLength(1)
    expect(await w.h.deps.db.prisma.task.count({ where: { projectId: w.c.id.projectId } })).toBe(1)
  })

  it('a firing that cannot create its task (the template gone) is recorded with the reason, and the schedule moves on', async () => {
    const w = await world()
    const id = await createEnabled(w.c, w.templateId, 'orphan', '* * * * *')
    const clocked = ok<{ id: number }>(
      await w.c.post('create_clocked_task', {
        template_id: w.templateId,
        task_name: 'orphan once',
        plan_start_time: '2026-01-01 00:01:00+0000',
      }),
    )
    await w.h.deps.db.execute(sql`DELETE FROM templates WHERE id = ${w.templateId}`)
    const [f] = await stepTo(w, id, utc('2026-01-01T00:01:00.100Z'), 1)
    const why = `template[id=${w.templateId}] no longer exists in the project`
    expect(f).toMatchObject({ task_id: null, error: why })
    // and a user sees why: periodic.firings (tRPC; `stdops periodic show`)
    const api = createTRPCClient<AppRouter>({
      links: [httpLink({ url: `${w.h.url}/trpc`, headers: () => authHeader(w.c.id) })],
    })
    expect(await api.periodic.firings.query({ bk_biz_id: w.c.id.bkBizId, task_id: id })).toEqual([
      {
        due_time: '2026-01-01 00:01:00 +0000',
        fired_time: '2026-01-01 00:01:00 +0000',
        task_id: null,
        task_name: null,
        task_state: null,
        error: why,
      },
    ])
    const row = await w.h.deps.db.prisma.periodicTask.findUniqueOrThrow({ where: { id } })
    expect(row.totalRunCount).toBe(0)
    expect(Number(row.nextRunAt)).toBe(utc('2026-01-01T00:02:00Z'))
    const c = await waitFor(async () => {
      const r = await w.h.deps.db.prisma.clockedTask.findUniqueOrThrow({ where: { id: clocked.id } })
      return r.state === 'not_started' ? undefined : r
    })
    expect(c).toMatchObject({
      state: 'failed',
      taskId: null,
      error: expect.stringContaining('no longer exists'),
    })
    expect(await w.h.deps.db.prisma.task.count({ where: { projectId: w.c.id.projectId } })).toBe(0)
  })

  it('a clocked task fires once at its time: state started, the task id recorded, create_method clocked', async () => {
    const w = await world()
    const c = ok<{ id: number; state: string }>(
      await w.c.post('create_clocked_task', {
        template_id: w.templateId,
        task_name: 'at noon',
        plan_start_time: '2026-01-01 12:00:00+0000',
      }),
    )
    w.clock.at = utc('2026-01-01T11:59:59Z')
    await new Promise((r) => setTimeout(r, 600))
    expect((await w.h.deps.db.prisma.clockedTask.findUniqueOrThrow({ where: { id: c.id } })).state).toBe(
      'not_started',
    )
    w.clock.at = utc('2026-01-01T12:00:00Z')
    const row = await waitFor(async () => {
      const r = await w.h.deps.db.prisma.clockedTask.findUniqueOrThrow({ where: { id: c.id } })
      return r.state === 'started' ? r : undefined
    })
    const task = await w.h.deps.db.prisma.task.findUniqueOrThrow({ where: { id: row.taskId! } })
    expect(task).toMatchObject({ name: 'at noon', createMethod: 'clocked', creator: w.c.id.username })
    expect(Number(row.firedAt)).toBeGreaterThanOrEqual(utc('2026-01-01T12:00:00Z'))
    const listed = ok<Array<{ id: number; state: string; task_id: number }>>(
      await w.c.get('get_clocked_task_list', { id: c.id }),
    )
    expect(listed[0]).toMatchObject({ state: 'started', task_id: task.id })
    w.clock.at = utc('2026-01-02T12:00:00Z')
    await new Promise((r) => setTimeout(r, 600))
    expect(await w.h.deps.db.prisma.task.count({ where: { projectId: w.c.id.projectId } })).toBe(1)
  })
})
