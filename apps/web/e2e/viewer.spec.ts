import { BIZ, expect, test } from './fixtures'

test('a viewer sees every action disabled, saying why, and the API refuses a forged call', async ({
  page,
  stdops,
}) => {
  const viewer = stdops.user('viewer')
  const taskId = await stdops.task(1, 'seen by a viewer', { start: true, constants: { wait_seconds: '60' } })
  await page
    .context()
    .addCookies([
      { name: 'bk_token', value: viewer.token, url: stdops.server.url, httpOnly: true, sameSite: 'Strict' },
    ])
  await page.goto(`${stdops.server.url}/projects/${BIZ}/tasks/${taskId}`)
  const header = page.getByRole('region', { name: 'Task', exact: true })
  await expect(header.getByText('RUNNING', { exact: true })).toBeVisible()
  for (const action of ['Start', 'Pause', 'Resume', 'Revoke'])
    await expect(header.getByRole('button', { name: action, exact: true })).toBeDisabled()
  // Pause is what the state allows: the role is why it is disabled. Start: the state.
  await expect(header.getByRole('button', { name: 'Pause', exact: true })).toHaveAccessibleDescription(
    'Your role (viewer) may not operate tasks in this project',
  )
  await expect(header.getByRole('button', { name: 'Start', exact: true })).toHaveAccessibleDescription(
    'Not now: task already started',
  )
  // The list's bulk actions too.
  await page.goto(`${stdops.server.url}/projects/${BIZ}/tasks`)
  await page.getByRole('checkbox', { name: `Select task ${taskId}` }).check()
  for (const action of ['Pause', 'Resume', 'Revoke'])
    await expect(page.getByRole('toolbar').getByRole('button', { name: action, exact: true })).toBeDisabled()

  // Forged calls with the viewer's cookie: without the anti-CSRF header the server refuses them
  // before anything else; with it, the viewer's role refuses them. The task keeps running.
  const forged = await page.request.post(`${stdops.server.url}/trpc/task.operate`, {
    data: { bk_biz_id: BIZ, task_id: taskId, action: 'revoke' },
    headers: { origin: 'https://evil.example' },
  })
  expect(forged.status()).toBe(403)
  expect((await forged.json()).error.message).toContain('cross-site request refused')
  const asViewer = await page.request.post(`${stdops.server.url}/trpc/task.operate`, {
    data: { bk_biz_id: BIZ, task_id: taskId, action: 'revoke' },
    headers: { 'x-stdops-csrf': '1' },
  })
  const body = await asViewer.json()
  expect(body.error.data.legacyCode).toBe(3599999)
  expect(body.error.message).toContain('permission denied: action task_operate')
  await expect.poll(() => stdops.state(taskId)).toBe('RUNNING')
  const records = await stdops.api.task.records.query({ bk_biz_id: BIZ, task_id: taskId })
  expect(records.map((r) => r.operate_type)).toEqual(['create', 'start'])
  await stdops.api.task.operate.mutate({ bk_biz_id: BIZ, task_id: taskId, action: 'revoke' })
})
