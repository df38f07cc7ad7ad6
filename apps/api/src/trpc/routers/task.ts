import {
  CreateTaskParamsSchema,
  FastCreateTaskParamsSchema,
  GetTaskCountParamsSchema,
  GetTaskDetailParamsSchema,
  GetTaskEffectiveTimeParamsSchema,
  GetTaskListParamsSchema,
  GetTaskOperateRecordParamsSchema,
  GetTaskStatusParamsSchema,
  GetTasksManualInterventionStateParamsSchema,
  GetTasksStatusParamsSchema,
  ModifyConstantsForTaskParamsSchema,
  OperateTaskParamsSchema,
  QueryTaskCountParamsSchema,
  StartTaskParamsSchema,
} from '@stdops/core'
import { refOf as ref } from '../../services/projects'
import * as taskOps from '../../services/task-ops'
import * as taskStats from '../../services/task-stats'
import * as tasks from '../../services/tasks'
import { authedProcedure, router } from '../init'
import { taskEventsProcedure } from './events'
import { taskListProcedures } from './task-lists'

export const taskRouter = router({
  create: authedProcedure
    .input(CreateTaskParamsSchema)
    .mutation(({ ctx, input }) =>
      tasks.createTask(ctx.deps, ctx.caller, ref(input), input, { source: 'app' }),
    ),
  start: authedProcedure
    .input(StartTaskParamsSchema)
    .mutation(({ ctx, input }) => tasks.startTask(ctx.deps, ctx.caller, ref(input), input.task_id, 'app')),
  operate: authedProcedure
    .input(OperateTaskParamsSchema)
    .mutation(({ ctx, input }) =>
      tasks.operateTask(ctx.deps, ctx.caller, ref(input), input.task_id, input.action, 'app'),
    ),
  status: authedProcedure
    .input(GetTaskStatusParamsSchema)
    .query(({ ctx, input }) => tasks.taskStatus(ctx.deps, ctx.caller, ref(input), input.task_id, input)),
  detail: authedProcedure
    .input(GetTaskDetailParamsSchema)
    .query(({ ctx, input }) => tasks.taskDetail(ctx.deps, ctx.caller, ref(input), input.task_id)),
  list: authedProcedure
    .input(GetTaskListParamsSchema)
    .query(({ ctx, input }) => tasks.listTasks(ctx.deps, ctx.caller, ref(input), input)),
  records: authedProcedure
    .input(GetTaskOperateRecordParamsSchema)
    .query(({ ctx, input }) =>
      tasks.operateRecords(ctx.deps, ctx.caller, ref(input), input.task_id, input.node_id),
    ),
  createAndStart: authedProcedure
    .input(CreateTaskParamsSchema)
    .mutation(({ ctx, input }) =>
      tasks.createTask(ctx.deps, ctx.caller, ref(input), input, { start: true, source: 'app' }),
    ),
  fastCreate: authedProcedure
    .input(FastCreateTaskParamsSchema)
    .mutation(({ ctx, input }) => taskOps.fastCreateTask(ctx.deps, ctx.caller, ref(input), input, 'app')),
  modifyConstants: authedProcedure
    .input(ModifyConstantsForTaskParamsSchema)
    .mutation(({ ctx, input }) =>
      taskOps.modifyConstantsForTask(ctx.deps, ctx.caller, ref(input), input.task_id, input, 'app'),
    ),
  statuses: authedProcedure
    .input(GetTasksStatusParamsSchema)
    .query(({ ctx, input }) =>
      tasks.tasksStatus(ctx.deps, ctx.caller, ref(input), input.task_id_list, input),
    ),
  count: authedProcedure
    .input(GetTaskCountParamsSchema)
    .query(({ ctx, input }) => taskOps.countTasks(ctx.deps, ctx.caller, ref(input), input)),
  countBy: authedProcedure
    .input(QueryTaskCountParamsSchema)
    .query(({ ctx, input }) =>
      taskOps.queryTaskCount(ctx.deps, ctx.caller, ref(input), input.group_by, input.conditions),
    ),
  manualIntervention: authedProcedure
    .input(GetTasksManualInterventionStateParamsSchema)
    .query(({ ctx, input }) =>
      taskOps.manualInterventionState(ctx.deps, ctx.caller, ref(input), input.task_id_list),
    ),
  effectiveTime: authedProcedure
    .input(GetTaskEffectiveTimeParamsSchema)
    .query(({ ctx, input }) => taskStats.taskEffectiveTime(ctx.deps, ctx.caller, ref(input), input.task_id)),
  events: taskEventsProcedure,
  ...taskListProcedures,
})
