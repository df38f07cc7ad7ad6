import {
  GetTaskStatusParamsSchema,
  OperateTasksParamsSchema,
  TaskChangesParamsSchema,
  TaskSearchParamsSchema,
} from '@stdops/core'
import { operateTasks } from '../../services/operate-tasks'
import { refOf as ref } from '../../services/projects'
import { openStream } from '../../services/streams'
import { followTaskChanges, searchTasks } from '../../services/task-search'
import { taskWaits } from '../../services/waiting'
import { authedProcedure } from '../init'

/** The task procedures lists and dashboards need: search with counts, follow a page, operate several, explain a wait. */
export const taskListProcedures = {
  search: authedProcedure
    .input(TaskSearchParamsSchema)
    .query(({ ctx, input }) => searchTasks(ctx.deps, ctx.caller, ref(input), input)),
  changes: authedProcedure.input(TaskChangesParamsSchema).subscription(({ ctx, input, signal }) => {
    const stream = openStream(ctx.deps, ctx.caller, signal)
    return (async function* () {
      try {
        yield* followTaskChanges(ctx.deps, ctx.caller, ref(input), input, stream.signal)
      } finally {
        stream.release()
      }
    })()
  }),
  operateMany: authedProcedure
    .input(OperateTasksParamsSchema)
    .mutation(({ ctx, input }) =>
      operateTasks(ctx.deps, ctx.caller, ref(input), input.task_ids, input.action, 'app'),
    ),
  waits: authedProcedure
    .input(GetTaskStatusParamsSchema)
    .query(({ ctx, input }) => taskWaits(ctx.deps, ctx.caller, ref(input), input.task_id)),
}
