import { BIZ, expect, test, tree } from './fixtures'

test('a started task’s nodes turn FINISHED on the canvas with no reload', async ({
  signedIn: page,
  stdops,
  shot,
}) => {
  const taskId = await stdops.task(1, 'watched live', { constants: { wait_seconds: '3' } })
  await page.goto(`${stdops.server.url}/projects/${BIZ}/tasks/${taskId}`)
  const canvas = page.getByRole('region', { name: 'The pipeline of this task' })
  await expect(canvas.getByRole('button', { name: /^Greet: / })).toHaveAttribute('data-state', 'NONE')
  await page.evaluate(() => {
    ;(window as unknown as { sameDocument: boolean }).sameDocument = true
  })
  const header = page.getByRole('region', { name: 'Task', exact: true })
  await header.getByRole('button', { name: 'Start', exact: true }).click()
  await expect(canvas.getByRole('button', { name: 'Wait a moment: RUNNING' })).toBeVisible()
  await expect(
    page.getByRole('region', { name: 'Task', exact: true }).getByText('RUNNING', { exact: true }),
  ).toBeVisible()
  await shot('task-running')
  await expect(canvas.getByRole('button', { name: 'Wait a moment: FINISHED' })).toBeVisible({
    timeout: 30_000,
  })
  await expect(canvas.getByRole('button', { name: 'Greet: FINISHED' })).toBeVisible()
  await expect(
    page.getByRole('region', { name: 'Task', exact: true }).getByText('FINISHED', { exact: true }),
  ).toBeVisible()
  expect(await page.evaluate(() => (window as unknown as { sameDocument?: boolean }).sameDocument)).toBe(true)
  await expect.poll(() => stdops.state(taskId)).toBe('FINISHED')
  // Every action is now refused by the state machine, and says so.
  for (const action of ['Start', 'Pause', 'Resume', 'Revoke'])
    await expect(header.getByRole('button', { name: action, exact: true })).toBeDisabled()
  await expect(header.getByRole('button', { name: 'Pause', exact: true })).toHaveAccessibleDescription(
    'Not now: task with state FINISHED cannot be paused',
  )
  await shot('task-finished')
})

test('a deep link to a node and a tab opens them', async ({ signedIn: page, stdops }) => {
  const failing = await stdops.template(
    'fails at once',
    await tree((b) => {
      const bad = b.activity('fail', {
        name: 'Break',
        data: { message: { hook: false, value: 'broken on purpose' } },
      })
      b.chain(b.startId, bad, b.endId)
    }),
  )
  const taskId = await stdops.task(failing, 'deep link', { start: true })
  const tpl = await stdops.api.template.get.query({ bk_biz_id: BIZ, template_id: failing })
  const badId = Object.keys((tpl.pipeline_tree as { activities: object }).activities)[0]!
  await expect.poll(() => stdops.nodeState(taskId, badId)).toBe('FAILED')
  await page.goto(`${stdops.server.url}/projects/${BIZ}/tasks/${taskId}?node=${badId}&tab=records`)
  const panel = page.getByRole('complementary', { name: 'Node details' })
  await expect(panel.getByRole('heading', { name: 'Break' })).toBeVisible()
  await expect(panel.getByRole('region', { name: 'Error' })).toContainText('broken on purpose')
  await expect(page.getByRole('tab', { name: 'Operate records' })).toHaveAttribute('aria-selected', 'true')
  await expect(page.getByRole('tabpanel').getByRole('cell', { name: 'start', exact: true })).toBeVisible()
  await expect(
    page.getByRole('region', { name: 'Task', exact: true }).getByText('FAILED', { exact: true }),
  ).toBeVisible()
  // The events tab, failures only, from its link.
  await page.goto(`${stdops.server.url}/projects/${BIZ}/tasks/${taskId}?failures=true`)
  const rows = page.getByRole('table', { name: 'Events' }).getByRole('row')
  await expect(rows).toHaveCount(2) // header + the one failure
  await expect(rows.nth(1)).toContainText('broken on purpose')
})
