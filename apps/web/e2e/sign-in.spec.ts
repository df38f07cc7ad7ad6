import { expect, test } from './fixtures'

test('sign in with the printed bk_token, see the projects, sign out', async ({ page, stdops }) => {
  // The first start printed where the console is and the token to sign in with.
  expect(stdops.server.banner.consoleUrl).toBe(`${stdops.server.url}/`)
  await page.goto(stdops.server.banner.consoleUrl)
  await expect(page).toHaveURL(/\/sign-in/)
  await page.getByLabel('bk_token').fill('not-the-token-0123456789')
  await page.getByRole('button', { name: 'Sign in' }).click()
  await expect(page.getByRole('alert')).toContainText('1306000')
  await page.getByLabel('bk_token').fill(stdops.server.banner.token)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await expect(page.getByRole('heading', { name: 'Your projects' })).toBeVisible()
  await expect(page.getByRole('link', { name: 'Demo project', exact: true })).toBeVisible()
  const cookie = (await page.context().cookies()).find((c) => c.name === 'bk_token')
  expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict', value: stdops.server.banner.token })
  await page.getByRole('button', { name: 'Sign out' }).click()
  await expect(page).toHaveURL(/\/sign-in/)
  expect((await page.context().cookies()).find((c) => c.name === 'bk_token')).toBeUndefined()
  // Signed out, a page of the console leads back to the sign-in, and then to that page.
  await page.goto(`${stdops.server.url}/projects/2/templates`)
  await expect(page).toHaveURL(/\/sign-in\?redirect=/)
  await page.getByLabel('bk_token').fill(stdops.server.banner.token)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await expect(page).toHaveURL(`${stdops.server.url}/projects/2/templates`)
})

test('the console refuses to be framed', async ({ page, stdops }) => {
  const res = await page.request.get(`${stdops.server.url}/projects`)
  expect(res.headers()['x-frame-options']).toBe('DENY')
  expect(res.headers()['content-security-policy']).toContain("frame-ancestors 'none'")
  // A page of another origin that frames it gets nothing.
  let framed = false
  page.on('framenavigated', (f) => {
    if (f !== page.mainFrame() && f.url().startsWith(stdops.server.url)) framed = true
  })
  await page.route('http://framer.test/', (route) =>
    route.fulfill({
      contentType: 'text/html',
      body: `<iframe src="${stdops.server.url}/projects"></iframe>`,
    }),
  )
  // `goto` waits for the load event, which waits for the frame's own load (or its refusal).
  await page.goto('http://framer.test/')
  const frame = page.frames().find((f) => f !== page.mainFrame())
  expect(frame, 'the framing page has its frame').toBeDefined()
  // Chromium refused the frame: it holds its own error page, never the console.
  expect(frame!.url()).not.toContain(stdops.server.url)
  const text = await frame!.evaluate(() => document.body?.innerText ?? '').catch(() => '')
  expect(text).not.toContain('Sign in')
  expect(framed && text.includes('stdops')).toBe(false)
})
