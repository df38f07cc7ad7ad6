import fastifyCookie from '@fastify/cookie'
import { LegacyCode } from '@stdops/core'
import type { TRPCError } from '@trpc/server'
import { type FastifyTRPCPluginOptions, fastifyTRPCPlugin } from '@trpc/server/adapters/fastify'
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyRequest } from 'fastify'
import { registerConsole } from './console'
import { LEGACY_APIS } from './legacy/apis'
import { requestIdFrom } from './legacy/envelope'
import { registerLegacyRoutes, sendEnvelope, sendNotFound } from './legacy/routes'
import { createReadinessCheck } from './ops/health'
import { runWithLogContext } from './ops/log-context'
import { registerOpsRoutes } from './ops/routes'
import type { Deps } from './services/deps'
import { createContextFactory } from './trpc/context'
import { registerFastMutations } from './trpc/fast'
import { type AppRouter, appRouter } from './trpc/root'

export const BODY_LIMIT = 1024 * 1024

export interface Server {
  app: FastifyInstance
  start(opts: { port: number; host: string }): Promise<string>
  /**
   * Stops accepting, ends the event streams, and waits for the requests in flight (their
   * connections are cut after `drainMs` at the latest, and their handlers still waited for).
   */
  stop(opts?: { drainMs?: number }): Promise<void>
}

export interface ServerOptions {
  /** Serve the web console's built files from this directory at `/` (not served when absent). */
  consoleDir?: string | undefined
}

function listenerOf(app: FastifyInstance, deps: Deps): Server {
  return {
    app,
    async start({ port, host }) {
      return app.listen({ port, host })
    },
    async stop(opts = {}) {
      const drainMs = opts.drainMs ?? 10_000
      deps.lifecycle.beginStop()
      // A backstop only: event streams end on their own once the stop begins, and requests
      // finish; a connection still open after drainMs is cut.
      const cut = setTimeout(() => app.server.closeAllConnections(), drainMs)
      cut.unref()
      await app.close()
      clearTimeout(cut)
      await deps.lifecycle.drained(drainMs)
    },
  }
}

/**
 * Every route handler runs with its request's log context (request_id on every line it causes)
 * and counts as in flight until it settles, so a stop waits for it before the pool closes. Added
 * before any route is registered; plugins registered later inherit it.
 */
function instrumentRoutes(app: FastifyInstance, deps: Deps) {
  app.addHook('onRoute', (route) => {
    const handler = route.handler
    route.handler = function (this: FastifyInstance, req, reply) {
      reply.header('x-request-id', req.id)
      const done = deps.lifecycle.enter()
      let result: unknown
      try {
        result = runWithLogContext({ request_id: req.id }, () => handler.call(this, req, reply))
      } catch (err) {
        done()
        throw err
      }
      if (result instanceof Promise) return result.finally(done)
      reply.raw.once('close', done)
      return result
    } as typeof handler
  })
}

const TRPC_PROCEDURES: ReadonlySet<string> = new Set(Object.keys(appRouter._def.procedures))

/**
 * The route a request matched, as a metric label from a fixed set: the route template, with the
 * legacy API's name or the tRPC procedure's in place of its parameter when it is a known one;
 * `unmatched` for requests no route took (404s), so that no caller-chosen text becomes a label.
 */
function routeLabel(req: FastifyRequest): string {
  const template = req.routeOptions.url
  if (template === undefined) return 'unmatched'
  const params = req.params as Record<string, string> | undefined
  if (template.endsWith('/:api') && params?.api !== undefined && Object.hasOwn(LEGACY_APIS, params.api))
    return template.replace(':api', params.api)
  if (template.endsWith('/:path') && params?.path !== undefined && TRPC_PROCEDURES.has(params.path))
    return template.replace(':path', params.path)
  return template
}

function fastifyFor(deps: Deps): FastifyInstance {
  const app = Fastify({
    loggerInstance: deps.logger.child({ component: 'http' }) as FastifyBaseLogger,
    disableRequestLogging: true,
    bodyLimit: BODY_LIMIT,
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 200 },
    trustProxy: false,
    // The legacy envelope's request id: the caller's X-Request-Id when well-formed, else new.
    genReqId: (req) => requestIdFrom(req.headers['x-request-id']),
    requestIdLogLabel: 'request_id',
  })
  instrumentRoutes(app, deps)
  app.addHook('onResponse', async (req, reply) => {
    deps.metrics.httpRequest({
      method: req.method,
      route: routeLabel(req),
      status: reply.statusCode,
      seconds: reply.elapsedTime / 1000,
    })
  })
  registerOpsRoutes(app, { readiness: createReadinessCheck(deps), metrics: () => deps.metrics.render() })
  return app
}

/** Only the operations endpoints (/healthz, /readyz): a worker process's listener. */
export function createOpsServer(deps: Deps): Server {
  return listenerOf(fastifyFor(deps), deps)
}

/** Fastify with the legacy ESB routes and tRPC mounted; no side effects until start(). */
export function createServer(deps: Deps, opts: ServerOptions = {}): Server {
  const app = fastifyFor(deps)

  app.register(async (legacy) => {
    // bk-sops reads the raw body as JSON whatever the Content-Type says.
    legacy.removeAllContentTypeParsers()
    legacy.addContentTypeParser('*', { parseAs: 'string', bodyLimit: BODY_LIMIT }, (_req, body, done) =>
      done(null, body),
    )
    legacy.setErrorHandler((err: { statusCode?: number; code?: string }, req, reply) => {
      if (err.statusCode === 413 || err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
        return sendEnvelope(
          req,
          reply,
          {
            result: false,
            code: LegacyCode.REQUEST_PARAM_INVALID,
            data: null,
            message: 'request body is larger than 1 MiB',
          },
          413,
        )
      }
      if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
        return sendEnvelope(req, reply, {
          result: false,
          code: LegacyCode.REQUEST_PARAM_INVALID,
          data: null,
          message: 'invalid param format',
        })
      }
      deps.logger.error({ err }, 'unhandled error in legacy route')
      return sendEnvelope(
        req,
        reply,
        {
          result: false,
          code: LegacyCode.UNKNOWN_ERROR,
          data: null,
          message: 'internal error, see request_id',
        },
        200,
      )
    })
    registerLegacyRoutes(legacy, deps)
  })

  // Parses the console's bk_token cookie for tRPC's context; sets it on sign-in.
  app.register(fastifyCookie)

  const createContext = createContextFactory(deps)
  const onTrpcError = ({ error, path }: { error: TRPCError; path: string | undefined }) => {
    if (error.code === 'INTERNAL_SERVER_ERROR')
      deps.logger.error({ err: error.cause ?? error, path }, 'internal error in trpc')
  }
  // The hot mutations on a plain route of their own (trpc/fast.ts), the rest through tRPC's adapter.
  app.register(async (fast) => {
    registerFastMutations(fast, { router: appRouter, createContext, onError: onTrpcError })
  })
  app.register(fastifyTRPCPlugin, {
    prefix: '/trpc',
    trpcOptions: {
      router: appRouter,
      createContext,
      onError: onTrpcError,
    } satisfies FastifyTRPCPluginOptions<AppRouter>['trpcOptions'],
  })

  const consoleSite = opts.consoleDir !== undefined ? registerConsole(app, opts.consoleDir) : null

  app.setNotFoundHandler((req, reply) => {
    const m = /^\/(?:api\/c\/compapi\/)?v2\/sops\/?([^/?]*)/.exec(req.url)
    if (m) return sendNotFound(req, reply, m[1] ?? '')
    if (consoleSite?.fallback(req, reply)) return reply
    return reply.status(404).send({ error: 'not found' })
  })

  return listenerOf(app, deps)
}
