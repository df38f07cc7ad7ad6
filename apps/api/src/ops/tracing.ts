import type { NodeSDK } from '@opentelemetry/sdk-node'
import type { SpanProcessor } from '@opentelemetry/sdk-trace-base'

/**
 * Trace export. The server and the engine call the OpenTelemetry API everywhere; it records
 * nothing until this module starts the Node SDK, which `bin/stdops-server.mjs` does before the
 * server loads when OTEL_EXPORTER_OTLP_ENDPOINT is set (OTLP over HTTP, JSON). Instrumented:
 * Fastify (one span per request; no spans for its hooks, none for the health and metrics
 * probes) and `pg` (a span per statement, only inside a traced step: the worker's idle polls
 * make none). The engine adds one span per operation, claim and node execution. The SDK is
 * imported only when tracing starts: a server without it loads none of it.
 */

const PROBES = new Set(['/healthz', '/readyz', '/metrics'])

export interface TracingOptions {
  serviceName: string
  /** The collector's base URL (OTEL_EXPORTER_OTLP_ENDPOINT); spans go to `<endpoint>/v1/traces`. */
  endpoint?: string | undefined
  /** Instead of the OTLP exporter (tests: an in-memory exporter). */
  spanProcessors?: SpanProcessor[]
}

let running: NodeSDK | null = null

export async function startTracing(opts: TracingOptions): Promise<void> {
  if (running) return
  const [{ FastifyOtelInstrumentation }, { OTLPTraceExporter }, { PgInstrumentation }, { NodeSDK }] =
    await Promise.all([
      import('@fastify/otel'),
      import('@opentelemetry/exporter-trace-otlp-http'),
      import('@opentelemetry/instrumentation-pg'),
      import('@opentelemetry/sdk-node'),
    ])
  const sdk = new NodeSDK({
    serviceName: opts.serviceName,
    ...(opts.spanProcessors
      ? { spanProcessors: opts.spanProcessors }
      : {
          traceExporter: new OTLPTraceExporter({ url: new URL('v1/traces', withSlash(opts.endpoint!)).href }),
        }),
    instrumentations: [
      new FastifyOtelInstrumentation({
        registerOnInitialization: true,
        instrumentHooks: false,
        instrumentHandler: false,
        ignorePaths: (route) => PROBES.has(route.url),
      }),
      new PgInstrumentation({ requireParentSpan: true }),
    ],
  })
  sdk.start()
  running = sdk
}

/** Flushes what is buffered and stops exporting (on the way out). */
export async function stopTracing(): Promise<void> {
  const sdk = running
  running = null
  await sdk?.shutdown()
}

const withSlash = (url: string) => (url.endsWith('/') ? url : `${url}/`)
