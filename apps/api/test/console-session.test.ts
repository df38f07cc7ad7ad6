import { createTRPCClient, httpLink, httpSubscriptionLink, splitLink, TRPCClientError } from '@trpc/client'
import { EventSource } from 'eventsource'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import * as admin from '../src/services/admin'
import type { AppRouter } from '../src/trpc/root'
import { sleepTree } from './fixtures'
import { authHeader, esb, type Harness, type Identity, makeIdentity, startHarness } from './harness'

/** The console's requests: the cookie, and the anti-CSRF header unless `csrf` is false. */
function cookieClient(h: Harness, token: string | null, opts: { csrf?: boolean } = {}) {
  const headers: Record<string, string> = {}
  if (token !== null) headers.cookie = `bk_token=${encodeURIComponent(token)}`
  if (opts.csrf !== false) headers['x-stdops-csrf'] = '1'
  return createTRPCClient<AppRouter>({
    links: [
      splitLink({
        condition: (op) => op.type === 'subscription',
        true: httpSubscriptionLink({
          url: `${h.url}/trpc`,
          EventSource,
          eventSourceOptions: {
            fetch: (input, init) => fetch(input, { ...init, headers: { ...init.headers, ...headers } }),
          },
        }),
        false: httpLink({ url: `${h.url}/trpc`, headers }),
      }),
    ],
  })
}

async function refusal(call: Promise<unknown>) {
  const err = await call.then(
    (v) => {
      throw new Error(`expected a refusal, got ${JSON.stringify(v)}`)
    },
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(TRPCClientError)
  const e = err as TRPCClientError<AppRouter>
  return {
    code: e.data?.code,
    legacyCode: (e.data as { legacyCode?: number }).legacyCode,
    message: e.message,
  }
}

/** POSTs a tRPC mutation by hand, as a page of another site could try to. */
async function rawMutation(h: Harness, path: string, input: unknown, headers: Record<string, string>) {
  const res = await fetch(`${h.url}/trpc/${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(input),
  })
  return {
    status: res.status,
    body: (await res.json()) as { error?: { message: string; data: { code: string } } },
  }
}

describe('console sign-in: the bk_token cookie, the built-in console app, CSRF', () => {
  let h: Harness
  let operator: Identity
  let viewer: Identity
  let templateId: number

  beforeAll(async () => {
    h = await startHarness({ worker: false })
    operator = await makeIdentity(h.deps, { role: 'operator' })
    viewer = await makeIdentity(h.deps, { role: 'viewer', projectId: operator.projectId })
    const owner = await makeIdentity(h.deps, { role: 'admin', projectId: operator.projectId })
    const creator = createTRPCClient<AppRouter>({
      links: [httpLink({ url: `${h.url}/trpc`, headers: authHeader(owner) })],
    })
    templateId = (
      await creator.template.create.mutate({
        bk_biz_id: operator.bkBizId,
        name: 'sleeper',
        pipeline_tree: sleepTree().tree,
      })
    ).template_id
  })
  afterAll(async () => {
    await h?.close()
  })

  const newTask = (token: string) =>
    cookieClient(h, token).task.create.mutate({
      bk_biz_id: operator.bkBizId,
      template_id: templateId,
      name: 't',
    })

  it('signIn checks the token and sets bk_token HttpOnly, SameSite=Strict, on path /; me names the user and roles', async () => {
    const res = await fetch(`${h.url}/trpc/session.signIn`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-stdops-csrf': '1' },
      body: JSON.stringify({ token: operator.token }),
    })
    expect(res.status).toBe(200)
    const cookie = res.headers.get('set-cookie') ?? ''
    expect(cookie).toContain(`bk_token=${encodeURIComponent(operator.token)}`)
    expect(cookie).toMatch(/;\s*HttpOnly/i)
    expect(cookie).toMatch(/;\s*SameSite=Strict/i)
    expect(cookie).toMatch(/;\s*Path=\//i)
    expect(cookie).not.toMatch(/Secure/i) // the public URL is http
    const me = await cookieClient(h, operator.token).session.me.query()
    expect(me).toEqual({
      username: operator.username,
      app_code: 'stdops-console',
      roles: [{ project_id: operator.projectId, bk_biz_id: operator.bkBizId, role: 'operator' }],
    })
  })

  it('a wrong token is refused with 1306000 and sets no cookie', async () => {
    const res = await fetch(`${h.url}/trpc/session.signIn`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-stdops-csrf': '1' },
      body: JSON.stringify({ token: 'not-a-token-0123456789' }),
    })
    expect(res.headers.get('set-cookie')).toBeNull()
    const body = (await res.json()) as { error: { message: string; data: { legacyCode: number } } }
    expect(body.error.data.legacyCode).toBe(1306000)
    expect(body.error.message).toBe('User authentication failed, please check if the bk_token is valid')
  })

  it('signOut clears the cookie', async () => {
    const res = await fetch(`${h.url}/trpc/session.signOut`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-stdops-csrf': '1',
        cookie: `bk_token=${operator.token}`,
      },
      body: '{}',
    })
    expect(res.status).toBe(200)
    expect(res.headers.get('set-cookie')).toMatch(/^bk_token=;.*(Max-Age=0|Expires=Thu, 01 Jan 1970)/i)
  })

  it('the cookie is Secure when the public URL is https', async () => {
    const secure = await startHarness({
      worker: false,
      env: { STDOPS_PUBLIC_URL: 'https://sops.example.test' },
    })
    try {
      const user = await makeIdentity(secure.deps, { role: 'viewer' })
      const res = await fetch(`${secure.url}/trpc/session.signIn`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-stdops-csrf': '1' },
        body: JSON.stringify({ token: user.token }),
      })
      expect(res.headers.get('set-cookie')).toMatch(/;\s*Secure/i)
    } finally {
      await secure.close()
    }
  })

  it("a cookie request acts as the console app with exactly the user's roles", async () => {
    const taskId = (await newTask(operator.token)).task_id
    await cookieClient(h, operator.token).task.start.mutate({ bk_biz_id: operator.bkBizId, task_id: taskId })
    const records = await cookieClient(h, viewer.token).task.records.query({
      bk_biz_id: operator.bkBizId,
      task_id: taskId,
    })
    expect(records.map((r) => [r.operate_type, r.operator])).toEqual([
      ['create', operator.username],
      ['start', operator.username],
    ])
    // A viewer reads, and is refused what a viewer may not do, exactly as with app credentials.
    expect(
      await refusal(
        cookieClient(h, viewer.token).task.operate.mutate({
          bk_biz_id: operator.bkBizId,
          task_id: taskId,
          action: 'pause',
        }),
      ),
    ).toMatchObject({
      legacyCode: 3599999,
      message: expect.stringContaining('permission denied: action task_operate'),
    })
    // Another project is not the user's: no role there.
    const other = await makeIdentity(h.deps, { role: 'admin' })
    expect(
      await refusal(cookieClient(h, operator.token).task.list.query({ bk_biz_id: other.bkBizId })),
    ).toMatchObject({
      legacyCode: 3599999,
    })
    await cookieClient(h, operator.token).task.operate.mutate({
      bk_biz_id: operator.bkBizId,
      task_id: taskId,
      action: 'revoke',
    })
  })

  it('a forged cross-site mutation (the cookie without the anti-CSRF header) is refused and changes nothing', async () => {
    const taskId = (await newTask(operator.token)).task_id
    const forged = await rawMutation(
      h,
      'task.start',
      { bk_biz_id: operator.bkBizId, task_id: taskId },
      {
        cookie: `bk_token=${operator.token}`,
        origin: 'https://evil.example',
        referer: 'https://evil.example/x',
      },
    )
    expect(forged.status).toBe(403)
    expect(forged.body.error?.data.code).toBe('FORBIDDEN')
    expect(forged.body.error?.message).toBe(
      'cross-site request refused: a console request that changes something needs the x-stdops-csrf header',
    )
    // The same through the typed client without the header: refused the same way.
    expect(
      await refusal(
        cookieClient(h, operator.token, { csrf: false }).task.start.mutate({
          bk_biz_id: operator.bkBizId,
          task_id: taskId,
        }),
      ),
    ).toMatchObject({ code: 'FORBIDDEN', legacyCode: 1306000 })
    // Nothing happened to the task.
    const status = await cookieClient(h, operator.token).task.status.query({
      bk_biz_id: operator.bkBizId,
      task_id: taskId,
    })
    expect(status.state).toBe('CREATED')
    const records = await cookieClient(h, operator.token).task.records.query({
      bk_biz_id: operator.bkBizId,
      task_id: taskId,
    })
    expect(records.map((r) => r.operate_type)).toEqual(['create'])
    // A sign-in without the header is refused too (no login CSRF), and sets nothing.
    const signIn = await fetch(`${h.url}/trpc/session.signIn`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token: operator.token }),
    })
    expect(signIn.status).toBe(403)
    expect(signIn.headers.get('set-cookie')).toBeNull()
  })

  it('app credentials need no anti-CSRF header: a browser never attaches them by itself', async () => {
    const res = await rawMutation(
      h,
      'task.create',
      { bk_biz_id: operator.bkBizId, template_id: templateId, name: 'by app' },
      authHeader(operator),
    )
    expect(res.status).toBe(200)
  })

  it('no secret opens the console app: it cannot be presented, nor added', async () => {
    const reply = await esb(h.url, 'get_template_list', {
      query: { bk_biz_id: operator.bkBizId },
      headers: {
        'X-Bkapi-Authorization': JSON.stringify({
          bk_app_code: 'stdops-console',
          bk_app_secret: 'anything-at-all-0123',
          bk_token: operator.token,
        }),
      },
    })
    expect(reply.body).toMatchObject({ result: false, code: 1306000 })
    await expect(admin.addApp(h.deps, 'stdops-console', { secret: 'a-secret-of-16-chars' })).rejects.toThrow(
      'stdops-console is the built-in console app',
    )
  })

  it('a revoked token no longer opens a session, and the legacy API ignores the cookie', async () => {
    const user = await makeIdentity(h.deps, { role: 'viewer', projectId: operator.projectId })
    await cookieClient(h, user.token).session.me.query()
    await admin.revokeToken(h.deps, user.token)
    expect(await refusal(cookieClient(h, user.token).session.me.query())).toMatchObject({
      legacyCode: 1306000,
      message: 'User authentication failed, please check if the bk_token is valid',
    })
    const legacy = await esb(h.url, 'get_template_list', {
      query: { bk_biz_id: operator.bkBizId },
      headers: { cookie: `bk_token=${operator.token}` },
    })
    expect(legacy.body).toMatchObject({ result: false, code: 1306000 })
  })

  it('the event stream follows a task with the cookie alone (no header an EventSource cannot send)', async () => {
    const taskId = (await newTask(operator.token)).task_id
    const seen: string[] = []
    await new Promise<void>((resolve, reject) => {
      const sub = cookieClient(h, operator.token, { csrf: false }).task.events.subscribe(
        { bk_biz_id: operator.bkBizId, task_id: taskId },
        {
          onData: ({ data }) => {
            seen.push(data.state)
            if (data.state === 'CREATED') {
              sub.unsubscribe()
              resolve()
            }
          },
          onError: reject,
        },
      )
    })
    expect(seen).toEqual(['CREATED'])
  })
})
