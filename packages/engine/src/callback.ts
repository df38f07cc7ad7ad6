import type { OutboundClient } from './outbound'
import type { CallbackTarget } from './store'

/** A callback_url is tried at most this many times. */
export const CALLBACK_MAX_ATTEMPTS = 5

/** Delay before try `attempt + 1`: base × 2^(attempt−1), at most a minute. */
export function callbackBackoff(attempt: number, baseMs: number): number {
  return Math.min(60_000, baseMs * 2 ** Math.max(0, attempt - 1))
}

/**
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
 * POSTs the callback through the outbound client (so a callback_url reaches what a
 * bk_http_request may reach, and no more); null on a 2xx answer, else what went wrong.
 */
export async function postCallback(
  http: OutboundClient,
  target: CallbackTarget,
  signal: AbortSignal,
  timeoutMs: number,
): Promise<string | null> {
  const { contentType, body } = callbackRequest(target)
  try {
    const res = await http.request({
      url: target.url,
      method: 'POST',
      headers: [['content-type', contentType]],
      body,
      signal,
      timeoutMs,
      // only the status counts: a receiver's long answer is not read
      readBody: false,
    })
    return res.status >= 200 && res.status < 300 ? null : `callback_url answered status ${res.status}`
  } catch (err) {
    return `callback_url request failed: ${err instanceof Error ? err.message : String(err)}`
  }
}
