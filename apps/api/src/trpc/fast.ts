import { callTRPCProcedure, getErrorShape, getTRPCErrorFromUnknown, TRPCError } from '@trpc/server'
import type { CreateFastifyContextOptions } from '@trpc/server/adapters/fastify'
import { getHTTPStatusCodeFromError } from '@trpc/server/http'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Context } from './context'
import type { AppRouter } from './root'

/**
 * The mutations callers repeat most (operating and starting tasks), served on tRPC's own URL and
 * wire format by a plain Fastify route, beside tRPC's Fastify adapter that serves everything else.
 * The adapter turns each request into a Fetch API Request and back (undici, an AbortSignal, a body
 * stream), which costs more CPU than the procedure itself; here Fastify's parsed JSON body goes
 * straight to the procedure (`callTRPCProcedure`: the same middlewares, input validation and
 * context), and the reply is what the adapter would write: `{"result":{"data":…}}`, or
 * `{"error":…}` shaped by the router's error formatter with the HTTP status tRPC gives that
 * error; `?batch=1` with one call, an array of one. Anything else on these URLs (another method,
 * several procedures in one batch) is the adapter's, as before.
 */
export const FAST_MUTATIONS = ['task.operate', 'task.start'] as const

export interface FastOptions {
  router: AppRouter
  createContext: (opts: CreateFastifyContextOptions) => Context
  onError: (opts: { error: TRPCError; path: string }) => void
}

const isBatch = (req: FastifyRequest) => {
  const b = (req.query as Record<string, unknown> | undefined)?.batch
  return b === '1' || b === 'true'
}

export function registerFastMutations(app: FastifyInstance, opts: FastOptions) {
  const { router } = opts
  const config = router._def._config

  const send = (
    reply: FastifyReply,
    batch: boolean,
    path: string,
    input: unknown,
    ctx: Context | undefined,
    outcome: { data: unknown } | { error: TRPCError },
  ) => {
    if ('data' in outcome) {
      const body = { result: { data: outcome.data } }
      return reply
        .status(200)
        .type('application/json')
        .send(JSON.stringify(batch ? [body] : body))
    }
    opts.onError({ error: outcome.error, path })
    const body = {
      error: getErrorShape({ config, error: outcome.error, type: 'mutation', path, input, ctx }),
    }
    return reply
      .status(getHTTPStatusCodeFromError(outcome.error))
      .type('application/json')
      .send(JSON.stringify(batch ? [body] : body))
  }

  for (const path of FAST_MUTATIONS) {
    app.post(`/trpc/${path}`, {
      // A body that is not JSON is refused as tRPC refuses it, in its format.
      errorHandler: (err: FastifyError, req, reply) => {
        const error = new TRPCError({
          code: err.statusCode === 415 ? 'UNSUPPORTED_MEDIA_TYPE' : 'PARSE_ERROR',
          message: err.statusCode === 415 ? 'unsupported content type' : 'the body is not valid JSON',
          cause: err,
        })
        return send(reply, isBatch(req), path, undefined, undefined, { error })
      },
      handler: async (req, reply) => {
        const batch = isBatch(req)
        const body = req.body as unknown
        const input =
          batch && body !== null && typeof body === 'object' ? (body as Record<string, unknown>)['0'] : body
        let ctx: Context | undefined
        try {
          ctx = opts.createContext({ req, res: reply, info: undefined as never })
          const data = await callTRPCProcedure({
            router,
            path,
            getRawInput: async () => input,
            ctx,
            type: 'mutation',
            signal: undefined,
            batchIndex: 0,
          })
          return send(reply, batch, path, input, ctx, { data })
        } catch (err) {
          return send(reply, batch, path, input, ctx, { error: getTRPCErrorFromUnknown(err) })
        }
      },
    })
  }
}
