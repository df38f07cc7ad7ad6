import { formatZodError, LegacyCode, maskSealed, StdopsError } from '@stdops/core'
import { initTRPC, TRPCError } from '@trpc/server'
import { ZodError } from 'zod'
import { authenticate, CrossSiteRequestError } from '../services/auth'
import type { Context } from './context'

type TrpcCode = ConstructorParameters<typeof TRPCError>[0]['code']

const CODE_BY_LEGACY: Record<number, TrpcCode> = {
  [LegacyCode.ESB_COMMON]: 'UNAUTHORIZED',
  [LegacyCode.RATE_LIMITED]: 'TOO_MANY_REQUESTS',
  [LegacyCode.REQUEST_PARAM_INVALID]: 'BAD_REQUEST',
  [LegacyCode.CONTENT_NOT_EXIST]: 'NOT_FOUND',
  [LegacyCode.INVALID_OPERATION]: 'CONFLICT',
  [LegacyCode.UNKNOWN_ERROR]: 'FORBIDDEN',
}

const t = initTRPC.context<Context>().create({
  /** Every error carries the legacy code and message, the same as the ESB envelope would. */
  errorFormatter({ shape, error }) {
    const cause = error.cause
    if (cause instanceof StdopsError) {
      return {
        ...shape,
        message: cause.message,
        data: { ...shape.data, stack: undefined, legacyCode: cause.code },
      }
    }
    if (cause instanceof ZodError) {
      return {
        ...shape,
        message: formatZodError(cause),
        data: { ...shape.data, stack: undefined, legacyCode: LegacyCode.REQUEST_PARAM_INVALID },
      }
    }
    const internal = error.code === 'INTERNAL_SERVER_ERROR'
    return {
      ...shape,
      message: internal ? 'internal error' : shape.message,
      data: {
        ...shape.data,
        stack: undefined,
        legacyCode: internal ? LegacyCode.UNKNOWN_ERROR : LegacyCode.REQUEST_PARAM_INVALID,
      },
    }
  },
})

/** Domain errors become typed tRPC errors once, here. */
const mapErrors = t.middleware(async ({ next }) => {
  const result = await next()
  if (!result.ok && result.error.cause instanceof StdopsError) {
    const cause = result.error.cause
    throw new TRPCError({
      code: cause.httpStatus === 403 ? 'FORBIDDEN' : (CODE_BY_LEGACY[cause.code] ?? 'INTERNAL_SERVER_ERROR'),
      message: cause.message,
      cause,
    })
  }
  return result
})

/**
 * Secret constants are stored sealed: no reply shows them otherwise than masked. (Subscriptions
 * yield their items later: the event stream masks its events itself.)
 */
const maskSecrets = t.middleware(async ({ type, next }) => {
  const result = await next()
  if (result.ok && type !== 'subscription') return { ...result, data: maskSealed(result.data) }
  return result
})

export const router = t.router
export const publicProcedure = t.procedure.use(mapErrors).use(maskSecrets)

/**
 * Mutations that a browser sends by itself with the console's cookie (sign-in, sign-out, and
 * anything authenticated by the cookie) must carry the anti-CSRF header; app credentials, which a
 * browser never attaches on its own, need none.
 */
export const consoleProcedure = publicProcedure.use(({ ctx, type, next }) => {
  if (type === 'mutation' && !ctx.csrfHeader) throw new CrossSiteRequestError()
  return next()
})

/**
 * Authenticated exactly as the legacy API authenticates (or, with no app named, by the console's
 * cookie); `ctx.caller` is the app and user.
 */
export const authedProcedure = publicProcedure.use(async ({ ctx, type, next }) => {
  const byCookie = ctx.credentials.appCode === undefined && ctx.credentials.consoleToken !== undefined
  if (byCookie && type === 'mutation' && !ctx.csrfHeader) throw new CrossSiteRequestError()
  const caller = await authenticate(ctx.deps, ctx.credentials, ctx.clientIp)
  return next({ ctx: { ...ctx, caller } })
})
