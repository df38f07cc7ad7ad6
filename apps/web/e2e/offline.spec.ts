import { BIZ, expect, type Stdops, test, tree } from './fixtures'

/** start → six one-second timers → end: events keep coming for a few seconds. */
const sleepyTree = () =>
  tree((b) => {
    const steps = Array.from({ length: 6 }, (_, i) =>
      b.activity('sleep_timer', { name: `Tick ${i + 1}`, data: { bk_timing: { hook: false, value: '1' } } }),
    )
    b.chain(b.startId, ...steps, b.endId)
  })

async function shownSeqs(page: import('@playwright/test').Page) {
  return page
    .getByRole('table', { name: 'Events' })
    .locator('tbody tr')
    .evaluateAll((rows) => rows.map((r) => Number(r.getAttribute('data-seq'))))
}

async function expectSameEvents(page: import('@playwright/test').Page, stdops: Stdops, taskId: number) {
  const all = await stdops.events(taskId)
  expect(all.at(-1)?.state).toBe('FINISHED')
  await expect.poll(() => shownSeqs(page)).toEqual(all.map((e) => e.seq))
  // Gap-free and no duplicate: exactly 1..n.
  expect(all.map((e) => e.seq)).toEqual(all.map((_, i) => i + 1))
}

test('cut the network and restore it: the page says it is offline, then catches up with no gap and no duplicate', async ({
  signedIn: page,
  stdops,
}) => {
  const template = await stdops.template('ticks', await sleepyTree())
  const taskId = await stdops.task(template, 'offline for a while')
  await page.goto(`${stdops.server.url}/projects/${BIZ}/tasks/${taskId}`)
  const canvas = page.getByRole('region', { name: 'The pipeline of this task' })
  await expect(canvas.getByRole('button', { name: /^Tick 1: / })).toBeVisible()
  await stdops.api.task.start.mutate({ bk_biz_id: BIZ, task_id: taskId })
  await expect(canvas.getByRole('button', { name: 'Tick 1: RUNNING' })).toBeVisible()

  await page.context().setOffline(true)
  await expect(page.getByRole('status').filter({ hasText: 'Offline' })).toBeVisible()
  // The run goes on while the page cannot hear it: two more steps finish on the server than the
  // canvas showed when the network went.
  const shownFinished = await canvas.locator('[data-state="FINISHED"]').count()
  const finishedOnServer = async () => {
    const s = await stdops.api.task.status.query({ bk_biz_id: BIZ, task_id: taskId })
    return Object.values(s.children as Record<string, { state: string }>).filter(
      (c) => c.state === 'FINISHED',
    ).length
  }
  await expect.poll(finishedOnServer, { timeout: 30_000 }).toBeGreaterThan(shownFinished + 2)
  await expect(canvas.locator('[data-state="FINISHED"]')).toHaveCount(shownFinished)
  await page.context().setOffline(false)

  await expect(page.getByRole('status').filter({ hasText: 'Offline' })).toBeHidden({ timeout: 30_000 })
  await expect(canvas.getByRole('button', { name: 'Tick 6: FINISHED' })).toBeVisible({ timeout: 30_000 })
  await expectSameEvents(page, stdops, taskId)
})

test('a server restart mid-run: the page recovers by itself and misses nothing', async ({
  signedIn: page,
  stdops,
}) => {
  const template = await stdops.template('ticks across a restart', await sleepyTree())
  const taskId = await stdops.task(template, 'across a restart', { start: true })
  await page.goto(`${stdops.server.url}/projects/${BIZ}/tasks/${taskId}`)
  const canvas = page.getByRole('region', { name: 'The pipeline of this task' })
  // Mid-run: whichever tick the page first shows running (each lasts a second, and the page may
  // open after the first two), with at least one to go after it.
  await expect(canvas.getByRole('button', { name: /^Tick [1-5]: RUNNING$/ })).toBeVisible({ timeout: 30_000 })
  await stdops.server.stop()
  await expect(page.getByRole('status').filter({ hasText: 'Offline' })).toBeVisible({ timeout: 30_000 })
  await stdops.server.restart()
  await expect(page.getByRole('status').filter({ hasText: 'Offline' })).toBeHidden({ timeout: 60_000 })
  await expect(canvas.getByRole('button', { name: 'Tick 6: FINISHED' })).toBeVisible({ timeout: 60_000 })
  await expectSameEvents(page, stdops, taskId)
})
