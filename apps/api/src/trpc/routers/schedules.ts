import {
  CreateClockedTaskParamsSchema,
  CreatePeriodicTaskParamsSchema,
  DeleteClockedTaskParamsSchema,
  GetClockedTaskListParamsSchema,
  GetPeriodicTaskFiringsParamsSchema,
  GetPeriodicTaskInfoParamsSchema,
  GetPeriodicTaskListParamsSchema,
  ModifyConstantsForPeriodicTaskParamsSchema,
  ModifyCronForPeriodicTaskParamsSchema,
  SetPeriodicTaskEnabledParamsSchema,
} from '@stdops/core'
import { refOf as ref } from '../../services/projects'
import * as schedules from '../../services/schedules'
import { authedProcedure, router } from '../init'

/** `periodic.*`: the same use cases as the ESB periodic task APIs. */
export const periodicRouter = router({
  create: authedProcedure
    .input(CreatePeriodicTaskParamsSchema)
    .mutation(({ ctx, input }) => schedules.createPeriodicTask(ctx.deps, ctx.caller, ref(input), input)),
  list: authedProcedure
    .input(GetPeriodicTaskListParamsSchema)
    .query(({ ctx, input }) => schedules.listPeriodicTasks(ctx.deps, ctx.caller, ref(input))),
  get: authedProcedure
    .input(GetPeriodicTaskInfoParamsSchema)
    .query(({ ctx, input }) => schedules.getPeriodicTask(ctx.deps, ctx.caller, ref(input), input.task_id)),
  /** The latest firings, newest first (no ESB API: bk-sops has none). */
  firings: authedProcedure
    .input(GetPeriodicTaskFiringsParamsSchema)
    .query(({ ctx, input }) =>
      schedules.listPeriodicFirings(ctx.deps, ctx.caller, ref(input), input.task_id, input.limit),
    ),
  setEnabled: authedProcedure
    .input(SetPeriodicTaskEnabledParamsSchema)
    .mutation(({ ctx, input }) =>
      schedules.setPeriodicTaskEnabled(ctx.deps, ctx.caller, ref(input), input.task_id, input.enabled),
    ),
  setCron: authedProcedure
    .input(ModifyCronForPeriodicTaskParamsSchema)
    .mutation(({ ctx, input }) =>
      schedules.modifyPeriodicCron(ctx.deps, ctx.caller, ref(input), input.task_id, input.cron),
    ),
  setConstants: authedProcedure
    .input(ModifyConstantsForPeriodicTaskParamsSchema)
    .mutation(({ ctx, input }) =>
      schedules.modifyPeriodicConstants(ctx.deps, ctx.caller, ref(input), input.task_id, input.constants),
    ),
})

/** `clocked.*`: create and list as the ESB APIs; delete has no ESB API (bk-sops has none). */
export const clockedRouter = router({
  create: authedProcedure
    .input(CreateClockedTaskParamsSchema)
    .mutation(({ ctx, input }) => schedules.createClockedTask(ctx.deps, ctx.caller, ref(input), input)),
  list: authedProcedure
    .input(GetClockedTaskListParamsSchema)
    .query(({ ctx, input }) => schedules.listClockedTasks(ctx.deps, ctx.caller, ref(input), input)),
  delete: authedProcedure
    .input(DeleteClockedTaskParamsSchema)
    .mutation(({ ctx, input }) =>
      schedules.deleteClockedTask(ctx.deps, ctx.caller, ref(input), input.task_id),
    ),
})
