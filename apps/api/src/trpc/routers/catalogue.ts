import {
  GetPluginDetailParamsSchema,
  GetPluginListParamsSchema,
  GetUserProjectDetailParamsSchema,
  GetUserProjectListParamsSchema,
  RegisterProjectParamsSchema,
} from '@stdops/core'
import * as plugins from '../../services/plugins'
import { refOf as ref } from '../../services/projects'
import * as taskStats from '../../services/task-stats'
import * as userProjects from '../../services/user-projects'
import { authedProcedure, router } from '../init'

/** The caller's projects (get_user_project_list / _detail). */
export const projectRouter = router({
  list: authedProcedure
    .input(GetUserProjectListParamsSchema)
    .query(({ ctx }) => userProjects.userProjects(ctx.deps, ctx.caller)),
  detail: authedProcedure
    .input(GetUserProjectDetailParamsSchema)
    .query(({ ctx, input }) => userProjects.userProjectDetail(ctx.deps, ctx.caller, ref(input))),
  register: authedProcedure
    .input(RegisterProjectParamsSchema)
    .mutation(({ ctx, input }) => taskStats.registerProject(ctx.deps, ctx.caller, input)),
})

/** The registered components (get_plugin_list / get_plugin_detail). */
export const pluginRouter = router({
  list: authedProcedure
    .input(GetPluginListParamsSchema)
    .query(({ ctx, input }) => plugins.listPlugins(ctx.deps, ctx.caller, input)),
  baseInfo: authedProcedure
    .input(GetPluginListParamsSchema)
    .query(({ ctx, input }) => plugins.pluginBaseInfo(ctx.deps, ctx.caller, input)),
  detail: authedProcedure
    .input(GetPluginDetailParamsSchema)
    .query(({ ctx, input }) => plugins.getPlugin(ctx.deps, ctx.caller, input, input.code, input.version)),
})
