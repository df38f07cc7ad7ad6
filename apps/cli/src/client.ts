import type { AppRouter } from '@stdops/api'
import { createTRPCClient, httpLink, httpSubscriptionLink, splitLink } from '@trpc/client'
import { EventSource } from 'eventsource'
import type { Connection, Credentials } from './config'

/**
 * The headers the server reads credentials from (trpc/context.ts): the app pair, then a
 * `Bearer` bk_token or, for apps allowed to name users, X-Bk-Username.
 */
export function authHeaders(c: Credentials): Record<string, string> {
  const headers: Record<string, string> = { 'x-bk-app-code': c.appCode, 'x-bk-app-secret': c.appSecret }
  if (c.token) headers.authorization = `Bearer ${c.token}`
  else if (c.username) headers['x-bk-username'] = c.username
  return headers
}

/**
 * Queries and mutations over plain HTTP; subscriptions over SSE with the `eventsource` package
 * (Node 20 has no EventSource), whose custom `fetch` adds the same headers. On a reconnect the
 * link sends the last tracked id it saw, so the server resumes the stream where it broke.
 */
export function createClient(conn: Pick<Connection, 'url' | 'credentials'>) {
  const url = `${conn.url}/trpc`
  const headers = authHeaders(conn.credentials)
  return createTRPCClient<AppRouter>({
    links: [
      splitLink({
        condition: (op) => op.type === 'subscription',
        true: httpSubscriptionLink({
          url,
          EventSource,
          eventSourceOptions: {
            fetch: (input, init) => fetch(input, { ...init, headers: { ...init.headers, ...headers } }),
          },
        }),
        false: httpLink({ url, headers }),
      }),
    ],
  })
}

export type Client = ReturnType<typeof createClient>
