import { createDb, type MigratableDb, redactUrl, sql } from '@stdops/db'
import {
  createEngine,
  createOutboundClient,
  createSecretBox,
  loadComponentModules,
  localTimeZone,
  utcOffsetIn,
} from '@stdops/engine'
import pino, { type Logger } from 'pino'
import pretty from 'pino-pretty'
import apiPackage from '../package.json'
import { newSecret } from './crypto'
import type { Env } from './env'
import { createLifecycle } from './ops/lifecycle'
import { currentLogContext } from './ops/log-context'
import { createMetrics } from './ops/metrics'
import { type Deps, serverUtcOffset } from './services/deps'
import { RateLimiter } from './services/rate-limit'
import { startScheduledTask } from './services/schedules'
import { createStreamLimits } from './services/streams'

export type LogFormat = 'pretty' | 'json'

/** LOG_FORMAT when set; otherwise human-readable on a terminal, JSON lines anywhere else (pipes, files, journald). */
export function logFormatFor(env: Partial<Pick<Env, 'LOG_FORMAT'>>, isTTY: boolean): LogFormat {
  return env.LOG_FORMAT ?? (isTTY ? 'pretty' : 'json')
}

/** The process's logger: stdout unless `destination` says otherwise (tests capture lines with it). */
export function createLogger(
  env: Pick<Env, 'LOG_LEVEL'> & Partial<Pick<Env, 'LOG_FORMAT'>>,
  opts: { isTTY?: boolean; destination?: pino.DestinationStream } = {},
): Logger {
  const isTTY = opts.isTTY ?? process.stdout.isTTY === true
  const options: pino.LoggerOptions = {
    level: env.LOG_LEVEL,
    // Every line written while a request is handled carries its request_id, whoever writes it.
    mixin: () => ({ ...currentLogContext() }),
    // Credentials never reach the logs, whatever logs a request or an error.
    redact: {
      paths: [
        'req.headers.authorization',
        'req.headers["x-bkapi-authorization"]',
        'req.headers["x-bk-app-secret"]',
        '*.bk_app_secret',
        '*.bk_token',
        '*.app_secret',
      ],
      censor: '[redacted]',
    },
  }
  if (logFormatFor(env, isTTY) === 'json')
    return opts.destination ? pino(options, opts.destination) : pino(options)
  // Synchronous, in this thread: a line is on the terminal before the next statement runs.
  return pino(
    options,
    pretty({
      sync: true,
      translateTime: 'SYS:HH:MM:ss.l',
      ignore: 'pid,hostname',
      ...(opts.destination ? { destination: opts.destination } : {}),
    }),
  )
}

/**
 * The HMAC key for secrets and tokens: STDOPS_SECRET_KEY when set (do set it in production, so a
 * copy of the database alone cannot test guesses); otherwise one generated on first start and
 * kept in the settings table, so every process sharing the database agrees on it.
 */
async function secretKeyFor(db: MigratableDb, env: Env): Promise<string> {
  if (env.STDOPS_SECRET_KEY) return env.STDOPS_SECRET_KEY
  const candidate = newSecret(32)
  if (db.provider === 'postgresql') {
    await db.execute(
      sql`INSERT INTO settings (key, value) VALUES (${'secret_key'}, ${candidate}) ON CONFLICT (key) DO NOTHING`,
    )
  } else {
    await db.execute(sql`INSERT OR IGNORE INTO settings (key, value) VALUES (${'secret_key'}, ${candidate})`)
  }
  const [row] = await db.query<{ value: string }>(sql`SELECT value FROM settings WHERE key = ${'secret_key'}`)
  return row!.value
}

/**
 * Without STDOPS_SECRET_KEY the key is generated and kept in the database, beside what it protects
 * (app secret and token hashes, sealed secret constants): a copy of the database is then enough to
 * test guesses and open secrets. A production deployment (NODE_ENV=production) does not start so.
 */
export function checkSecretKey(env: Pick<Env, 'STDOPS_SECRET_KEY' | 'NODE_ENV'>): void {
  if (env.STDOPS_SECRET_KEY || env.NODE_ENV !== 'production') return
  throw new Error(
    'STDOPS_SECRET_KEY is not set: with NODE_ENV=production stdops does not start without it (a long random value, the same in every process; see docs/security.md)',
  )
}

/** The warning a server logs at start when it runs on a key kept in its own database. */
export function warnAboutSecretKey(env: Pick<Env, 'STDOPS_SECRET_KEY'>, logger: Logger): void {
  if (env.STDOPS_SECRET_KEY) return
  logger.warn(
    'STDOPS_SECRET_KEY is not set: using a key generated and kept in the database, so a copy of the database alone can test credential guesses and open secret constants; set it in production (docs/security.md)',
  )
}

/**
 * What tests may change in a runtime: the clock, the schedules' time zone, a fault hook. Production
 * passes none of these; child server processes get them only from `testHooksFromPreload`.
 */
export interface RuntimeTestHooks {
  now?: () => number
  timeZone?: string
  fault?: (point: string) => void
}

const TEST_HOOKS = Symbol.for('stdops.testHooks')

/**
 * The hooks a test preload module (`node --import <test module>`) put on globalThis, else none. The
 * server never sets them itself and no environment variable turns them on: only a process started
 * with a test's own module can have them.
 */
export function testHooksFromPreload(): RuntimeTestHooks {
  const hooks = (globalThis as Record<symbol, unknown>)[TEST_HOOKS]
  return hooks && typeof hooks === 'object' ? (hooks as RuntimeTestHooks) : {}
}

export interface Runtime {
  deps: Deps
  db: MigratableDb
  close(): Promise<void>
}

/** env → database (migrated) → engine → the deps every use case takes. */
export async function createRuntime(
  env: Env,
  logger: Logger = createLogger(env),
  hooks: RuntimeTestHooks = {},
): Promise<Runtime> {
  checkSecretKey(env)
  const db = createDb(env.DATABASE_URL, {
    poolSize: env.STDOPS_DB_POOL_SIZE,
    groupCommit: env.STDOPS_SQLITE_GROUP_COMMIT === '1',
  })
  const applied = await db.migrate()
  if (applied.length > 0)
    logger.info({ applied, database: redactUrl(env.DATABASE_URL) }, 'migrations applied')
  const components = env.STDOPS_COMPONENTS
    ? await loadComponentModules(
        env.STDOPS_COMPONENTS.split(',')
          .map((s) => s.trim())
          .filter(Boolean),
      )
    : []
  const now = hooks.now ?? Date.now
  const timeZone = hooks.timeZone ?? localTimeZone()
  const metrics = createMetrics({
    db,
    build: { version: apiPackage.version },
    snapshotTtlMs: env.STDOPS_METRICS_CACHE_MS,
    onSnapshotError: (err) => logger.warn({ err }, 'metrics: reading the database-backed gauges failed'),
  })
  const outbound = createOutboundClient({
    allow: env.STDOPS_OUTBOUND_ALLOW,
    maxResponseBytes: env.STDOPS_OUTBOUND_MAX_BYTES,
    maxTimeoutMs: env.STDOPS_OUTBOUND_TIMEOUT_MS,
  })
  const secretKey = await secretKeyFor(db, env)
  const secrets = createSecretBox(secretKey)
  const engine = createEngine({
    db,
    outbound,
    secrets,
    telemetry: metrics.telemetry,
    logger: logger.child({ component: 'engine' }),
    components,
    concurrency: env.STDOPS_WORKER_CONCURRENCY,
    ...(env.STDOPS_PROJECT_CONCURRENCY === undefined
      ? {}
      : { projectConcurrency: env.STDOPS_PROJECT_CONCURRENCY }),
    revokeGraceMs: env.STDOPS_REVOKE_GRACE_MS,
    now,
    timeZone,
    // deps is assigned below, before any worker can start
    startScheduledTask: (tx, s) => startScheduledTask(deps, tx, s),
    ...(hooks.fault ? { fault: hooks.fault } : {}),
  })
  const deps: Deps = {
    db,
    engine,
    outbound,
    logger,
    secretKey,
    secrets,
    publicUrl: (env.STDOPS_PUBLIC_URL ?? `http://localhost:${env.PORT}`).replace(/\/$/, ''),
    utcOffsetMinutes: hooks.timeZone ? (at) => utcOffsetIn(timeZone, at) : serverUtcOffset,
    authFailures: new RateLimiter(),
    streams: createStreamLimits({ maxMs: env.STDOPS_STREAM_MAX_MS, perUser: env.STDOPS_STREAM_MAX_PER_USER }),
    now,
    timeZone,
    lifecycle: createLifecycle(),
    metrics,
  }
  return {
    deps,
    db,
    close: async () => {
      // Nothing may use the pool once it closes: first the requests, use cases and event
      // streams in flight (bounded), then the worker's nodes (it drains them itself).
      deps.lifecycle.beginStop()
      if (!(await deps.lifecycle.drained(env.STDOPS_DRAIN_MS)))
        logger.warn({ inFlight: deps.lifecycle.inFlight }, 'stopping with requests still in flight')
      await engine.stop({ drainMs: env.STDOPS_DRAIN_MS })
      await outbound.close()
      await db.close()
    },
  }
}
