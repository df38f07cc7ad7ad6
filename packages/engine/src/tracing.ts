import { context, type Link, propagation, type Span, SpanStatusCode, trace } from '@opentelemetry/api'

/**
 * Traces: the engine calls the OpenTelemetry API only, which does nothing until the host loads an
 * SDK. One span per step (an operation, a claim, a node's execution), never one per task: a task
 * keeps the traceparent of the request that started it, and its nodes' spans link to that.
 */
export const tracer = () => trace.getTracer('stdops-engine')

/** The W3C traceparent of the active span (the request's, inside a traced request), or null. */
export function activeTraceparent(): string | null {
  const carrier: Record<string, string> = {}
  propagation.inject(context.active(), carrier)
  return carrier.traceparent ?? null
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/

/** A link to the span a stored traceparent names (none when it is absent or malformed). */
export function linksTo(traceparent: string | null | undefined): Link[] {
  const m = traceparent ? TRACEPARENT.exec(traceparent) : null
  if (!m) return []
  const spanContext = {
    traceId: m[1]!,
    spanId: m[2]!,
    traceFlags: Number.parseInt(m[3]!, 16),
    isRemote: true,
  }
  return trace.isSpanContextValid(spanContext) ? [{ context: spanContext }] : []
}

/** Runs `fn` in a new active span, ended when it settles; a throw marks the span an error. */
export async function inSpan<T>(
  name: string,
  opts: { attributes?: Record<string, string | number>; links?: Link[] },
  fn: (span: Span) => Promise<T>,
): Promise<T> {
  return tracer().startActiveSpan(name, opts, async (span) => {
    try {
      return await fn(span)
    } catch (err) {
      span.recordException(err as Error)
      span.setStatus({
        code: SpanStatusCode.ERROR,
        message: err instanceof Error ? err.message : String(err),
      })
      throw err
    } finally {
      span.end()
    }
  })
}
