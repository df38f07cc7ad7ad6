import { createTestDatabaseUrl } from '@stdops/db/testing'
import type pino from 'pino'
import type * as Library from '../src/library'
import type { Deps, Runtime, RuntimeTestHooks, Server } from '../src/library'

/**
 * The server the integration tests run: its TypeScript sources, or with TEST_SERVER=dist its
 * compiled bundle (dist/library.mjs, what `pnpm build` writes and production runs). CI runs the
 * suite once that way.
 */
export const fromDist = process.env.TEST_SERVER === 'dist'
const DIST_LIBRARY = '../dist/library.mjs'
export const lib: typeof Library = fromDist
  ? ((await import(/* @vite-ignore */ DIST_LIBRARY)) as typeof Library)
  : await import('../src/library')
const { admin } = lib

/**
 * A real server on a free port over a fresh database (SQLite file, or a new PostgreSQL database
 * when TEST_DATABASE_URL/DATABASE_URL names one), with workers running unless `worker: false`.
 */
export interface Harness {
  url: string
  dbUrl: string
  deps: Deps
  runtime: Runtime
  server: Server
  close(): Promise<void>
}

export async function startHarness(
  opts: {
    worker?: boolean
    env?: Record<string, string>
    hooks?: RuntimeTestHooks
    consoleDir?: string
    /** Where the server's JSON log lines go (default: nowhere, or stdout at TEST_LOG_LEVEL). */
    logTo?: pino.DestinationStream
    /** Reach the fresh database through another URL (a proxy in front of it). */
    viaUrl?: (dbUrl: string) => string
  } = {},
): Promise<Harness> {
  const { url: dbUrl, drop } = await createTestDatabaseUrl()
  const env = lib.readEnv({
    DATABASE_URL: opts.viaUrl ? opts.viaUrl(dbUrl) : dbUrl,
    LOG_LEVEL: 'silent',
    STDOPS_DEMO: '0',
    STDOPS_REVOKE_GRACE_MS: '2000',
    ...opts.env,
  })
  const logger = lib.createLogger(
    {
      LOG_LEVEL: opts.logTo
        ? 'info'
        : lib.readEnv({ LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent' }).LOG_LEVEL,
      LOG_FORMAT: 'json',
    },
    opts.logTo ? { destination: opts.logTo } : {},
  )
  const runtime = await lib.createRuntime(env, logger, opts.hooks)
  const server = lib.createServer(runtime.deps, { consoleDir: opts.consoleDir })
  const address = await server.start({ port: 0, host: '127.0.0.1' })
  if (opts.worker !== false) await runtime.deps.engine.startWorker()
  return {
    url: address,
    dbUrl,
    deps: runtime.deps,
    runtime,
    server,
    close: async () => {
      await server.stop()
      await runtime.close()
      await drop()
    },
  }
}

export interface Identity {
  appCode: string
  appSecret: string
  username: string
  token: string
  projectId: number
  bkBizId: number
}

let seq = 0
/** An app, a user with a token and a role in a new project. */
export async function makeIdentity(
  deps: Deps,
  opts: {
    role?: 'viewer' | 'operator' | 'admin' | null
    bkBizId?: number
    trusted?: boolean
    userSkip?: boolean
    projectId?: number
  } = {},
): Promise<Identity> {
  seq += 1
  const n = `${process.pid}_${seq}_${Math.floor(Math.random() * 1e6)}`
  const appCode = `app_${n}`
  const appSecret = `secret-${n}-0123456789abcdef`
  const username = `user_${n}`
  const token = `token-${n}-0123456789abcdef`
  await admin.addApp(deps, appCode, {
    secret: appSecret,
    trusted: opts.trusted ?? false,
    userSkip: opts.userSkip ?? false,
  })
  await admin.addUser(deps, username, { token })
  let projectId = opts.projectId
  let bkBizId = opts.bkBizId ?? 0
  if (projectId === undefined) {
    bkBizId = opts.bkBizId ?? 100000 + Math.floor(Math.random() * 1e8)
    projectId = (await admin.addProject(deps, `project ${n}`, bkBizId)).id
  } else {
    const p = await deps.db.prisma.project.findUniqueOrThrow({ where: { id: projectId } })
    bkBizId = p.bkBizId
  }
  if (opts.role !== null) await admin.grant(deps, username, projectId, opts.role ?? 'admin')
  return { appCode, appSecret, username, token, projectId, bkBizId }
}

export function authHeader(id: Pick<Identity, 'appCode' | 'appSecret' | 'token'>): Record<string, string> {
  return {
    'X-Bkapi-Authorization': JSON.stringify({
      bk_app_code: id.appCode,
      bk_app_secret: id.appSecret,
      bk_token: id.token,
    }),
  }
}

export interface EnvelopeReply {
  status: number
  headers: Headers
  body: Record<string, unknown> & {
    result: boolean
    code: number
    data: unknown
    message: string
    request_id: string
    trace_id: string
  }
}

/** A legacy call: POST with a JSON body (or a raw string), GET with a query; returns status, headers and the parsed envelope. */
export async function esb(
  base: string,
  api: string,
  opts: {
    method?: 'GET' | 'POST' | 'PUT'
    body?: unknown
    raw?: string
    query?: Record<string, string | number | boolean>
    headers?: Record<string, string>
    prefix?: string
  } = {},
): Promise<EnvelopeReply> {
  const method = opts.method ?? (opts.query ? 'GET' : 'POST')
  const qs = opts.query
    ? `?${new URLSearchParams(Object.entries(opts.query).map(([k, v]): [string, string] => [k, String(v)])).toString()}`
    : ''
  const res = await fetch(`${base}${opts.prefix ?? '/v2/sops'}/${api}/${qs}`, {
    method,
    headers: { 'content-type': 'application/json', ...opts.headers },
    ...(method === 'GET' ? {} : { body: opts.raw ?? JSON.stringify(opts.body ?? {}) }),
  })
  const text = await res.text()
  return { status: res.status, headers: res.headers, body: JSON.parse(text) }
}

/** Polls until `check` returns a value that is not undefined, or fails after `timeoutMs`. */
export async function waitFor<T>(
  check: () => Promise<T | undefined>,
  timeoutMs = 15_000,
  everyMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await check()
    if (v !== undefined) return v
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}
