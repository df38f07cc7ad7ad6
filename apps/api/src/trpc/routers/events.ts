import { GetTaskStatusParamsSchema } from '@stdops/core'
import { tracked } from '@trpc/server'
import { z } from 'zod'
import * as events from '../../services/events'
import { openStream } from '../../services/streams'
import { authedProcedure } from '../init'

const MAX_SEQ = 2147483647

/**
 * `task.events`: get_task_status's parameters, plus `lastEventId` (the last seq the client
 * saw), which tRPC's SSE link also sends by itself when it reconnects.
 */
export const TaskEventsParamsSchema = GetTaskStatusParamsSchema.extend({
  lastEventId: z
    .union([z.string().regex(/^\d{1,10}$/, 'must be a seq (digits)'), z.number().int().nonnegative()])
    .nullish()
    .transform((v) => (v === null || v === undefined ? 0 : Number(v)))
    // seqs are 32-bit integers in the database: a larger id names no event (and PostgreSQL would refuse it)
    .refine((v) => v <= MAX_SEQ, `must be a seq from 0 to ${MAX_SEQ}`),
})

/**
 * A live stream of the task's events over SSE, each `tracked` with its seq; ends after the final
 * state's event. The caller is checked before the stream opens, so a refusal reaches the client
 * as a typed error that its link does not retry. A stream also ends after STDOPS_STREAM_MAX_MS (the
 * client follows again from its last event), and a user holds at most STDOPS_STREAM_MAX_PER_USER.
 */
export const taskEventsProcedure = authedProcedure
  .input(TaskEventsParamsSchema)
  .subscription(async ({ ctx, input, signal }) => {
    await events.authorizeTaskEvents(
      ctx.deps,
      ctx.caller,
      { bk_biz_id: input.bk_biz_id, scope: input.scope },
      input.task_id,
    )
    // taken before the stream opens, so that a refusal is a typed error the link does not retry
    const stream = openStream(ctx.deps, ctx.caller, signal)
    return (async function* () {
      try {
        for await (const event of events.followTaskEvents(
          ctx.deps,
          input.task_id,
          input.lastEventId,
          stream.signal,
        )) {
          yield tracked(String(event.seq), event)
        }
      } finally {
        stream.release()
      }
    })()
  })
