import type { CallbackTarget } from './store'

/** A callback_url is tried at most this many times. */
export const CALLBACK_MAX_ATTEMPTS = 5

/** Delay before try `attempt + 1`: base × 2^(attempt−1), at most a minute. */
export function callbackBackoff(attempt: number, baseMs: number): number {
  return Math.min(60_000, baseMs * 2 ** Math.max(0, attempt - 1))
}

/** POSTs the body as JSON; null on a 2xx answer, else what went wrong. */
export async function postCallback(
  fetchImpl: typeof fetch,
  target: CallbackTarget,
  signal: AbortSignal,
): Promise<string | null> {
  try {
    const res = await fetchImpl(target.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(target.body),
      signal,
    })
    await res.arrayBuffer().catch(() => undefined)
    return res.ok ? null : `callback_url answered status ${res.status}`
  } catch (err) {
    const cause = (err as { cause?: { message?: string } }).cause?.message
    const message = err instanceof Error ? err.message : String(err)
    return `callback_url request failed: ${message}${cause ? ` (${cause})` : ''}`
  }
}
