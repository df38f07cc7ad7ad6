import { OUTBOUND_DEFAULTS, parseAllowList } from '@stdops/engine'
import { z } from 'zod'

/** The one place that reads process.env. Everything else is handed these values. */
const EnvSchema = z.object({
  DATABASE_URL: z.string().min(1).default('file:./data/stdops.db'),
  PORT: z.coerce.number().int().min(0).max(65535).default(8000),
  HOST: z.string().min(1).default('127.0.0.1'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** `pretty` (human-readable, pino-pretty) or `json` (one JSON object a line); default: pretty on a terminal. */
  LOG_FORMAT: z.enum(['pretty', 'json']).optional(),
  /** A second listener with only /healthz, /readyz and /metrics (a `worker` process has no other). */
  STDOPS_OPS_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  STDOPS_PUBLIC_URL: z.string().url().optional(),
  STDOPS_SECRET_KEY: z.string().min(16).optional(),
  /** `production` in deployments: then STDOPS_SECRET_KEY is required. */
  NODE_ENV: z.string().optional(),
  STDOPS_COMPONENTS: z.string().optional(),
  STDOPS_WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(1000).default(32),
  /** A project's share of a worker's slots; default: the concurrency minus an eighth (28 of 32). */
  STDOPS_PROJECT_CONCURRENCY: z.coerce.number().int().min(1).max(1000).optional(),
  STDOPS_REVOKE_GRACE_MS: z.coerce.number().int().min(0).default(10000),
  STDOPS_DRAIN_MS: z.coerce.number().int().min(0).default(10000),
  STDOPS_DB_POOL_SIZE: z.coerce.number().int().min(1).max(200).default(10),
  /** SQLite: `1` lets transactions queued behind each other share one COMMIT (group commit); `0` turns it off. */
  STDOPS_SQLITE_GROUP_COMMIT: z.enum(['0', '1']).default('1'),
  STDOPS_DEMO: z.enum(['0', '1']).default('1'),
  /** the web console's built files (default: apps/web/dist of this checkout) */
  STDOPS_CONSOLE_DIR: z.string().min(1).optional(),
  /** An OTLP/HTTP collector's base URL: when set, traces are exported there (see docs/operations.md). */
  OTEL_EXPORTER_OTLP_ENDPOINT: z.string().url().optional(),
  /** The service name spans are reported under. */
  OTEL_SERVICE_NAME: z.string().min(1).default('stdops'),
  /**
   * Hosts and addresses/CIDR ranges (comma-separated) that bk_http_request and callback_url may reach
   * although they are not public: loopback, private, link-local… are refused otherwise.
   */
  STDOPS_OUTBOUND_ALLOW: z
    .string()
    .default('')
    .transform((s) =>
      s
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean),
    )
    .superRefine((list, ctx) => {
      try {
        parseAllowList(list)
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message })
      }
    }),
  /** Largest HTTP response body an outbound call reads, in bytes (a larger one fails the call). */
  STDOPS_OUTBOUND_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(256 * 1024 * 1024)
    .default(OUTBOUND_DEFAULTS.maxResponseBytes),
  /** Longest an outbound call may take, redirects included, whatever its own timeout asks for (ms). */
  STDOPS_OUTBOUND_TIMEOUT_MS: z.coerce
    .number()
    .int()
    .min(100)
    .max(3_600_000)
    .default(OUTBOUND_DEFAULTS.maxTimeoutMs),
  /** Longest an event stream (task.events, task.changes) stays open; the client then follows again from its last event. */
  STDOPS_STREAM_MAX_MS: z.coerce.number().int().min(1000).max(86_400_000).default(900_000),
  /** Event streams one user may hold open at once, per process. */
  STDOPS_STREAM_MAX_PER_USER: z.coerce.number().int().min(1).max(10_000).default(20),
  /** How long /metrics reuses what it read from the database (tasks by state, waiting nodes, due jobs). */
  STDOPS_METRICS_CACHE_MS: z.coerce.number().int().min(0).max(600_000).default(2000),
})

export type Env = z.infer<typeof EnvSchema>

export function readEnv(source: NodeJS.ProcessEnv = process.env): Env {
  const parsed = EnvSchema.safeParse(source)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw new Error(`invalid environment: ${issue?.path.join('.')}: ${issue?.message}`)
  }
  return parsed.data
}
