import { BIZ, expect, test, tree } from './fixtures'

/**
 * The node panel on the demo's showcase (template 2): approve the approval point with a comment,
 * watch the apply step fail, retry it with an edited input (the API shows the new attempt with
 * it), skip it, and find all of it in the events tab and the operate records.
 */
test('the demo: approve, a node fails, retry it from the panel with an edited input, skip it, see it all in the events tab', async ({
  signedIn: page,
  stdops,
  shot,
}) => {
  // The task, made from the template's constants form as a person makes it.
  await page.goto(`${stdops.server.url}/projects/${BIZ}/templates`)
  await page.getByRole('link', { name: 'New task from Demo: approve, then a failing step' }).click()
  await page.getByLabel('Task name').fill('change web-01')
  await page.getByRole('button', { name: 'Create and start' }).click()
  await expect(page).toHaveURL(/\/tasks\/\d+/)
  const taskId = Number(/\/tasks\/(\d+)/.exec(page.url())![1])
  const canvas = page.getByRole('region', { name: 'The pipeline of this task' })
  const panel = page.getByRole('complementary', { name: 'Node details' })

  // The approval point waits; approve it from its panel with a comment. (It shows RUNNING a moment
  // before its component asks for the callback: open the panel once it waits, as a person would.)
  await expect
    .poll(
      async () =>
        (await stdops.api.node.detail.query({ bk_biz_id: BIZ, task_id: taskId, node_id: 'n_approve' }))
          .waiting_for,
      { timeout: 20_000 },
    )
    .toBe('callback')
  await canvas.getByRole('button', { name: 'Approve the change: RUNNING' }).click()
  await expect(panel.getByText('waiting for a callback', { exact: true })).toBeVisible()
  await panel.getByRole('button', { name: 'Approve', exact: true }).click()
  await panel.getByLabel('Comment').fill('go ahead, window agreed')
  await panel.getByRole('button', { name: 'Approve with this comment' }).click()
  await expect(canvas.getByRole('button', { name: 'Approve the change: FINISHED' })).toBeVisible()
  const approved = await stdops.api.node.detail.query({
    bk_biz_id: BIZ,
    task_id: taskId,
    node_id: 'n_approve',
  })
  expect(approved.outputs).toContainEqual(
    expect.objectContaining({
      key: 'callback_data',
      value: { approved: true, comment: 'go ahead, window agreed' },
    }),
  )

  // The apply step fails: the header jumps to it, the panel shows the error and its log.
  await expect(canvas.getByRole('button', { name: 'Apply the change: FAILED' })).toBeVisible()
  const header = page.getByRole('region', { name: 'Task', exact: true })
  await expect(header.getByText('FAILED', { exact: true })).toBeVisible()
  await header.getByRole('button', { name: 'Jump to the failed node' }).click()
  await expect(page).toHaveURL(/node=n_apply/)
  await expect(panel.getByRole('region', { name: 'Error' })).toContainText(
    'apply failed: disk full on web-01',
  )
  await expect(panel.getByRole('region', { name: 'Inputs' })).toContainText('disk full on web-01')
  await expect(canvas.getByRole('button', { name: 'Health check: FINISHED' })).toBeVisible()
  await shot('task-failed')

  // Retry with an edited input.
  await panel.getByRole('button', { name: 'Retry', exact: true }).click()
  const inputs = panel.getByLabel('Inputs for the new attempt (JSON)')
  await inputs.fill(JSON.stringify({ message: 'apply failed again: still no room' }, null, 2))
  await panel.getByRole('button', { name: 'Retry with these inputs' }).click()
  // The API has the new attempt with those inputs; the first one is kept in the history.
  await expect
    .poll(async () => {
      const d = await stdops.api.node.detail.query({ bk_biz_id: BIZ, task_id: taskId, node_id: 'n_apply' })
      return { state: d.state, histories: d.histories.length, inputs: d.inputs, error: d.ex_data }
    })
    .toEqual({
      state: 'FAILED',
      histories: 1,
      inputs: { message: 'apply failed again: still no room' },
      error: 'apply failed again: still no room',
    })
  await expect(canvas.getByRole('button', { name: 'Apply the change: FAILED' })).toContainText('retried 1×')
  await expect(panel.getByRole('region', { name: 'Error' })).toContainText(
    'apply failed again: still no room',
  )
  // The earlier attempt, from the attempt picker (and the URL keeps it).
  await panel.getByLabel('Attempt', { exact: true }).selectOption({ label: 'Attempt 1 (first run): FAILED' })
  await expect(page).toHaveURL(/attempt=\d+/)
  await expect(panel.getByRole('region', { name: 'Error' })).toContainText(
    'apply failed: disk full on web-01',
  )
  await panel.getByLabel('Attempt', { exact: true }).selectOption({ index: 0 })

  // Skip it: the run goes on to the end.
  await panel.getByRole('button', { name: 'Skip', exact: true }).click()
  await page.getByRole('dialog', { name: 'Skip' }).getByRole('button', { name: 'Skip' }).click()
  await expect(canvas.getByRole('button', { name: 'Apply the change: FINISHED' })).toContainText('skipped')
  await expect(header.getByText('FINISHED', { exact: true })).toBeVisible({ timeout: 30_000 })
  await expect.poll(() => stdops.state(taskId)).toBe('FINISHED')

  // The events tab tells the story of the node: failed, ready again, failed, finished.
  await page.getByRole('checkbox', { name: 'Only the selected node' }).check()
  const rows = page.getByRole('table', { name: 'Events' }).locator('tbody tr')
  await expect(rows.locator('td:nth-child(4)')).toHaveText([
    'READY',
    'RUNNING',
    'FAILED',
    'READY',
    'RUNNING',
    'FAILED',
    'FINISHED',
  ])
  await page.getByRole('checkbox', { name: 'Failures only' }).check()
  await expect(rows).toHaveCount(2)
  await expect(rows.nth(1)).toContainText('apply failed again: still no room')
  // And the operate records: the approval, the retry and the skip, each with its node.
  await page.getByRole('tab', { name: 'Operate records' }).click()
  const records = page.getByRole('table', { name: 'Operate records' })
  for (const type of ['callback', 'retry', 'skip'])
    await expect(records.getByRole('row').filter({ hasText: type })).toHaveCount(1)
  const fromApi = await stdops.api.task.records.query({ bk_biz_id: BIZ, task_id: taskId })
  expect(fromApi.filter((r) => r.node_id).map((r) => [r.operate_type, r.node_id])).toEqual([
    ['callback', 'n_approve'],
    ['retry', 'n_apply'],
    ['skip', 'n_apply'],
  ])
})

/** start → a long wait → a quick step → end. */
const waitThenStep = () =>
  tree((b) => {
    const wait = b.activity('sleep_timer', {
      name: 'Long wait',
      data: { bk_timing: { hook: false, value: '600' } },
    })
    const later = b.activity('set_variables', {
      name: 'Later step',
      data: { variables: { hook: false, value: { x: 1 } } },
    })
    b.chain(b.startId, wait, later, b.endId)
  })

test('node actions: hold a node ahead, force a running one to fail, retry it shorter, release the held one; task pause, resume and revoke', async ({
  signedIn: page,
  stdops,
}) => {
  const template = await stdops.template('wait then step', await waitThenStep())
  const tpl = await stdops.api.template.get.query({ bk_biz_id: BIZ, template_id: template })
  const ids = Object.entries(
    (tpl.pipeline_tree as { activities: Record<string, { name: string }> }).activities,
  )
  const waitId = ids.find(([, a]) => a.name === 'Long wait')![0]
  const laterId = ids.find(([, a]) => a.name === 'Later step')![0]
  const taskId = await stdops.task(template, 'operated node by node', { start: true })
  const canvas = page.getByRole('region', { name: 'The pipeline of this task' })
  const panel = page.getByRole('complementary', { name: 'Node details' })
  const header = page.getByRole('region', { name: 'Task', exact: true })

  // Hold the step the run has not reached yet (a deep link opens its panel).
  await page.goto(`${stdops.server.url}/projects/${BIZ}/tasks/${taskId}?node=${laterId}`)
  await expect(canvas.getByRole('button', { name: 'Long wait: RUNNING' })).toBeVisible()
  await expect(panel.getByRole('button', { name: 'Resume node' })).toBeDisabled()
  await panel.getByRole('button', { name: 'Pause node' }).click()
  await expect(panel.getByText('held', { exact: true })).toBeVisible()
  await expect(panel.getByRole('button', { name: 'Pause node' })).toBeDisabled()
  await expect(panel.getByRole('button', { name: 'Pause node' })).toHaveAccessibleDescription(
    `Not now: node[${laterId}] is already paused`,
  )
  expect(
    (await stdops.api.node.detail.query({ bk_biz_id: BIZ, task_id: taskId, node_id: laterId })).held,
  ).toBe(true)

  // Force the running wait to fail.
  await canvas.getByRole('button', { name: 'Long wait: RUNNING' }).click()
  await expect(panel.getByRole('button', { name: 'Retry', exact: true })).toHaveAccessibleDescription(
    `Not now: node[${waitId}] is RUNNING; retry needs FAILED`,
  )
  await panel.getByRole('button', { name: 'Force fail' }).click()
  await page.getByRole('dialog', { name: 'Force fail' }).getByRole('button', { name: 'Force fail' }).click()
  await expect(canvas.getByRole('button', { name: 'Long wait: FAILED' })).toBeVisible()
  await expect(panel.getByRole('region', { name: 'Error' })).toContainText('terminated by admin')

  // Pause and resume the whole task from the header meanwhile.
  await header.getByRole('button', { name: 'Pause', exact: true }).click()
  await expect.poll(() => stdops.state(taskId)).toBe('SUSPENDED')
  await header.getByRole('button', { name: 'Resume', exact: true }).click()
  // Running again, and shown FAILED while a node waits for an operator (as get_task_status says).
  await expect.poll(() => stdops.state(taskId)).toBe('FAILED')
  await expect(header.getByText('FAILED', { exact: true })).toBeVisible()

  // Retry it with one second to wait: it finishes, and the run stops before the held step.
  await panel.getByRole('button', { name: 'Retry', exact: true }).click()
  await panel.getByLabel('Inputs for the new attempt (JSON)').fill('{"bk_timing": "1"}')
  await panel.getByRole('button', { name: 'Retry with these inputs' }).click()
  await expect(canvas.getByRole('button', { name: 'Long wait: FINISHED' })).toBeVisible({ timeout: 30_000 })
  await expect.poll(() => stdops.nodeState(taskId, laterId)).not.toBe('FINISHED')
  await canvas.getByRole('button', { name: /^Later step: / }).click()
  await expect(panel.getByText('held', { exact: true })).toBeVisible()
  await header.getByRole('button', { name: 'Why is it waiting?' }).click()
  await expect(
    page.getByRole('region', { name: 'Why is it waiting?' }).locator('li[data-reason="node_paused"]'),
  ).toContainText('Later step: held by a node pause: it starts when the node is resumed')

  // Release it: the task finishes.
  await panel.getByRole('button', { name: 'Resume node' }).click()
  await expect(canvas.getByRole('button', { name: 'Later step: FINISHED' })).toBeVisible({ timeout: 30_000 })
  await expect.poll(() => stdops.state(taskId)).toBe('FINISHED')
  for (const action of ['Retry', 'Skip', 'Force fail', 'Pause node', 'Resume node'])
    await expect(panel.getByRole('button', { name: action, exact: true })).toBeDisabled()

  // Revoke, on another task, from the header with its confirmation.
  const other = await stdops.task(template, 'to revoke', { start: true })
  await page.goto(`${stdops.server.url}/projects/${BIZ}/tasks/${other}`)
  await expect(canvas.getByRole('button', { name: 'Long wait: RUNNING' })).toBeVisible()
  await header.getByRole('button', { name: 'Revoke', exact: true }).click()
  await page.getByRole('dialog', { name: 'Revoke' }).getByRole('button', { name: 'Revoke' }).click()
  await expect.poll(() => stdops.state(other)).toBe('REVOKED')
  await expect(header.getByText('REVOKED', { exact: true })).toBeVisible()
})

test('a viewer sees every node action disabled, saying why, and the API refuses a forged one', async ({
  page,
  stdops,
}) => {
  const viewer = stdops.user('viewer')
  const failing = await stdops.template(
    'fails for the viewer',
    await tree((b) => {
      const bad = b.activity('fail', { name: 'Broken', data: { message: { hook: false, value: 'nope' } } })
      b.chain(b.startId, bad, b.endId)
    }),
  )
  const taskId = await stdops.task(failing, 'seen, not touched', { start: true })
  const tpl = await stdops.api.template.get.query({ bk_biz_id: BIZ, template_id: failing })
  const badId = Object.keys((tpl.pipeline_tree as { activities: object }).activities)[0]!
  await expect.poll(() => stdops.nodeState(taskId, badId)).toBe('FAILED')
  await page
    .context()
    .addCookies([
      { name: 'bk_token', value: viewer.token, url: stdops.server.url, httpOnly: true, sameSite: 'Strict' },
    ])
  await page.goto(`${stdops.server.url}/projects/${BIZ}/tasks/${taskId}?node=${badId}`)
  const panel = page.getByRole('complementary', { name: 'Node details' })
  await expect(panel.getByRole('region', { name: 'Error' })).toContainText('nope')
  for (const action of ['Retry', 'Skip', 'Force fail', 'Callback', 'Pause node', 'Resume node'])
    await expect(panel.getByRole('button', { name: action, exact: true })).toBeDisabled()
  await expect(panel.getByRole('button', { name: 'Retry', exact: true })).toHaveAccessibleDescription(
    'Your role (viewer) may not operate tasks in this project',
  )
  const forged = await page.request.post(`${stdops.server.url}/trpc/node.operate`, {
    data: { bk_biz_id: BIZ, task_id: taskId, node_id: badId, action: 'skip' },
    headers: { 'x-stdops-csrf': '1' },
  })
  expect((await forged.json()).error.data.legacyCode).toBe(3599999)
  expect(await stdops.nodeState(taskId, badId)).toBe('FAILED')
  await stdops.api.task.operate.mutate({ bk_biz_id: BIZ, task_id: taskId, action: 'revoke' })
})

test('a failed gateway: pick the branch an exclusive gateway takes, and the branches a conditional parallel one forks', async ({
  signedIn: page,
  stdops,
}) => {
  // x = 1 satisfies none of the conditions, and there is no default: both gateways fail.
  const template = await stdops.template(
    'no branch holds',
    await tree((b) => {
      b.constant('x', 1)
      const step = (name: string) =>
        b.activity('set_variables', { name, data: { variables: { hook: false, value: { took: name } } } })
      const exg = b.gateway('ExclusiveGateway', { name: 'Which way' })
      const exgJoin = b.gateway('ConvergeGateway')
      const left = step('Left')
      const right = step('Right')
      const cpg = b.gateway('ConditionalParallelGateway', { name: 'Which lanes' })
      const cpgJoin = b.gateway('ConvergeGateway')
      const lanes = ['Lane A', 'Lane B', 'Lane C'].map(step)
      b.flow(b.startId, exg)
      b.flow(exg, left, { condition: '${x} == 2' })
      b.flow(exg, right, { condition: '${x} == 3' })
      b.chain(left, exgJoin)
      b.chain(right, exgJoin)
      b.flow(exgJoin, cpg)
      lanes.forEach((lane, i) => {
        b.flow(cpg, lane, { condition: `\${x} == ${i + 5}` })
        b.chain(lane, cpgJoin)
      })
      b.flow(cpgJoin, b.endId)
    }),
  )
  const taskId = await stdops.task(template, 'choose for it', { start: true })
  await page.goto(`${stdops.server.url}/projects/${BIZ}/tasks/${taskId}`)
  const canvas = page.getByRole('region', { name: 'The pipeline of this task' })
  const panel = page.getByRole('complementary', { name: 'Node details' })

  await canvas.getByRole('button', { name: 'Which way: FAILED' }).click()
  await panel.getByRole('button', { name: 'Pick a branch' }).click()
  await panel.getByRole('radio', { name: 'Right (if ${x} == 3)' }).check()
  await panel.getByRole('button', { name: 'Take it' }).click()
  await expect(canvas.getByRole('button', { name: 'Right: FINISHED' })).toBeVisible()
  await expect(canvas.getByRole('button', { name: "Left: won't run" })).toBeVisible()

  await canvas.getByRole('button', { name: 'Which lanes: FAILED' }).click()
  await panel.getByRole('button', { name: 'Pick branches' }).click()
  await panel.getByRole('checkbox', { name: 'Lane A (if ${x} == 5)' }).check()
  await panel.getByRole('checkbox', { name: 'Lane C (if ${x} == 7)' }).check()
  await panel.getByRole('button', { name: 'Take it' }).click()
  await expect.poll(() => stdops.state(taskId)).toBe('FINISHED')
  await expect(canvas.getByRole('button', { name: 'Lane A: FINISHED' })).toBeVisible()
  await expect(canvas.getByRole('button', { name: 'Lane C: FINISHED' })).toBeVisible()
  await expect(canvas.getByRole('button', { name: "Lane B: won't run" })).toBeVisible()
  const records = await stdops.api.task.records.query({ bk_biz_id: BIZ, task_id: taskId })
  expect(records.filter((r) => r.node_id).map((r) => r.operate_type)).toEqual(['skip_exg', 'skip_cpg'])
})
