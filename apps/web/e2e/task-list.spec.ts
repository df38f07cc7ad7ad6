import { BIZ, expect, test } from './fixtures'

test('the task list: filters with counts, live rows, and bulk pause, resume, revoke with per-task results', async ({
  signedIn: page,
  stdops,
  shot,
}) => {
  const long = { constants: { wait_seconds: '120' } }
  const a = await stdops.task(1, 'bulk alpha', { ...long, start: true })
  const b = await stdops.task(1, 'bulk beta', { ...long, start: true })
  const c = await stdops.task(1, 'bulk gamma', long) // not started
  await page.goto(`${stdops.server.url}/projects/${BIZ}/tasks?text=bulk`)
  const table = page.getByRole('table', { name: 'Tasks of the project' })
  await expect(table.getByRole('row')).toHaveCount(4)
  const chips = page.getByRole('group', { name: 'Filter by state' })
  await expect(chips.getByRole('button', { name: /^RUNNING 2$/ })).toBeVisible()
  await expect(chips.getByRole('button', { name: /^CREATED 1$/ })).toBeVisible()
  await shot('task-list')

  // A state filter is a link: the URL keeps it.
  await chips.getByRole('button', { name: /^CREATED/ }).click()
  await expect(page).toHaveURL(/states=/)
  await expect(table.getByRole('row')).toHaveCount(2)
  await expect(table.getByRole('link', { name: 'bulk gamma' })).toBeVisible()
  await page.reload()
  await expect(table.getByRole('row')).toHaveCount(2)
  await chips.getByRole('button', { name: /^CREATED/ }).click()
  await expect(table.getByRole('row')).toHaveCount(4)

  // A row changes state live when the task changes elsewhere.
  await stdops.api.task.start.mutate({ bk_biz_id: BIZ, task_id: c })
  await expect(table.locator(`tr[data-task-id="${c}"]`)).toHaveAttribute('data-state', 'RUNNING')
  await expect(chips.getByRole('button', { name: /^RUNNING 3$/ })).toBeVisible()

  // Pause two of them; one of them is paused already elsewhere: its refusal is reported.
  await stdops.api.task.operate.mutate({ bk_biz_id: BIZ, task_id: b, action: 'pause' })
  await expect(table.locator(`tr[data-task-id="${b}"]`)).toHaveAttribute('data-state', 'SUSPENDED')
  await page.getByRole('checkbox', { name: `Select task ${a}` }).check()
  await page.getByRole('checkbox', { name: `Select task ${b}` }).check()
  await page.getByRole('toolbar').getByRole('button', { name: 'Pause', exact: true }).click()
  const dialog = page.getByRole('dialog', { name: 'Pause: 2 tasks' })
  await expect(dialog).toContainText('1 of them can take it now')
  await dialog.getByRole('button', { name: 'Pause' }).click()
  const results = page.getByRole('region', { name: 'Results' })
  await expect(results.locator(`li[data-task-id="${a}"]`)).toContainText('now SUSPENDED')
  await expect(results.locator(`li[data-task-id="${b}"]`)).toContainText(
    'Refused (3545000): task is already suspended',
  )
  await expect.poll(() => stdops.state(a)).toBe('SUSPENDED')

  // Resume both, then revoke all three.
  await page.getByRole('checkbox', { name: 'Select every task on this page' }).check()
  await page.getByRole('checkbox', { name: `Select task ${c}` }).uncheck()
  await page.getByRole('toolbar').getByRole('button', { name: 'Resume', exact: true }).click()
  await page.getByRole('dialog', { name: 'Resume: 2 tasks' }).getByRole('button', { name: 'Resume' }).click()
  await expect(results.locator(`li[data-task-id="${a}"]`)).toContainText('now RUNNING')
  await expect(results.locator(`li[data-task-id="${b}"]`)).toContainText('now RUNNING')
  await page.getByRole('checkbox', { name: 'Select every task on this page' }).check()
  await page.getByRole('toolbar').getByRole('button', { name: 'Revoke', exact: true }).click()
  // Cancelling does nothing.
  await page.getByRole('dialog', { name: 'Revoke: 3 tasks' }).getByRole('button', { name: 'Cancel' }).click()
  expect(await stdops.state(a)).toBe('RUNNING')
  await page.getByRole('toolbar').getByRole('button', { name: 'Revoke', exact: true }).click()
  await page.getByRole('dialog', { name: 'Revoke: 3 tasks' }).getByRole('button', { name: 'Revoke' }).click()
  for (const id of [a, b, c])
    await expect(results.locator(`li[data-task-id="${id}"]`)).toContainText('now REVOKED')
  for (const id of [a, b, c]) await expect.poll(() => stdops.state(id)).toBe('REVOKED')
  await expect(chips.getByRole('button', { name: /^REVOKED 3$/ })).toBeVisible()
})

test('the projects page counts running, failed and paused tasks and links to them', async ({
  signedIn: page,
  stdops,
}) => {
  const running = await stdops.task(1, 'counted', { start: true, constants: { wait_seconds: '120' } })
  await page.goto(`${stdops.server.url}/projects`)
  const link = page.getByRole('link', { name: /Running tasks in Demo project/ })
  await expect(link).not.toHaveText('0')
  await link.click()
  await expect(page).toHaveURL(/\/projects\/2\/tasks\?states=/)
  await expect(
    page.getByRole('table', { name: 'Tasks of the project' }).locator(`tr[data-task-id="${running}"]`),
  ).toBeVisible()
  await stdops.api.task.operate.mutate({ bk_biz_id: BIZ, task_id: running, action: 'revoke' })
})
