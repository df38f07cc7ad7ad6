import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Harness, type Identity, makeIdentity, startHarness, waitFor } from '../../api/test/harness'
import { cleanUp, ESC, envFor, json, shortTree, stdops, tempDir, writeJson } from './helpers'

/**
 * `stdops periodic …` and `stdops clocked …` against a real server whose clock the test moves
 * (the harness's injected clock), so that a schedule created from the CLI is seen firing.
 */
describe('stdops periodic and clocked', () => {
  let h: Harness
  let id: Identity
  let env: Record<string, string>
  let project: string[]
  let templateId: number
  let offset = 0

  beforeAll(async () => {
    h = await startHarness({ hooks: { now: () => Date.now() + offset } })
    id = await makeIdentity(h.deps, { role: 'admin' })
    env = envFor(h, id)
    project = ['--project', String(id.bkBizId)]
    const file = writeJson(tempDir('stdops-sched-'), 'tree.json', shortTree('0'))
    const created = await stdops(
      ['template', 'create', '-f', file, '--name', 'Short', '--json', ...project],
      { env },
    )
    templateId = json<{ template_id: number }>(created).template_id
  })
  afterAll(async () => {
    cleanUp()
    await h?.close()
  })

  it('create (disabled), enable, and watch one task a minute appear; set-cron, set-constants, disable', async () => {
    const created = await stdops(
      [
        'periodic',
        'create',
        '--template',
        String(templateId),
        '--name',
        'minutely',
        '--cron',
        '* * * * *',
        '--constant',
        'who=cron',
        ...project,
      ],
      { env },
    )
    expect(created.code, created.stderr).toBe(0)
    const periodicId = Number(/^id\s+(\d+)$/m.exec(created.stdout)?.[1])
    expect(created.stdout).toMatch(/^cron\s+\* \* \* \* \* \(m\/h\/d\/dM\/MY\)$/m)
    expect(created.stdout).toMatch(/^enabled\s+no$/m)
    expect(created.stderr).toContain(`stdops periodic enable ${periodicId}`)

    const list = await stdops(['periodic', 'list', ...project], { env })
    expect(list.code).toBe(0)
    expect(list.stdout.split('\n')[0]).toMatch(
      /^ID\s+NAME\s+CRON\s+ENABLED\s+NEXT RUN\s+LAST RUN\s+RUNS\s+TEMPLATE$/,
    )
    expect(list.stdout).not.toContain(ESC)

    const enabled = json<{ id: number; enabled: boolean; next_run_at: string }>(
      await stdops(['periodic', 'enable', String(periodicId), '--json', ...project], { env }),
    )
    expect(enabled).toMatchObject({ id: periodicId, enabled: true })
    expect(enabled.next_run_at).toMatch(/:00 [+-]\d{4}$/)

    // move the server's clock to each of the next three minutes: one task each
    const firstDue = (await h.deps.db.prisma.periodicTask.findUniqueOrThrow({ where: { id: periodicId } }))
      .nextRunAt!
    for (let i = 0; i < 3; i++) {
      offset = Number(firstDue) + i * 60_000 + 500 - Date.now()
      await waitFor(
        async () => {
          const page = json<{ count: number }>(
            await stdops(['task', 'list', '--keyword', 'minutely_', '--json', ...project], { env }),
          )
          return page.count === i + 1 ? true : undefined
        },
        20_000,
        100,
      )
    }
    const tasks = json<{ list: Array<{ name: string; is_started: boolean }> }>(
      await stdops(['task', 'list', '--keyword', 'minutely_', '--json', ...project], { env }),
    )
    expect(tasks.list.every((t) => t.is_started && /^minutely_\d{14}$/.test(t.name))).toBe(true)

    const show = json<{
      total_run_count: number
      last_run_at: string
      next_run_times: string[]
      recent_firings: Array<{ task_id: number; task_name: string; error: string | null }>
    }>(await stdops(['periodic', 'show', String(periodicId), '--json', ...project], { env }))
    expect(show.total_run_count).toBe(3)
    expect(show.next_run_times).toHaveLength(5)
    expect(show.recent_firings).toHaveLength(3)
    expect(show.recent_firings.map((f) => f.task_name)).toEqual(
      [...tasks.list.map((t) => t.name)].sort().reverse(),
    )
    expect(show.recent_firings.every((f) => f.error === null && f.task_id > 0)).toBe(true)
    const shown = await stdops(['periodic', 'show', String(periodicId), ...project], { env })
    expect(shown.stdout).toMatch(/^runs\s+3$/m)
    expect(shown.stdout).toMatch(/^RECENT RUNS\s+TASK\s+STATE\s+ERROR$/m)
    expect(shown.stdout).toMatch(/^CONSTANT\s+NAME\s+VALUE$/m)

    const cron = json<{ cron: string }>(
      await stdops(['periodic', 'set-cron', String(periodicId), '30 4 * * 1-5', '--json', ...project], {
        env,
      }),
    )
    expect(cron.cron).toBe('30 4 1-5 * * (m/h/d/dM/MY)')
    const constants = json<Record<string, { value: unknown }>>(
      await stdops(
        ['periodic', 'set-constants', String(periodicId), '--constant', 'wait=2', '--json', ...project],
        {
          env,
        },
      ),
    )
    expect(constants['${wait}']?.value).toBe('2')
    const disabled = await stdops(['periodic', 'disable', String(periodicId), ...project], { env })
    expect(disabled.stdout).toMatch(/^enabled\s+no$/m)
    expect(disabled.stdout).toMatch(/^next run\s+-$/m)
  })

  it('usage errors exit 2, refusals exit 1 with the legacy code on stderr', async () => {
    const noCron = await stdops(
      ['periodic', 'create', '--template', String(templateId), '--name', 'x', ...project],
      {
        env,
      },
    )
    expect(noCron.code).toBe(2)
    expect(noCron.stderr).toContain("required option '--cron <expr>' not specified")
    const badId = await stdops(['periodic', 'show', 'x1', ...project], { env })
    expect(badId.code).toBe(2)
    expect(badId.stderr).toContain('periodic task id must be a positive integer')
    const noConstants = await stdops(['periodic', 'set-constants', '1', ...project], { env })
    expect(noConstants.code).toBe(2)
    const badCron = await stdops(
      [
        'periodic',
        'create',
        '--template',
        String(templateId),
        '--name',
        'x',
        '--cron',
        '61 * * * *',
        ...project,
      ],
      { env },
    )
    expect(badCron.code).toBe(1)
    expect(badCron.stdout).toBe('')
    expect(badCron.stderr).toMatch(/^error 3540000: invalid param: cron\.minute: '61'/m)
    const missing = await stdops(['periodic', 'enable', '999999', ...project], { env })
    expect(missing.code).toBe(1)
    expect(missing.stderr).toContain(
      `error 3540400: periodic_task[id=999999] does not exist in project(${id.bkBizId})`,
    )
    const badState = await stdops(['clocked', 'list', '--state', 'done', ...project], { env })
    expect(badState.code).toBe(2)
  })

  it('clocked create, list and delete; the task is started at its time', async () => {
    const at = new Date(Date.now() + offset + 3_600_000).toISOString().replace(/\.\d{3}Z$/, 'Z')
    const created = await stdops(
      [
        'clocked',
        'create',
        '--template',
        String(templateId),
        '--name',
        'once',
        '--at',
        at,
        '--json',
        ...project,
      ],
      { env },
    )
    expect(created.code, created.stderr).toBe(0)
    const c = json<{ id: number; state: string }>(created)
    expect(c.state).toBe('not_started')
    const gone = json<{ id: number; deleted: boolean }>(
      await stdops(['clocked', 'delete', String(c.id), '--json', ...project], { env }),
    )
    expect(gone).toMatchObject({ id: c.id, deleted: true })

    const kept = json<{ id: number }>(
      await stdops(
        [
          'clocked',
          'create',
          '--template',
          String(templateId),
          '--name',
          'fires',
          '--at',
          at,
          '--json',
          ...project,
        ],
        {
          env,
        },
      ),
    )
    offset += 3_600_000 + 1000
    const started = await waitFor(
      async () => {
        const page = json<{ list: Array<{ id: number; state: string; task_id: number | null }> }>(
          await stdops(['clocked', 'list', '--state', 'started', '--json', ...project], { env }),
        )
        return page.list.find((x) => x.id === kept.id)
      },
      20_000,
      100,
    )
    expect(started.task_id).toBeGreaterThan(0)
    const table = await stdops(['clocked', 'list', ...project], { env })
    expect(table.stdout.split('\n')[0]).toMatch(/^ID\s+NAME\s+PLANNED\s+STATE\s+TASK\s+TEMPLATE\s+ERROR$/)
    expect(table.stderr).toContain('1 of 1 clocked task(s)')
    const deleted = await stdops(['clocked', 'delete', String(kept.id), ...project], { env })
    expect(deleted.stderr).toContain(`task ${started.task_id} it started is kept`)
  })
})
