import { GetTaskStatusParamsSchema } from '@stdops/core'
import { tracked } from '@trpc/server'
import { z } from 'zod'
import * as events from '../../services/events'
import { authedProcedure } from '../init'

/**
 * `task.events`: get_task_status's parameters, plus `lastEventId` (the last seq the client
 * saw), which tRPC's SSE link also sends by itself when it reconnects.
 */
export const TaskEventsParamsSchema = GetTaskStatusParamsSchema.extend({
  lastEventId: z
    .union([z.string().regex(/^\d+$/, 'must be a seq (digits)'), z.number().int().nonnegative()])
    .nullish()
    .transform((v) => (v === null || v === undefined ? 0 : Number(v))),
})

/**
 * A live stream of the task's events over SSE, each `tracked` with its seq; ends after the final
 * state's event. The caller is checked before the stream opens, so a refusal reaches the client
 * as a typed error that its link does not retry.
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
    return (async function* () {
      for await (const event of events.followTaskEvents(ctx.deps, input.task_id, input.lastEventId, signal)) {
        yield tracked(String(event.seq), event)
      }
    })()
  })
