import {
  PluginGatewayCreateRunParamsSchema,
  PluginGatewayDetailParamsSchema,
  PluginGatewayListParamsSchema,
  PluginGatewayRunParamsSchema,
  PluginGatewayRunStatusParamsSchema,
} from '@stdops/core'
import * as gateway from '../../services/plugin-gateway'
import { refOf as ref } from '../../services/projects'
import { authedProcedure, router } from '../init'

/** The plugin gateway: components run on a caller's behalf, as one-node tasks. */
export const pluginGatewayRouter = router({
  plugins: authedProcedure
    .input(PluginGatewayListParamsSchema)
    .query(({ ctx }) => gateway.gatewayPlugins(ctx.deps)),
  plugin: authedProcedure
    .input(PluginGatewayDetailParamsSchema)
    .query(({ ctx, input }) => gateway.gatewayPluginDetail(ctx.deps, input.plugin_id, input.version)),
  categories: authedProcedure.input(PluginGatewayListParamsSchema).query(() => gateway.gatewayCategories()),
  createRun: authedProcedure
    .input(PluginGatewayCreateRunParamsSchema)
    .mutation(({ ctx, input }) => gateway.createRun(ctx.deps, ctx.caller, ref(input), input)),
  runStatus: authedProcedure
    .input(PluginGatewayRunStatusParamsSchema)
    .query(({ ctx, input }) => gateway.getRunStatus(ctx.deps, ctx.caller, input.task_tag)),
  run: authedProcedure
    .input(PluginGatewayRunParamsSchema)
    .query(({ ctx, input }) => gateway.getRunDetail(ctx.deps, ctx.caller, input.run_id)),
  cancelRun: authedProcedure
    .input(PluginGatewayRunParamsSchema)
    .mutation(({ ctx, input }) => gateway.cancelRun(ctx.deps, ctx.caller, input.run_id)),
})
