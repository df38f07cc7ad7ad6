import { register } from 'node:module'
import { readEnv } from './env'
import { startTracing } from './ops/tracing'

/**
 * Loaded by bin/stdops-server.mjs before the server: when OTEL_EXPORTER_OTLP_ENDPOINT is set,
 * registers OpenTelemetry's ESM loader hook (so that `pg`, imported by the bundle, can be
 * patched) and starts the SDK. Invalid settings are left for the command line to report.
 */
export async function startTracingFromEnv(): Promise<void> {
  let env: ReturnType<typeof readEnv>
  try {
    env = readEnv()
  } catch {
    return
  }
  if (!env.OTEL_EXPORTER_OTLP_ENDPOINT) return
  register('@opentelemetry/instrumentation/hook.mjs', import.meta.url)
  await startTracing({ serviceName: env.OTEL_SERVICE_NAME, endpoint: env.OTEL_EXPORTER_OTLP_ENDPOINT })
}
