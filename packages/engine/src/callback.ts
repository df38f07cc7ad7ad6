import type { CallbackTarget } from './store'

/** A callback_url is tried at most this many times. */
export const CALLBACK_MAX_ATTEMPTS = 5

/** Delay before try `attempt + 1`: base × 2^(attempt−1), at most a minute. */
export function callbackBackoff(attempt: number, baseMs: number): number {
  return Math.min(60_000, baseMs * 2 ** Math.max(0, attempt - 1))
}

/**
 * The request bk-sops's callback receivers expect: v1 a form (`task_id=1&task_success=True&…`,
 * booleans as Python's requests writes them), v2 JSON with real booleans and the outputs.
 */
export function callbackRequest(target: CallbackTarget): { contentType: string; body: string } {
  if (target.version === 'v2') return { contentType: 'application/json', body: JSON.stringify(target.body) }
  const form = new URLSearchParams()
  for (const [k, v] of Object.entries(target.body)) {
    if (v === undefined) continue
    form.append(
      k,
      typeof v === 'boolean' ? (v ? 'True' : 'False') : typeof v === 'object' ? JSON.stringify(v) : String(v),
    )
  }
  return { contentType: 'application/x-www-form-urlencoded', body: form.toString() }
}

/** POSTs the callback as its version has it; null on a 2xx answer, else what went wrong. */
export async function postCallback(
  fetchImpl: typeof fetch,
  target: CallbackTarget,
  signal: AbortSignal,
): Promise<string | null> {
  try {
    const request = callbackRequest(target)
    const res = await fetchImpl(target.url, {
      method: 'POST',
      headers: { 'content-type': request.contentType },
      body: request.body,
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
