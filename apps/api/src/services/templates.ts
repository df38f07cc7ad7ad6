import {
  excludeTaskNodes,
  exclusionForSchemes,
  NotFoundError,
  ParamInvalidError,
  type TemplateSource,
  validatePipelineTree,
} from '@stdops/core'
import { sealTreeSecrets } from '@stdops/engine'
import type { Caller } from './auth'
import type { Deps } from './deps'
import { authorize, type Project, type ProjectRef, resolveProject } from './projects'
import { formatTime, zoneDeps } from './time'

export interface CreateTemplateInput {
  name?: string | undefined
  pipeline_tree: Record<string, unknown>
  description?: string | undefined
  category?: string | undefined
}

/** A project's template or a common one, as the use cases read it. */
export interface TemplateRecord {
  source: TemplateSource
  id: number
  name: string
  description: string
  category: string
  pipelineTree: string
  creator: string
  editor: string
  version: number
  createdAt: bigint
  editedAt: bigint
}

const MAX_INT = 2147483647

/** A project named optionally (common templates belong to none). */
export interface OptionalProjectRef {
  bk_biz_id?: number | undefined
  scope?: ProjectRef['scope'] | undefined
}

/** `new<YYYYmmddHHMMSS>` in the server's zone: bk-sops's name for a template sent without one. */
function defaultTemplateName(deps: Pick<Deps, 'utcOffsetMinutes'>, ms: number): string {
  const d = new Date(ms)
  const local = new Date(ms + deps.utcOffsetMinutes(d) * 60_000)
  const p = (n: number) => String(n).padStart(2, '0')
  return `new${local.getUTCFullYear()}${p(local.getUTCMonth() + 1)}${p(local.getUTCDate())}${p(local.getUTCHours())}${p(local.getUTCMinutes())}${p(local.getUTCSeconds())}`
}

/** Validates a tree for a template (components registered, constants resolvable). */
export function checkTemplateTree(deps: Pick<Deps, 'engine'>, tree: Record<string, unknown>) {
  const checked = validatePipelineTree(tree, { hasComponent: (c: string) => deps.engine.components.has(c) })
  if (!checked.ok) throw new ParamInvalidError(`invalid pipeline_tree: ${checked.message}`)
}

export async function createTemplate(
  deps: Deps,
  caller: Caller,
  ref: ProjectRef,
  input: CreateTemplateInput,
) {
  const project = await resolveProject(deps, caller, ref)
  authorize(caller, project, 'template_edit')
  checkTemplateTree(deps, input.pipeline_tree)
  const nowMs = deps.now()
  const now = BigInt(nowMs)
  const t = await deps.db.prisma.template.create({
    data: {
      projectId: project.id,
      name: input.name ?? defaultTemplateName(deps, nowMs),
      description: input.description ?? '',
      category: input.category ?? 'Other',
      // secret constants are stored sealed with the server key
      pipelineTree: JSON.stringify(sealTreeSecrets(deps.secrets, input.pipeline_tree)),
      creator: caller.username,
      editor: caller.username,
      createdAt: now,
      editedAt: now,
    },
  })
  return { template_id: t.id, template_name: t.name, pipeline_template_id: String(t.id) }
}

const fromProject = (t: {
  id: number
  name: string
  description: string
  category: string
  pipelineTree: string
  creator: string
  editor: string
  version: number
  createdAt: bigint
  editedAt: bigint
}): TemplateRecord => ({ source: 'project', ...t })

const fromCommon = (t: Omit<TemplateRecord, 'source'>): TemplateRecord => ({ ...t, source: 'common' })

/**
 * A template of the project (or a common one), or the same answer for one that is elsewhere or
 * nowhere.
 */
export async function findTemplateOf(
  deps: Deps,
  projectId: number,
  source: TemplateSource,
  templateId: number,
  ref: Pick<ProjectRef, 'bk_biz_id'>,
): Promise<TemplateRecord> {
  if (source === 'common') return findCommonTemplate(deps, templateId)
  const t =
    templateId > MAX_INT
      ? null
      : await deps.db.prisma.template.findFirst({ where: { id: templateId, projectId } })
  if (!t) throw new NotFoundError(`template[id=${templateId}] does not exist in project(${ref.bk_biz_id})`)
  return fromProject(t)
}

/** A project's template (kept for callers that know only project templates). */
export async function findTemplate(deps: Deps, projectId: number, templateId: number, ref: ProjectRef) {
  return findTemplateOf(deps, projectId, 'project', templateId, ref)
}

export async function findCommonTemplate(deps: Deps, templateId: number): Promise<TemplateRecord> {
  const t =
    templateId > MAX_INT
      ? null
      : await deps.db.prisma.commonTemplate.findUnique({ where: { id: templateId } })
  if (!t) throw new NotFoundError(`common template[id=${templateId}] does not exist`)
  return fromCommon(t)
}

/** The fields every template item carries, as bk-sops's get_template_list has them. */
function templateItem(deps: Pick<Deps, 'utcOffsetMinutes'>, project: Project | null, t: TemplateRecord) {
  return {
    id: t.id,
    name: t.name,
    category: t.category,
    description: t.description,
    creator: t.creator,
    create_time: formatTime(deps, t.createdAt),
    editor: t.editor,
    edit_time: formatTime(deps, t.editedAt),
    template_source: t.source,
    bk_biz_id: project ? String(project.bkBizId) : '',
    bk_biz_name: project?.name ?? '',
    project_id: project?.id ?? null,
    project_name: project?.name ?? '',
  }
}

export interface TemplateListFilter {
  template_source: TemplateSource
  id_in?: number[] | undefined
  name_keyword?: string | undefined
  include_constants?: boolean | undefined
  expected_timezone?: string | undefined
}

/** The name contains `keyword`, ignoring case (a literal substring). */
const nameContains = (name: string, keyword: string) => name.toLowerCase().includes(keyword.toLowerCase())

export async function listTemplates(
  deps: Deps,
  caller: Caller,
  ref: ProjectRef,
  f: TemplateListFilter = { template_source: 'project' },
) {
  const shown = zoneDeps(deps, f.expected_timezone)
  const project = await resolveProject(deps, caller, ref)
  authorize(caller, project, 'project_view')
  const ids = f.id_in?.filter((id) => id <= MAX_INT)
  const where = ids ? { id: { in: ids } } : {}
  const rows =
    f.template_source === 'common'
      ? (await deps.db.prisma.commonTemplate.findMany({ where, orderBy: { id: 'desc' } })).map(fromCommon)
      : (
          await deps.db.prisma.template.findMany({
            where: { projectId: project.id, ...where },
            orderBy: { id: 'desc' },
          })
        ).map(fromProject)
  return rows
    .filter((t) => !f.name_keyword || nameContains(t.name, f.name_keyword))
    .map((t) => ({
      ...templateItem(shown, project, t),
      ...(f.include_constants ? { constants: treeOf(t).constants ?? {} } : {}),
    }))
}

const treeOf = (t: TemplateRecord) => JSON.parse(t.pipelineTree) as Record<string, unknown>

export async function getTemplate(
  deps: Deps,
  caller: Caller,
  ref: ProjectRef,
  templateId: number,
  opts: { template_source?: TemplateSource; include_constants?: boolean | undefined } = {},
) {
  const project = await resolveProject(deps, caller, ref)
  const t = await findTemplateOf(deps, project.id, opts.template_source ?? 'project', templateId, ref)
  authorize(caller, project, 'project_view')
  const tree = treeOf(t)
  return {
    ...templateItem(deps, project, t),
    version: String(t.version),
    pipeline_tree: tree,
    ...(opts.include_constants ? { constants: tree.constants ?? {} } : {}),
  }
}

// ---- common templates -----------------------------------------------------------------------

/** Adds a common template (the admin command): shared by every project. */
export async function addCommonTemplate(
  deps: Pick<Deps, 'db' | 'engine' | 'now' | 'secrets'>,
  input: { name: string; pipeline_tree: unknown; description?: string; category?: string; creator?: string },
) {
  if (input.name.trim().length === 0 || input.name.length > 100)
    throw new ParamInvalidError('--name must be 1-100 characters')
  const tree = input.pipeline_tree
  if (!tree || typeof tree !== 'object' || Array.isArray(tree))
    throw new ParamInvalidError('the file must hold a pipeline tree (a JSON object)')
  checkTemplateTree(deps, tree as Record<string, unknown>)
  const now = BigInt(deps.now())
  const t = await deps.db.prisma.commonTemplate.create({
    data: {
      name: input.name,
      description: input.description ?? '',
      category: input.category ?? 'Other',
      pipelineTree: JSON.stringify(sealTreeSecrets(deps.secrets, tree as Record<string, unknown>)),
      creator: input.creator ?? 'admin',
      editor: input.creator ?? 'admin',
      createdAt: now,
      editedAt: now,
    },
  })
  return { id: t.id, name: t.name }
}

/**
 * The project a common-template read names, when it names one: `bk_biz_id` is optional for these
 * (common templates belong to no project); when given, the caller needs project_view there.
 */
async function optionalProject(deps: Deps, caller: Caller, ref: OptionalProjectRef) {
  if (ref.bk_biz_id === undefined) return null
  const project = await resolveProject(deps, caller, {
    bk_biz_id: ref.bk_biz_id,
    scope: ref.scope ?? 'cmdb_biz',
  })
  authorize(caller, project, 'project_view')
  return project
}

export async function listCommonTemplates(
  deps: Deps,
  caller: Caller,
  ref: OptionalProjectRef,
  f: { id_in?: number[] | undefined; name_keyword?: string | undefined } = {},
) {
  const project = await optionalProject(deps, caller, ref)
  const ids = f.id_in?.filter((id) => id <= MAX_INT)
  const rows = await deps.db.prisma.commonTemplate.findMany({
    where: ids ? { id: { in: ids } } : {},
    orderBy: { id: 'desc' },
  })
  return rows
    .map(fromCommon)
    .filter((t) => !f.name_keyword || nameContains(t.name, f.name_keyword))
    .map((t) => commonItem(deps, project, t))
}

function commonItem(deps: Deps, _project: Project | null, t: TemplateRecord) {
  return {
    id: t.id,
    name: t.name,
    category: t.category,
    description: t.description,
    creator: t.creator,
    create_time: formatTime(deps, t.createdAt),
    editor: t.editor,
    edit_time: formatTime(deps, t.editedAt),
  }
}

export async function getCommonTemplate(
  deps: Deps,
  caller: Caller,
  ref: OptionalProjectRef,
  templateId: number,
  opts: { include_constants?: boolean | undefined } = {},
) {
  const project = await optionalProject(deps, caller, ref)
  const t = await findCommonTemplate(deps, templateId)
  const tree = treeOf(t)
  return {
    ...commonItem(deps, project, t),
    version: String(t.version),
    pipeline_tree: tree,
    ...(opts.include_constants ? { constants: tree.constants ?? {} } : {}),
  }
}

// ---- execution schemes ----------------------------------------------------------------------

interface SchemeRow {
  id: number
  name: string
  data: string
}

/** bk-sops's string id of a scheme: `<template_id>-<name>`. */
const schemeStringId = (templateId: number, name: string) => `${templateId}-${name}`

function schemeNodes(s: SchemeRow): string[] {
  const parsed = JSON.parse(s.data) as unknown
  return Array.isArray(parsed) ? parsed.filter((x): x is string => typeof x === 'string') : []
}

/**
 * The node lists of the named schemes of a template, from its scheme rows. An id is a scheme's
 * integer id, its digits, or the string id get_template_schemes answers; one that names no scheme
 * of this template is refused, naming it.
 */
export function schemeNodeLists(
  template: Pick<TemplateRecord, 'source' | 'id'>,
  rows: readonly SchemeRow[],
  ids: ReadonlyArray<number | string>,
): string[][] {
  return ids.map((id) => {
    const found = rows.find((r) =>
      typeof id === 'number' || /^\d+$/.test(id)
        ? Number(r.id) === Number(id)
        : schemeStringId(template.id, r.name) === id,
    )
    if (!found)
      throw new ParamInvalidError(
        `invalid param: template_schemes_id: scheme ${JSON.stringify(id)} does not exist for template ${template.id}`,
      )
    return schemeNodes(found)
  })
}

export async function schemesOf(
  deps: Deps,
  template: Pick<TemplateRecord, 'source' | 'id'>,
  ids: ReadonlyArray<number | string>,
): Promise<string[][]> {
  if (ids.length === 0) return []
  const rows = await deps.db.prisma.templateScheme.findMany({
    where: { templateSource: template.source, templateId: template.id },
  })
  return schemeNodeLists(template, rows, ids)
}

export async function listTemplateSchemes(
  deps: Deps,
  caller: Caller,
  ref: ProjectRef,
  templateId: number,
  opts: { template_source?: TemplateSource; with_constants?: boolean | undefined } = {},
) {
  const project = await resolveProject(deps, caller, ref)
  const t = await findTemplateOf(deps, project.id, opts.template_source ?? 'project', templateId, ref)
  authorize(caller, project, 'project_view')
  const rows = await deps.db.prisma.templateScheme.findMany({
    where: { templateSource: t.source, templateId: t.id },
    orderBy: { id: 'asc' },
  })
  const tree = treeOf(t)
  return rows.map((s) => {
    const item: Record<string, unknown> = {
      id: schemeStringId(t.id, s.name),
      scheme_id: s.id,
      name: s.name,
      data: s.data,
    }
    if (opts.with_constants) {
      // The constants a task of this scheme would ask for: those left once its exclusion is applied.
      const excluded = excludeTaskNodes(tree, exclusionForSchemes(tree, [schemeNodes(s)]))
      item.detail = { constants: excluded.ok ? (excluded.tree.constants ?? {}) : {} }
    }
    return item
  })
}

/**
 * Adds an execution scheme to a template: the optional activities it runs (bk-sops's
 * create_template_scheme). Every id must be an optional activity of the template, the list must not
 * be empty, and the name must be new for the template.
 */
export async function createTemplateScheme(
  deps: Deps,
  caller: Caller,
  ref: ProjectRef,
  input: { template_id: number; name: string; data: string[]; template_source?: TemplateSource },
) {
  const project = await resolveProject(deps, caller, ref)
  const t = await findTemplateOf(deps, project.id, input.template_source ?? 'project', input.template_id, ref)
  authorize(caller, project, 'template_edit')
  if (input.data.length === 0) throw new ParamInvalidError('invalid param: data: must not be empty')
  const activities = (treeOf(t).activities ?? {}) as Record<string, { optional?: unknown }>
  for (const id of input.data) {
    if (!Object.hasOwn(activities, id))
      throw new ParamInvalidError(`invalid param: data: ${id} is not an activity of template ${t.id}`)
    if (activities[id]!.optional !== true)
      throw new ParamInvalidError(`invalid param: data: activity ${id} is not optional`)
  }
  const now = BigInt(deps.now())
  const data = JSON.stringify([...new Set(input.data)])
  const existing = await deps.db.prisma.templateScheme.findUnique({
    where: {
      templateSource_templateId_name: { templateSource: t.source, templateId: t.id, name: input.name },
    },
  })
  const taken = () =>
    new ParamInvalidError(`invalid param: name: template ${t.id} already has a scheme named ${input.name}`)
  if (existing) throw taken()
  const s = await deps.db.prisma.templateScheme
    .create({
      data: {
        templateSource: t.source,
        templateId: t.id,
        name: input.name,
        data,
        creator: caller.username,
        createdAt: now,
        editedAt: now,
      },
    })
    .catch((err: unknown) => {
      // The same name sent twice at once: the unique index lets one in.
      if ((err as { code?: unknown }).code === 'P2002') throw taken()
      throw err
    })
  return { id: s.id, unique_id: schemeStringId(t.id, s.name), name: s.name, data: s.data }
}

/**
 * The tree a task of `tree` runs once `exclude` (or the schemes' exclusion) is applied:
 * preview_task_tree's answer, and what create_task runs.
 */
export function previewTree(tree: Record<string, unknown>, exclude: readonly string[]) {
  const r = excludeTaskNodes(tree, exclude)
  if (!r.ok) throw new ParamInvalidError(`invalid param: exclude_task_nodes_id: ${r.message}`)
  return { pipeline_tree: r.tree, constants_not_referred: r.constantsNotReferred }
}

export async function previewTaskTree(
  deps: Deps,
  caller: Caller,
  ref: ProjectRef,
  input: {
    template_id: number
    template_source?: TemplateSource
    exclude_task_nodes_id?: string[] | undefined
    template_schemes_id?: Array<number | string> | undefined
  },
) {
  const project = await resolveProject(deps, caller, ref)
  const t = await findTemplateOf(deps, project.id, input.template_source ?? 'project', input.template_id, ref)
  authorize(caller, project, 'project_view')
  const tree = treeOf(t)
  const exclude = input.template_schemes_id?.length
    ? exclusionForSchemes(tree, await schemesOf(deps, t, input.template_schemes_id))
    : (input.exclude_task_nodes_id ?? [])
  return previewTree(tree, exclude)
}
