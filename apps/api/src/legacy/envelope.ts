import { trace } from '@opentelemetry/api'
import { randomHex } from '../crypto'

export interface Envelope {
  result: boolean
  code: number
  data: unknown
  message: string
  request_id: string
  trace_id: string
  [extra: string]: unknown
}

const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/
const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/

/** The caller's X-Request-Id when it is well-formed, else 32 new hex characters. */
export function requestIdFrom(header: unknown): string {
  return typeof header === 'string' && REQUEST_ID.test(header) ? header : randomHex(16)
}

/**
 * The request span's trace id when traces are recorded (it continues the caller's traceparent),
 * else the caller's W3C traceparent's, else new.
 */
export function traceIdFrom(traceparent: unknown): string {
  const span = trace.getActiveSpan()?.spanContext()
  if (span && trace.isSpanContextValid(span)) return span.traceId
  if (typeof traceparent === 'string') {
    const m = TRACEPARENT.exec(traceparent.trim())
    if (m && m[1] !== '00000000000000000000000000000000') return m[1]!
  }
  return randomHex(16)
}
