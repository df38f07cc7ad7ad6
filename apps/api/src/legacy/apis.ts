import {
  CreateTaskParamsSchema,
  CreateTemplateParamsSchema,
  CreateTemplateSchemeParamsSchema,
  FastCreateTaskParamsSchema,
  GetCommonTemplateInfoParamsSchema,
  GetCommonTemplateListParamsSchema,
  GetNodeExecutionRecordParamsSchema,
  GetPluginDetailParamsSchema,
  GetPluginListParamsSchema,
  GetTaskCountParamsSchema,
  GetTaskDetailParamsSchema,
  GetTaskEffectiveTimeParamsSchema,
  GetTaskListParamsSchema,
  GetTaskNodeDataParamsSchema,
  GetTaskNodeDetailParamsSchema,
  GetTaskNodeLogParamsSchema,
  GetTaskOperateRecordParamsSchema,
  GetTaskStatusParamsSchema,
  GetTasksManualInterventionStateParamsSchema,
  GetTasksStatusParamsSchema,
  GetTemplateInfoParamsSchema,
  GetTemplateListParamsSchema,
  GetTemplateSchemesParamsSchema,
  GetUserProjectDetailParamsSchema,
  GetUserProjectListParamsSchema,
  ImportCommonTemplateParamsSchema,
  ImportProjectTemplateParamsSchema,
  ModifyConstantsForTaskParamsSchema,
  NodeCallbackParamsSchema,
  OperateNodeParamsSchema,
  OperateTaskParamsSchema,
  PluginGatewayCreateRunParamsSchema,
  PluginGatewayDetailParamsSchema,
  PluginGatewayListParamsSchema,
  PluginGatewayRunParamsSchema,
  PluginGatewayRunStatusParamsSchema,
  PreviewCommonTaskTreeParamsSchema,
  PreviewTaskTreeParamsSchema,
  QueryTaskCountParamsSchema,
  RegisterProjectParamsSchema,
  StartTaskParamsSchema,
} from '@stdops/core'
import type { z } from 'zod'
import type { Caller } from '../services/auth'
import type { Deps } from '../services/deps'
import * as nodes from '../services/nodes'
import * as gateway from '../services/plugin-gateway'
import * as plugins from '../services/plugins'
import { refOf as ref } from '../services/projects'
import * as taskOps from '../services/task-ops'
import * as taskStats from '../services/task-stats'
import * as tasks from '../services/tasks'
import * as templateImport from '../services/template-import'
import * as templates from '../services/templates'
import * as userProjects from '../services/user-projects'
import { SCHEDULE_APIS } from './schedules'

/** What a legacy API returns on success: its `data`, and any keys that sit beside the envelope's six. */
export interface ApiResult {
  data: unknown
  extra?: Record<string, unknown>
}

export interface LegacyApi<S extends z.ZodType = z.ZodType> {
  method: 'GET' | 'POST'
  params: S
  run(deps: Deps, caller: Caller, p: z.output<S>): Promise<ApiResult>
}

const api = <S extends z.ZodType>(a: LegacyApi<S>) => a as unknown as LegacyApi

/** The node APIs (operate_node and node_callback write, the rest read); bk-sops's fields. */
const NODE_APIS: Record<string, LegacyApi> = {
  operate_node: api({
    method: 'POST',
    params: OperateNodeParamsSchema,
    run: async (d, c, p) => {
      await nodes.operateNode(d, c, ref(p), p, 'api')
      return { data: {} }
    },
  }),
  node_callback: api({
    method: 'POST',
    params: NodeCallbackParamsSchema,
    run: async (d, c, p) => {
      await nodes.operateNode(d, c, ref(p), { ...p, action: 'callback', data: p.callback_data ?? {} }, 'api')
      return { data: {} }
    },
  }),
  get_task_node_detail: api({
    method: 'GET',
    params: GetTaskNodeDetailParamsSchema,
    run: async (d, c, p) => ({ data: await nodes.nodeDetail(d, c, ref(p), p.task_id, p.node_id) }),
  }),
  get_task_node_data: api({
    method: 'GET',
    params: GetTaskNodeDataParamsSchema,
    run: async (d, c, p) => ({ data: await nodes.nodeData(d, c, ref(p), p.task_id, p.node_id) }),
  }),
  get_task_node_log: api({
    method: 'GET',
    params: GetTaskNodeLogParamsSchema,
    run: async (d, c, p) => {
      const { log, page } = await nodes.nodeLog(d, c, ref(p), p.task_id, p.node_id, p)
      return { data: log, extra: { page } }
    },
  }),
}

/** The legacy APIs (docs/legacy-api.md lists them), each an adapter: params in, one service call, data out. */
export const LEGACY_APIS: Record<string, LegacyApi> = {
  operate_task: api({
    method: 'POST',
    params: OperateTaskParamsSchema,
    run: async (d, c, p) => {
      await tasks.operateTask(d, c, ref(p), p.task_id, p.action, 'api')
      return { data: {} }
    },
  }),
  start_task: api({
    method: 'POST',
    params: StartTaskParamsSchema,
    run: async (d, c, p) => {
      // bk-sops also sends task_url beside the envelope's keys.
      const data = await tasks.startTask(d, c, ref(p), p.task_id, 'api')
      return { data, extra: { task_url: data.task_url } }
    },
  }),
  create_task: api({
    method: 'POST',
    params: CreateTaskParamsSchema,
    run: async (d, c, p) => ({ data: await tasks.createTask(d, c, ref(p), p, { source: 'api' }) }),
  }),
  create_and_start_task: api({
    method: 'POST',
    params: CreateTaskParamsSchema,
    run: async (d, c, p) => ({
      data: await tasks.createTask(d, c, ref(p), p, { start: true, source: 'api' }),
    }),
  }),
  get_task_status: api({
    method: 'GET',
    params: GetTaskStatusParamsSchema,
    run: async (d, c, p) => ({ data: await tasks.taskStatus(d, c, ref(p), p.task_id, p) }),
  }),
  get_tasks_status: api({
    method: 'POST',
    params: GetTasksStatusParamsSchema,
    run: async (d, c, p) => ({ data: await tasks.tasksStatus(d, c, ref(p), p.task_id_list, p) }),
  }),
  get_task_detail: api({
    method: 'GET',
    params: GetTaskDetailParamsSchema,
    run: async (d, c, p) => ({ data: await tasks.taskDetail(d, c, ref(p), p.task_id) }),
  }),
  get_task_list: api({
    method: 'GET',
    params: GetTaskListParamsSchema,
    run: async (d, c, p) => {
      const { list, count } = await tasks.listTasks(d, c, ref(p), p)
      return { data: list, extra: count === undefined ? {} : { count } }
    },
  }),
  get_task_operate_record: api({
    method: 'GET',
    params: GetTaskOperateRecordParamsSchema,
    run: async (d, c, p) => ({ data: await tasks.operateRecords(d, c, ref(p), p.task_id, p.node_id) }),
  }),
  create_template: api({
    method: 'POST',
    params: CreateTemplateParamsSchema,
    run: async (d, c, p) => ({ data: await templates.createTemplate(d, c, ref(p), p) }),
  }),
  get_template_list: api({
    method: 'GET',
    params: GetTemplateListParamsSchema,
    run: async (d, c, p) => ({ data: await templates.listTemplates(d, c, ref(p), p) }),
  }),
  get_template_info: api({
    method: 'GET',
    params: GetTemplateInfoParamsSchema,
    run: async (d, c, p) => ({ data: await templates.getTemplate(d, c, ref(p), p.template_id, p) }),
  }),
  get_template_schemes: api({
    method: 'GET',
    params: GetTemplateSchemesParamsSchema,
    run: async (d, c, p) => ({ data: await templates.listTemplateSchemes(d, c, ref(p), p.template_id, p) }),
  }),
  create_template_scheme: api({
    method: 'POST',
    params: CreateTemplateSchemeParamsSchema,
    run: async (d, c, p) => ({ data: await templates.createTemplateScheme(d, c, ref(p), p) }),
  }),
  preview_task_tree: api({
    method: 'POST',
    params: PreviewTaskTreeParamsSchema,
    run: async (d, c, p) => ({ data: await templates.previewTaskTree(d, c, ref(p), p) }),
  }),
  preview_common_task_tree: api({
    method: 'POST',
    params: PreviewCommonTaskTreeParamsSchema,
    run: async (d, c, p) => ({
      data: await templates.previewTaskTree(d, c, ref(p), { ...p, template_source: 'common' }),
    }),
  }),
  get_common_template_list: api({
    method: 'GET',
    params: GetCommonTemplateListParamsSchema,
    run: async (d, c, p) => ({ data: await templates.listCommonTemplates(d, c, p, p) }),
  }),
  get_common_template_info: api({
    method: 'GET',
    params: GetCommonTemplateInfoParamsSchema,
    run: async (d, c, p) => ({ data: await templates.getCommonTemplate(d, c, p, p.template_id, p) }),
  }),
  fast_create_task: api({
    method: 'POST',
    params: FastCreateTaskParamsSchema,
    run: async (d, c, p) => ({ data: await taskOps.fastCreateTask(d, c, ref(p), p, 'api') }),
  }),
  modify_constants_for_task: api({
    method: 'POST',
    params: ModifyConstantsForTaskParamsSchema,
    run: async (d, c, p) => ({
      data: await taskOps.modifyConstantsForTask(d, c, ref(p), p.task_id, p, 'api'),
    }),
  }),
  query_task_count: api({
    method: 'POST',
    params: QueryTaskCountParamsSchema,
    run: async (d, c, p) => ({
      data: await taskOps.queryTaskCount(d, c, ref(p), p.group_by, p.conditions),
    }),
  }),
  get_task_count: api({
    method: 'GET',
    params: GetTaskCountParamsSchema,
    run: async (d, c, p) => ({ data: await taskOps.countTasks(d, c, ref(p), p) }),
  }),
  get_tasks_manual_intervention_state: api({
    method: 'POST',
    params: GetTasksManualInterventionStateParamsSchema,
    run: async (d, c, p) => ({ data: await taskOps.manualInterventionState(d, c, ref(p), p.task_id_list) }),
  }),
  get_user_project_list: api({
    method: 'GET',
    params: GetUserProjectListParamsSchema,
    run: async (d, c) => ({ data: await userProjects.userProjects(d, c) }),
  }),
  get_user_project_detail: api({
    method: 'GET',
    params: GetUserProjectDetailParamsSchema,
    run: async (d, c, p) => ({ data: await userProjects.userProjectDetail(d, c, ref(p)) }),
  }),
  get_plugin_list: api({
    method: 'GET',
    params: GetPluginListParamsSchema,
    run: async (d, c, p) => ({ data: await plugins.listPlugins(d, c, p) }),
  }),
  get_plugin_base_info: api({
    method: 'GET',
    params: GetPluginListParamsSchema,
    run: async (d, c, p) => ({ data: await plugins.pluginBaseInfo(d, c, p) }),
  }),
  get_plugin_detail: api({
    method: 'GET',
    params: GetPluginDetailParamsSchema,
    run: async (d, c, p) => ({ data: await plugins.getPlugin(d, c, p, p.code, p.version) }),
  }),
  get_node_execution_record: api({
    method: 'GET',
    params: GetNodeExecutionRecordParamsSchema,
    run: async (d, c, p) => ({
      data: await taskStats.nodeExecutionRecord(d, c, ref(p), p.template_id, p.template_node_id),
    }),
  }),
  get_task_effective_time: api({
    method: 'GET',
    params: GetTaskEffectiveTimeParamsSchema,
    run: async (d, c, p) => ({ data: await taskStats.taskEffectiveTime(d, c, ref(p), p.task_id) }),
  }),
  register_project: api({
    method: 'POST',
    params: RegisterProjectParamsSchema,
    run: async (d, c, p) => ({ data: await taskStats.registerProject(d, c, p) }),
  }),
  import_project_template: api({
    method: 'POST',
    params: ImportProjectTemplateParamsSchema,
    run: async (d, c, p) => ({
      data: await templateImport.importProjectTemplates(d, c, ref(p), p.template_data),
    }),
  }),
  import_common_template: api({
    method: 'POST',
    params: ImportCommonTemplateParamsSchema,
    run: async (d, c, p) => ({ data: await templateImport.importCommonTemplates(d, c, p.template_data) }),
  }),
  plugin_gateway_get_plugin_list: api({
    method: 'GET',
    params: PluginGatewayListParamsSchema,
    run: async (d) => ({ data: gateway.gatewayPlugins(d) }),
  }),
  plugin_gateway_get_plugin_detail: api({
    method: 'GET',
    params: PluginGatewayDetailParamsSchema,
    run: async (d, _c, p) => ({ data: gateway.gatewayPluginDetail(d, p.plugin_id, p.version) }),
  }),
  plugin_gateway_get_categories: api({
    method: 'GET',
    params: PluginGatewayListParamsSchema,
    run: async () => ({ data: gateway.gatewayCategories() }),
  }),
  plugin_gateway_create_run: api({
    method: 'POST',
    params: PluginGatewayCreateRunParamsSchema,
    run: async (d, c, p) => ({ data: await gateway.createRun(d, c, ref(p), p) }),
  }),
  plugin_gateway_get_run_status: api({
    method: 'GET',
    params: PluginGatewayRunStatusParamsSchema,
    run: async (d, c, p) => ({ data: await gateway.getRunStatus(d, c, p.task_tag) }),
  }),
  plugin_gateway_get_run_detail: api({
    method: 'GET',
    params: PluginGatewayRunParamsSchema,
    run: async (d, c, p) => ({ data: await gateway.getRunDetail(d, c, p.run_id) }),
  }),
  plugin_gateway_cancel_run: api({
    method: 'POST',
    params: PluginGatewayRunParamsSchema,
    run: async (d, c, p) => ({ data: await gateway.cancelRun(d, c, p.run_id) }),
  }),
  ...SCHEDULE_APIS,
  ...NODE_APIS,
}
