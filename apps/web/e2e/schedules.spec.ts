import { BIZ, expect, test } from './fixtures'

const pad = (n: number) => String(n).padStart(2, '0')
/** epoch ms → a datetime-local value in UTC (the page is switched to UTC times first). */
const utcInput = (ms: number) => {
  const d = new Date(ms)
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}T${pad(d.getUTCHours())}:${pad(
    d.getUTCMinutes(),
  )}:${pad(d.getUTCSeconds())}`
}

test('schedules: create a periodic task from the page, enable it and see its next due times, disable it', async ({
  signedIn: page,
  stdops,
}) => {
  await page.goto(`${stdops.server.url}/projects/${BIZ}/schedules`)
  await page.getByRole('button', { name: 'New periodic task' }).click()
  const form = page.getByRole('form', { name: 'New periodic task' })
  await form.getByLabel('Name').fill('nightly greeting')
  await form.getByLabel('Cron').fill('30 2 * * *')
  await form.getByLabel('Template').selectOption({ label: '1 · Demo: greet and wait' })
  await form.getByLabel(/Who to greet/).fill('the night shift')
  await form.getByRole('button', { name: 'Create the periodic task' }).click()

  // Created disabled, with the constants typed in; its details open from the URL.
  await expect(page).toHaveURL(/periodic=\d+/)
  const id = Number(new URL(page.url()).searchParams.get('periodic'))
  const created = await stdops.api.periodic.get.query({ bk_biz_id: BIZ, task_id: id })
  expect(created).toMatchObject({ name: 'nightly greeting', enabled: false, template_id: '1' })
  expect((created.pipeline_tree.constants as Record<string, { value: unknown }>)['${who}']?.value).toBe(
    'the night shift',
  )
  const details = page.getByRole('region', { name: 'Periodic task “nightly greeting”' })
  await expect(details.getByText('None: the task is disabled.')).toBeVisible()
  await expect(details.getByText('30 2 * * *')).toBeVisible()

  // Enable: five due times, each at 02:30 in the server's zone, and the list says when next.
  const row = page.locator(`tr[data-periodic-id="${id}"]`)
  // The switch shows what the server holds: it turns once the server has answered.
  const toggle = row.getByRole('switch', { name: 'Enabled: nightly greeting' })
  await toggle.click()
  await expect(toggle).toBeChecked()
  await expect
    .poll(async () => (await stdops.api.periodic.get.query({ bk_biz_id: BIZ, task_id: id })).enabled)
    .toBe(true)
  const nextTimes = details.getByRole('list', { name: 'Next due times' }).getByRole('listitem')
  await expect(nextTimes).toHaveCount(5)
  const fromApi = await stdops.api.periodic.get.query({ bk_biz_id: BIZ, task_id: id })
  expect(fromApi.next_run_times).toHaveLength(5)
  for (const due of fromApi.next_run_times) expect(due).toMatch(/ 02:30:00 [+-]\d{4}$/)
  await expect(row.locator('time')).not.toHaveCount(0)

  // Change the cron from the details: the API has it.
  await details.getByLabel('New cron').fill('0 */6 * * *')
  await details.getByRole('button', { name: 'Save the cron' }).click()
  await expect
    .poll(async () => (await stdops.api.periodic.get.query({ bk_biz_id: BIZ, task_id: id })).cron)
    .toBe('0 */6 * * * (m/h/d/dM/MY)')
  await expect(row).toContainText('0 */6 * * *')

  // Disable: no due time any more.
  await toggle.click()
  await expect(toggle).not.toBeChecked()
  await expect(details.getByText('None: the task is disabled.')).toBeVisible()
  expect((await stdops.api.periodic.get.query({ bk_biz_id: BIZ, task_id: id })).enabled).toBe(false)
})

test('schedules: a clocked task made on the page starts its task at the time picked, and links to it', async ({
  signedIn: page,
  stdops,
}) => {
  await page.goto(`${stdops.server.url}/projects/${BIZ}/schedules?create=clocked`)
  await page.getByRole('checkbox', { name: 'Times in UTC' }).check()
  const form = page.getByRole('form', { name: 'New clocked task' })
  await form.getByLabel('Task name').fill('greet at a set time')
  await form.getByLabel('Template').selectOption({ label: '1 · Demo: greet and wait' })
  await form.getByLabel(/Seconds to wait/).fill('0')
  const at = Date.now() + 6_000
  await form.getByLabel('Start at (in UTC)').fill(utcInput(at))
  await form.getByRole('button', { name: 'Create the clocked task' }).click()

  const table = page.getByRole('table', { name: 'Clocked tasks' })
  const row = table.getByRole('row').filter({ hasText: 'greet at a set time' })
  await expect(row).toHaveAttribute('data-state', 'not_started')
  const clocked = (await stdops.api.clocked.list.query({ bk_biz_id: BIZ, offset: 0, limit: 10 })).list.find(
    (c) => c.task_name === 'greet at a set time',
  )!
  // The time picked in UTC is the time the server planned, to the second.
  expect(Date.parse(clocked.plan_start_time.replace(' ', 'T').replace(/ ([+-]\d\d)(\d\d)$/, '$1:$2'))).toBe(
    Math.floor(at / 1000) * 1000,
  )

  // The page asks again once the time has passed: started, with a link to its task.
  await expect(row).toHaveAttribute('data-state', 'started', { timeout: 60_000 })
  const link = row.getByRole('link', { name: /^Task \d+$/ })
  await link.click()
  await expect(page).toHaveURL(/\/tasks\/\d+/)
  await expect(page.getByRole('region', { name: 'Task', exact: true })).toContainText('greet at a set time')
  const taskId = Number(/\/tasks\/(\d+)/.exec(page.url())![1])
  await expect.poll(() => stdops.state(taskId), { timeout: 30_000 }).toBe('FINISHED')
})
