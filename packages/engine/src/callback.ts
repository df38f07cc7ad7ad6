import type { CallbackTarget } from './store'

/** A callback_url is tried at most this many times. */
export const CALLBACK_MAX_ATTEMPTS = 5

/** Delay before try `attempt + 1`: base × 2^(attempt−1), at most a minute. */
export function callbackBackoff(attempt: number, baseMs: number): number {
  return Math.min(60_000, baseMs * 2 ** Math.max(0, attempt - 1))
}

/**
 * The request bk-sops sends for a callback record. v1: a form-encoded POST whose booleans read
 * `True` / `False` (what Python's requests writes for bk-sops); v2: a JSON POST with real
 * booleans and the task outputs.
 */
export function callbackRequest(target: CallbackTarget): { contentType: string; body: string } {
  const { record } = target
  if (target.version === 'v2') {
    return { contentType: 'application/json', body: JSON.stringify(record) }
  }
  const form = new URLSearchParams({
    task_id: String(record.task_id),
    task_success: record.task_success ? 'True' : 'False',
    task_status: record.task_status,
  })
  return { contentType: 'application/x-www-form-urlencoded', body: form.toString() }
}

/**
 * POSTs the callback; null on a 2xx answer, else what went wrong. The one place callback_url is
 * called: an outbound client with address checks replaces `fetchImpl` here.
 */
export async function postCallback(
  fetchImpl: typeof fetch,
  target: CallbackTarget,
  signal: AbortSignal,
): Promise<string | null> {
  const { contentType, body } = callbackRequest(target)
  try {
    const res = await fetchImpl(target.url, {
      method: 'POST',
      headers: { 'content-type': contentType },
      body,
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
