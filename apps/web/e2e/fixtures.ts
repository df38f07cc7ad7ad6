import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { test as base, expect, type Page } from '@playwright/test'
import type { AppRouter } from '@stdops/api'
import { createTRPCClient, httpLink, httpSubscriptionLink, splitLink } from '@trpc/client'
import { EventSource } from 'eventsource'
import { ROOT, type RunningServer, startServer } from './server'

/** The demo project the first start creates (bk_biz_id 2). */
export const BIZ = 2

export function apiClient(url: string, headers: Record<string, string>) {
  return createTRPCClient<AppRouter>({
    links: [
      splitLink({
        condition: (op) => op.type === 'subscription',
        true: httpSubscriptionLink({
          url: `${url}/trpc`,
          EventSource,
          eventSourceOptions: {
            fetch: (input, init) => fetch(input, { ...init, headers: { ...init.headers, ...headers } }),
          },
        }),
        false: httpLink({ url: `${url}/trpc`, headers }),
      }),
    ],
  })
}
export type Api = ReturnType<typeof apiClient>

export interface Stdops {
  server: RunningServer
  /** The demo app with the demo user (admin of project 2): seeds and checks through the API. */
  api: Api
  /** Every event of a task so far (the stream read from the start until it has `atLeast` or ends). */
  events(
    taskId: number,
    atLeast?: number,
  ): Promise<Array<{ seq: number; type: string; node_id: string | null; state: string }>>
  /** Creates a template in project 2; returns its id. */
  template(name: string, tree: unknown): Promise<number>
  /** Creates (and optionally starts) a task; returns its id. */
  task(
    templateId: number,
    name: string,
    opts?: { start?: boolean; constants?: Record<string, unknown> },
  ): Promise<number>
  state(taskId: number): Promise<string>
  nodeState(taskId: number, nodeId: string): Promise<string | undefined>
  /** A user with a bk_token and this role in project 2. */
  user(role: 'viewer' | 'operator' | 'admin'): { username: string; token: string }
}

let users = 0

export const test = base.extend<
  { signedIn: Page; shot: (name: string) => Promise<void> },
  { stdops: Stdops }
>({
  stdops: [
    // biome-ignore lint/correctness/noEmptyPattern: Playwright's fixture signature
    async ({}, use) => {
      const server = await startServer()
      const { appCode, appSecret, token } = server.banner
      const api = apiClient(server.url, {
        'x-bk-app-code': appCode,
        'x-bk-app-secret': appSecret,
        authorization: `Bearer ${token}`,
      })
      const stdops: Stdops = {
        server,
        api,
        events: (taskId, atLeast = Number.POSITIVE_INFINITY) =>
          new Promise((resolve, reject) => {
            const got: Array<{ seq: number; type: string; node_id: string | null; state: string }> = []
            const timer = setTimeout(() => {
              sub.unsubscribe()
              resolve(got)
            }, 10_000)
            const sub = api.task.events.subscribe(
              { bk_biz_id: BIZ, task_id: taskId },
              {
                onData: ({ data }) => {
                  got.push({ seq: data.seq, type: data.type, node_id: data.node_id, state: data.state })
                  if (got.length >= atLeast) {
                    clearTimeout(timer)
                    sub.unsubscribe()
                    resolve(got)
                  }
                },
                onComplete: () => {
                  clearTimeout(timer)
                  resolve(got)
                },
                onError: reject,
              },
            )
          }),
        template: async (name, tree) =>
          (
            await api.template.create.mutate({
              bk_biz_id: BIZ,
              name,
              pipeline_tree: tree as Record<string, unknown>,
            })
          ).template_id,
        task: async (templateId, name, opts = {}) => {
          const { task_id } = await api.task.create.mutate({
            bk_biz_id: BIZ,
            template_id: templateId,
            name,
            ...(opts.constants ? { constants: opts.constants } : {}),
          })
          if (opts.start) await api.task.start.mutate({ bk_biz_id: BIZ, task_id })
          return task_id
        },
        state: async (taskId) =>
          String((await api.task.status.query({ bk_biz_id: BIZ, task_id: taskId })).state),
        nodeState: async (taskId, nodeId) => {
          const s = await api.task.status.query({ bk_biz_id: BIZ, task_id: taskId })
          return (s.children as Record<string, { state: string }>)[nodeId]?.state
        },
        user: (role) => {
          users += 1
          const username = `${role}_${users}`
          const token = `e2e-${role}-${users}-${Date.now()}-0123456789`
          server.admin('user', 'add', username, '--token', token)
          server.admin('grant', username, '--project', '1', '--role', role)
          return { username, token }
        },
      }
      await use(stdops)
      await server.close()
    },
    { scope: 'worker', timeout: 240_000 },
  ],

  // Every test: no uncaught error in the page.
  page: async ({ page }, use) => {
    const errors: string[] = []
    page.on('pageerror', (err) => errors.push(err.message))
    await use(page)
    expect(errors, 'uncaught errors in the page').toEqual([])
  },

  /** A page of the console signed in as the demo admin (the cookie set as sign-in sets it). */
  signedIn: async ({ page, stdops }, use) => {
    await page.context().addCookies([
      {
        name: 'bk_token',
        value: stdops.server.banner.token,
        url: stdops.server.url,
        httpOnly: true,
        sameSite: 'Strict',
      },
    ])
    await use(page)
  },

  /** Saves a screenshot of the page (docs/images when STDOPS_SCREENSHOTS is set). */
  shot: async ({ page }, use) => {
    const dir = process.env.STDOPS_SCREENSHOTS
      ? join(ROOT, 'docs/images')
      : join(ROOT, 'apps/web/test-results/screenshots')
    mkdirSync(dir, { recursive: true })
    await use(async (name) => {
      await page.screenshot({ path: join(dir, `${name}.png`) })
    })
  },
})

export { expect }

/** A tree shaped as bk-sops's editor saves it, without drawing coordinates (the console lays it out). */
export function tree(build: (b: import('@stdops/core/testing').TreeBuilder) => void) {
  return import('@stdops/core/testing').then(({ createTreeBuilder }) => {
    const b = createTreeBuilder()
    build(b)
    const { location: _l, line: _line, ...rest } = b.build() as Record<string, unknown>
    return rest
  })
}
