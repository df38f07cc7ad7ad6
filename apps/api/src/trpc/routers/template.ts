import {
  CreateTemplateParamsSchema,
  CreateTemplateSchemeParamsSchema,
  GetCommonTemplateInfoParamsSchema,
  GetCommonTemplateListParamsSchema,
  GetNodeExecutionRecordParamsSchema,
  GetTemplateInfoParamsSchema,
  GetTemplateListParamsSchema,
  GetTemplateSchemesParamsSchema,
  ImportCommonTemplateParamsSchema,
  ImportProjectTemplateParamsSchema,
  PreviewTaskTreeParamsSchema,
} from '@stdops/core'
import { refOf as ref } from '../../services/projects'
import * as taskStats from '../../services/task-stats'
import * as templateImport from '../../services/template-import'
import * as templates from '../../services/templates'
import { authedProcedure, router } from '../init'

export const templateRouter = router({
  create: authedProcedure
    .input(CreateTemplateParamsSchema)
    .mutation(({ ctx, input }) => templates.createTemplate(ctx.deps, ctx.caller, ref(input), input)),
  list: authedProcedure
    .input(GetTemplateListParamsSchema)
    .query(({ ctx, input }) => templates.listTemplates(ctx.deps, ctx.caller, ref(input), input)),
  get: authedProcedure
    .input(GetTemplateInfoParamsSchema)
    .query(({ ctx, input }) =>
      templates.getTemplate(ctx.deps, ctx.caller, ref(input), input.template_id, input),
    ),
  schemes: authedProcedure
    .input(GetTemplateSchemesParamsSchema)
    .query(({ ctx, input }) =>
      templates.listTemplateSchemes(ctx.deps, ctx.caller, ref(input), input.template_id, input),
    ),
  createScheme: authedProcedure
    .input(CreateTemplateSchemeParamsSchema)
    .mutation(({ ctx, input }) => templates.createTemplateScheme(ctx.deps, ctx.caller, ref(input), input)),
  preview: authedProcedure
    .input(PreviewTaskTreeParamsSchema)
    .query(({ ctx, input }) => templates.previewTaskTree(ctx.deps, ctx.caller, ref(input), input)),
  commonList: authedProcedure
    .input(GetCommonTemplateListParamsSchema)
    .query(({ ctx, input }) => templates.listCommonTemplates(ctx.deps, ctx.caller, input, input)),
  commonGet: authedProcedure
    .input(GetCommonTemplateInfoParamsSchema)
    .query(({ ctx, input }) =>
      templates.getCommonTemplate(ctx.deps, ctx.caller, input, input.template_id, input),
    ),
  nodeExecutions: authedProcedure
    .input(GetNodeExecutionRecordParamsSchema)
    .query(({ ctx, input }) =>
      taskStats.nodeExecutionRecord(
        ctx.deps,
        ctx.caller,
        ref(input),
        input.template_id,
        input.template_node_id,
      ),
    ),
  import: authedProcedure
    .input(ImportProjectTemplateParamsSchema)
    .mutation(({ ctx, input }) =>
      templateImport.importProjectTemplates(ctx.deps, ctx.caller, ref(input), input.template_data),
    ),
  importCommon: authedProcedure
    .input(ImportCommonTemplateParamsSchema)
    .mutation(({ ctx, input }) =>
      templateImport.importCommonTemplates(ctx.deps, ctx.caller, input.template_data),
    ),
})
