import {
  CreateTemplateParamsSchema,
  GetTemplateInfoParamsSchema,
  GetTemplateListParamsSchema,
} from '@stdops/core'
import { refOf as ref } from '../../services/projects'
import * as templates from '../../services/templates'
import { authedProcedure, router } from '../init'

export const templateRouter = router({
  create: authedProcedure
    .input(CreateTemplateParamsSchema)
    .mutation(({ ctx, input }) => templates.createTemplate(ctx.deps, ctx.caller, ref(input), input)),
  list: authedProcedure
    .input(GetTemplateListParamsSchema)
    .query(({ ctx, input }) => templates.listTemplates(ctx.deps, ctx.caller, ref(input))),
  get: authedProcedure
    .input(GetTemplateInfoParamsSchema)
    .query(({ ctx, input }) => templates.getTemplate(ctx.deps, ctx.caller, ref(input), input.template_id)),
})
