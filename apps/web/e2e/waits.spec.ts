import { BIZ, expect, test, tree } from './fixtures'

/** Three lanes that each stop for a different reason: an approval, a long timer, a failure. */
const stuckTree = () =>
  tree((b) => {
    const fork = b.gateway('ParallelGateway')
    const join = b.gateway('ConvergeGateway')
    const approve = b.activity('pause_node', { name: 'Sign-off' })
    const cool = b.activity('sleep_timer', {
      name: 'Cool down',
      data: { bk_timing: { hook: false, value: '600' } },
    })
    const broken = b.activity('fail', {
      name: 'Flaky step',
      data: { message: { hook: false, value: 'no route to host' } },
    })
    b.flow(b.startId, fork)
    for (const lane of [approve, cool, broken]) b.chain(fork, lane, join)
    b.flow(join, b.endId)
  })

test('why is it waiting: a callback, a timer, a failed node, then the task paused', async ({
  signedIn: page,
  stdops,
}) => {
  const template = await stdops.template('stuck three ways', await stuckTree())
  const taskId = await stdops.task(template, 'why so slow', { start: true })
  await page.goto(`${stdops.server.url}/projects/${BIZ}/tasks/${taskId}`)
  const canvas = page.getByRole('region', { name: 'The pipeline of this task' })
  await expect(canvas.getByRole('button', { name: 'Flaky step: FAILED' })).toBeVisible()
  await expect(canvas.getByRole('button', { name: 'Cool down: RUNNING' })).toBeVisible()

  const header = page.getByRole('region', { name: 'Task', exact: true })
  await header.getByRole('button', { name: 'Why is it waiting?' }).click()
  await expect(page).toHaveURL(/waits=true/)
  const waits = page.getByRole('region', { name: 'Why is it waiting?' })
  await expect(waits.locator('li[data-reason="callback"]')).toContainText(
    'Sign-off: waiting for a callback since',
  )
  await expect(waits.locator('li[data-reason="timer"]')).toContainText('Cool down: a timer due at')
  await expect(waits.locator('li[data-reason="failed"]')).toContainText('Flaky step: failed at')
  await expect(waits.locator('li[data-reason="failed"]')).toContainText('no route to host')
  // The timer's due time is the one the server holds: ten minutes after the node started.
  const answer = await stdops.api.task.waits.query({ bk_biz_id: BIZ, task_id: taskId })
  const timer = answer.waits.find((w) => w.reason === 'timer')!
  expect(timer.due_at! - timer.since!).toBeGreaterThanOrEqual(600_000 - 1000)

  // A name in the list selects its node on the canvas.
  await waits.getByRole('button', { name: 'Sign-off' }).click()
  await expect(
    page.getByRole('complementary', { name: 'Node details' }).getByRole('heading', { name: 'Sign-off' }),
  ).toBeVisible()

  // Pause the task: the answer changes with it (asked again after the event, not polled).
  await header.getByRole('button', { name: 'Pause', exact: true }).click()
  await expect.poll(() => stdops.state(taskId)).toBe('SUSPENDED')
  await expect(waits).toContainText('The task is paused: no new step starts until it is resumed.')
  await stdops.api.task.operate.mutate({ bk_biz_id: BIZ, task_id: taskId, action: 'revoke' })
  await expect(waits).toBeHidden()
})
