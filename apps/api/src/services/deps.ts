import type { Db } from '@stdops/db'
import type { Engine, OutboundClient, SecretBox } from '@stdops/engine'
import type { Logger } from 'pino'
import type { Lifecycle } from '../ops/lifecycle'
import type { Metrics } from '../ops/metrics'
import type { RateLimiter } from './rate-limit'
import type { StreamLimits } from './streams'

/** What every use case gets: built once in main.ts (or a test) and passed down. */
export interface Deps {
  db: Db
  engine: Engine
  /** The HTTP client for calls made on a task's behalf (the engine's components use the same one). */
  outbound: OutboundClient
  logger: Logger
  /** HMAC key for secrets and tokens. */
  secretKey: string
  /** Seals secret constants with the server key (the engine opens them for the component that uses them). */
  secrets: SecretBox
  /** Base of task_url. */
  publicUrl: string
  /** Minutes east of UTC for legacy time strings; a function because it moves with DST. */
  utcOffsetMinutes: (at: Date) => number
  authFailures: RateLimiter
  /** Event streams: maximum duration, open streams per user. */
  streams: StreamLimits
  now: () => number
  /** IANA time zone of cron schedules (the server's, from `TZ`). */
  timeZone: string
  /** The server's stop: work in flight, and the signal that ends event streams. */
  lifecycle: Lifecycle
  /** This process's Prometheus metrics (GET /metrics). */
  metrics: Metrics
}

export const serverUtcOffset = (at: Date) => -at.getTimezoneOffset()
