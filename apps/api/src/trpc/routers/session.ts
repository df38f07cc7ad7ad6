import { z } from 'zod'
import { SESSION_COOKIE, sessionCookieOptions, signIn, whoAmI } from '../../services/session'
import { authedProcedure, consoleProcedure, router } from '../init'

/** The console's sign-in: a bk_token checked, then kept in the `bk_token` cookie. */
export const sessionRouter = router({
  signIn: consoleProcedure
    .input(z.object({ token: z.string().min(1, 'must not be empty').max(512) }))
    .mutation(async ({ ctx, input }) => {
      const user = await signIn(ctx.deps, input.token, ctx.clientIp)
      ctx.reply.setCookie(SESSION_COOKIE, input.token, sessionCookieOptions(ctx.deps))
      return user
    }),
  signOut: consoleProcedure.mutation(({ ctx }) => {
    ctx.reply.clearCookie(SESSION_COOKIE, sessionCookieOptions(ctx.deps))
    return { signed_out: true }
  }),
  me: authedProcedure.query(({ ctx }) => whoAmI(ctx.deps, ctx.caller)),
})
