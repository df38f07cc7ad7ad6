/**
 * The server as a library, for a host that runs it in its own process rather than through the
 * command line: the integration tests build their servers from this module's compiled form
 * (dist/library.mjs) when TEST_SERVER=dist, and from the sources otherwise.
 */
export { createLogger, createRuntime, logFormatFor, type Runtime, type RuntimeTestHooks } from './deps'
export { type Env, readEnv } from './env'
export { createReadinessCheck } from './ops/health'
export { startTracing, stopTracing } from './ops/tracing'
export { createServer, type Server } from './server'
export * as admin from './services/admin'
export type { Deps } from './services/deps'
export { RateLimiter } from './services/rate-limit'
