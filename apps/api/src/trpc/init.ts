import { formatZodError, LegacyCode, StdopsError } from '@stdops/core'
import { initTRPC, TRPCError } from '@trpc/server'
import { ZodError } from 'zod'
import { authenticate } from '../services/auth'
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
      code: CODE_BY_LEGACY[cause.code] ?? 'INTERNAL_SERVER_ERROR',
      message: cause.message,
      cause,
    })
  }
  return result
})

export const router = t.router
export const publicProcedure = t.procedure.use(mapErrors)

/** Authenticated exactly as the legacy API authenticates; `ctx.caller` is the app and user. */
export const authedProcedure = publicProcedure.use(async ({ ctx, next }) => {
  const caller = await authenticate(ctx.deps, ctx.credentials, ctx.clientIp)
  return next({ ctx: { ...ctx, caller } })
})
