import type { AppRouter } from '@stdops/api'
import {
  createTRPCClient,
  httpBatchLink,
  httpSubscriptionLink,
  splitLink,
  TRPCClientError,
} from '@trpc/client'
import type { inferRouterInputs, inferRouterOutputs } from '@trpc/server'
import { createTRPCContext } from '@trpc/tanstack-react-query'

export type Outputs = inferRouterOutputs<AppRouter>
export type Inputs = inferRouterInputs<AppRouter>

/** The header that proves a request comes from the console's own pages (the server's CSRF check). */
export const CSRF_HEADER = 'x-stdops-csrf'

export const { TRPCProvider, useTRPC, useTRPCClient } = createTRPCContext<AppRouter>()

/**
 * The console's tRPC client: queries and mutations batched over HTTP with the anti-CSRF header;
 * subscriptions over the browser's own EventSource (same origin: the bk_token cookie goes along),
 * which reconnects by itself and sends the last event id, so the server resumes where it broke.
 */
export function createClient(base = '') {
  const url = `${base}/trpc`
  return createTRPCClient<AppRouter>({
    links: [
      splitLink({
        condition: (op) => op.type === 'subscription',
        true: httpSubscriptionLink({ url }),
        false: httpBatchLink({ url, headers: { [CSRF_HEADER]: '1' }, maxURLLength: 4000 }),
      }),
    ],
  })
}
export type Client = ReturnType<typeof createClient>

export interface Refusal {
  /** the legacy code the server answered with, null when no answer came */
  code: number | null
  message: string
  /** no answer at all: the network or the server is down */
  network: boolean
  unauthorized: boolean
}

/** What went wrong with a call, as the page shows it: the legacy code and message, or "no answer". */
export function refusalOf(err: unknown): Refusal {
  if (err instanceof TRPCClientError) {
    const data = err.data as { legacyCode?: number; code?: string; httpStatus?: number } | undefined
    if (!data) return { code: null, message: err.message, network: true, unauthorized: false }
    return {
      code: data.legacyCode ?? null,
      message: err.message,
      network: false,
      unauthorized: data.code === 'UNAUTHORIZED',
    }
  }
  return {
    code: null,
    message: err instanceof Error ? err.message : String(err),
    network: true,
    unauthorized: false,
  }
}
