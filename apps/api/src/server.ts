import fastifyCookie from '@fastify/cookie'
import { LegacyCode } from '@stdops/core'
import { type FastifyTRPCPluginOptions, fastifyTRPCPlugin } from '@trpc/server/adapters/fastify'
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import { registerConsole } from './console'
import { registerLegacyRoutes, sendEnvelope, sendNotFound } from './legacy/routes'
import type { Deps } from './services/deps'
import { createContextFactory } from './trpc/context'
import { type AppRouter, appRouter } from './trpc/root'

export const BODY_LIMIT = 1024 * 1024

export interface Server {
  app: FastifyInstance
  start(opts: { port: number; host: string }): Promise<string>
  stop(): Promise<void>
}

export interface ServerOptions {
  /** Serve the web console's built files from this directory at `/` (not served when absent). */
  consoleDir?: string | undefined
}

/** Fastify with the legacy ESB routes and tRPC mounted; no side effects until start(). */
export function createServer(deps: Deps, opts: ServerOptions = {}): Server {
  const app = Fastify({
    loggerInstance: deps.logger.child({ component: 'http' }) as FastifyBaseLogger,
    disableRequestLogging: true,
    bodyLimit: BODY_LIMIT,
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 200 },
    trustProxy: false,
  })

  app.register(async (legacy) => {
    // bk-sops reads the raw body as JSON whatever the Content-Type says (esb-api.md §1).
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

  app.register(fastifyTRPCPlugin, {
    prefix: '/trpc',
    trpcOptions: {
      router: appRouter,
      createContext: createContextFactory(deps),
      onError({ error, path }) {
        if (error.code === 'INTERNAL_SERVER_ERROR')
          deps.logger.error({ err: error.cause ?? error, path }, 'internal error in trpc')
      },
    } satisfies FastifyTRPCPluginOptions<AppRouter>['trpcOptions'],
  })

  app.get('/healthz', async () => ({ ok: true }))

  const consoleSite = opts.consoleDir !== undefined ? registerConsole(app, opts.consoleDir) : null

  app.setNotFoundHandler((req, reply) => {
    const m = /^\/(?:api\/c\/compapi\/)?v2\/sops\/?([^/?]*)/.exec(req.url)
    if (m) return sendNotFound(req, reply, m[1] ?? '')
    if (consoleSite?.fallback(req, reply)) return reply
    return reply.status(404).send({ error: 'not found' })
  })

  return {
    app,
    async start({ port, host }) {
      return app.listen({ port, host })
    },
    async stop() {
      // Event streams (task.events) stay open until their task ends: give requests in flight a
      // moment, then cut what is left. Stream clients reconnect and resume from their last id.
      const cut = setTimeout(() => app.server.closeAllConnections(), 1000)
      cut.unref()
      await app.close()
      clearTimeout(cut)
    },
  }
}
