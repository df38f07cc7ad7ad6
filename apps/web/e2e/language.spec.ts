import { BIZ, expect, test } from './fixtures'

test.describe('in a browser that reads Chinese', () => {
  test.use({ locale: 'zh-CN' })

  test('the console speaks Simplified Chinese, keeps states and codes as the API sends them, and switches to English', async ({
    signedIn: page,
    stdops,
  }) => {
    const taskId = await stdops.task(1, '中文任务', { start: true, constants: { wait_seconds: '60' } })
    await page.goto(`${stdops.server.url}/projects`)
    await expect(page.getByRole('heading', { name: '我的项目' })).toBeVisible()
    await expect(page.locator('html')).toHaveAttribute('lang', 'zh-CN')

    await page.goto(`${stdops.server.url}/projects/${BIZ}/tasks/${taskId}`)
    const header = page.getByRole('region', { name: '任务', exact: true })
    await expect(header.getByRole('heading', { name: `任务 ${taskId}：中文任务` })).toBeVisible()
    // State names stay as the API names them.
    await expect(header.getByText('RUNNING', { exact: true })).toBeVisible()
    await expect(header.getByRole('button', { name: '为什么在等待？' })).toBeVisible()
    await expect(page.getByRole('tab', { name: '事件' })).toHaveAttribute('aria-selected', 'true')
    // The actions work the same in either language.
    await header.getByRole('button', { name: '暂停', exact: true }).click()
    await expect.poll(() => stdops.state(taskId)).toBe('SUSPENDED')

    // The switch, kept for the next visit.
    await page.getByRole('combobox', { name: '语言' }).selectOption('en')
    await expect(page.getByRole('region', { name: 'Task', exact: true })).toBeVisible()
    await expect(page.locator('html')).toHaveAttribute('lang', 'en')
    await page.goto(`${stdops.server.url}/projects`)
    await expect(page.getByRole('heading', { name: 'Your projects' })).toBeVisible()
    await stdops.api.task.operate.mutate({ bk_biz_id: BIZ, task_id: taskId, action: 'revoke' })
  })
})
