#!/usr/bin/env node
// The server's command line, from its compiled JavaScript (dist/, written by `pnpm build`; `pnpm
// start` and `pnpm server` build what is missing first). No TypeScript is compiled at run time.
import { existsSync } from 'node:fs'

const entry = new URL('../dist/cli.mjs', import.meta.url)
if (!existsSync(entry)) {
  process.stderr.write('stdops-server: the server is not built (no apps/api/dist): run `pnpm build` first\n')
  process.exit(1)
}
// Stack traces name the TypeScript sources (dist/*.mjs.map).
process.setSourceMapsEnabled(true)
// Trace export (when OTEL_EXPORTER_OTLP_ENDPOINT is set) starts before the server is loaded.
const tracing = await import(new URL('../dist/tracing.mjs', import.meta.url).href)
await tracing.startTracingFromEnv()
await import(entry.href)
