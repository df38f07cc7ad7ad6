import { NotFoundError, ParamInvalidError, validatePipelineTree } from '@stdops/core'
import type { Caller } from './auth'
import type { Deps } from './deps'
import { authorize, type ProjectRef, resolveProject } from './projects'
import { formatTime } from './time'

export interface CreateTemplateInput {
  name: string
  pipeline_tree: Record<string, unknown>
  description?: string | undefined
}

export async function createTemplate(
  deps: Deps,
  caller: Caller,
  ref: ProjectRef,
  input: CreateTemplateInput,
) {
  const project = await resolveProject(deps, caller, ref)
  authorize(caller, project, 'template_edit')
  const checked = validatePipelineTree(input.pipeline_tree, {
    hasComponent: (c: string) => deps.engine.components.has(c),
  })
  if (!checked.ok) throw new ParamInvalidError(`invalid pipeline_tree: ${checked.message}`)
  const now = BigInt(deps.now())
  const t = await deps.db.prisma.template.create({
    data: {
      projectId: project.id,
      name: input.name,
      description: input.description ?? '',
      pipelineTree: JSON.stringify(input.pipeline_tree),
      creator: caller.username,
      editor: caller.username,
      createdAt: now,
      editedAt: now,
    },
  })
  return { template_id: t.id }
}

export async function listTemplates(deps: Deps, caller: Caller, ref: ProjectRef) {
  const project = await resolveProject(deps, caller, ref)
  authorize(caller, project, 'project_view')
  const rows = await deps.db.prisma.template.findMany({
    where: { projectId: project.id },
    orderBy: { id: 'desc' },
  })
  return rows.map((t) => ({
    id: t.id,
    name: t.name,
    creator: t.creator,
    create_time: formatTime(deps, t.createdAt),
    edit_time: formatTime(deps, t.editedAt),
    editor: t.editor,
    bk_biz_id: project.bkBizId,
    project_id: project.id,
  }))
}

/** A template of the project, or the same answer for one that is elsewhere or nowhere. */
export async function findTemplate(deps: Deps, projectId: number, templateId: number, ref: ProjectRef) {
  const t =
    templateId > 2147483647
      ? null
      : await deps.db.prisma.template.findFirst({ where: { id: templateId, projectId } })
  if (!t) throw new NotFoundError(`template[id=${templateId}] does not exist in project(${ref.bk_biz_id})`)
  return t
}

export async function getTemplate(deps: Deps, caller: Caller, ref: ProjectRef, templateId: number) {
  const project = await resolveProject(deps, caller, ref)
  const t = await findTemplate(deps, project.id, templateId, ref)
  authorize(caller, project, 'project_view')
  return {
    id: t.id,
    name: t.name,
    description: t.description,
    creator: t.creator,
    editor: t.editor,
    create_time: formatTime(deps, t.createdAt),
    edit_time: formatTime(deps, t.editedAt),
    version: String(t.version),
    bk_biz_id: project.bkBizId,
    project_id: project.id,
    pipeline_tree: JSON.parse(t.pipelineTree) as unknown,
  }
}
