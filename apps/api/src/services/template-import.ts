import { ParamInvalidError, PermissionDeniedError, TEMPLATE_CATEGORIES } from '@stdops/core'
import { sql } from '@stdops/db'
import { sealTreeSecrets } from '@stdops/engine'
import type { Caller } from './auth'
import type { Deps } from './deps'
import { type ProjectRef, resolveProject } from './projects'
import { checkTemplateTree } from './templates'

/**
 * bk-sops's import_project_template / import_common_template: templates from the file bk-sops's
 * "export" writes (base64 of `{template_data, digest}`). Each exported template becomes a new
 * template (bk-sops's `override=false`): its name, description, category and tree. Only trusted
 * apps may import, as in bk-sops. The digest is not checked (it is salted with a bk-sops server's
 * own secret); every tree is validated instead, and one invalid tree imports nothing.
 */

interface Exported {
  name: string
  description: string
  category: string
  tree: Record<string, unknown>
}

const obj = (v: unknown): Record<string, unknown> | null =>
  v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null

/** The templates an export holds, or a refusal naming what is wrong with it. */
export function readTemplateExport(content: string): Exported[] {
  let data: Record<string, unknown> | null
  try {
    data = obj(JSON.parse(Buffer.from(content, 'base64').toString('utf8')))
  } catch {
    data = null
  }
  const templateData = obj(data?.template_data)
  if (!templateData)
    throw new ParamInvalidError(
      'invalid param: template_data: not a bk-sops template export (base64 of {template_data, digest})',
    )
  const templates = obj(templateData.template)
  const pipelines = obj(obj(templateData.pipeline_template_data)?.template)
  if (!templates || !pipelines)
    throw new ParamInvalidError(
      'invalid param: template_data: the export has no template or pipeline_template_data.template',
    )
  const out: Exported[] = []
  for (const [id, t] of Object.entries(templates)) {
    const template = obj(t)
    const strId = template?.pipeline_template_str_id ?? template?.pipeline_template_id
    const pipeline = typeof strId === 'string' ? obj(pipelines[strId]) : null
    const tree = obj(pipeline?.tree)
    if (!template || !pipeline || !tree)
      throw new ParamInvalidError(
        `invalid param: template_data: template ${id} has no pipeline tree in the export`,
      )
    const name =
      typeof pipeline.name === 'string' && pipeline.name.length > 0
        ? pipeline.name.slice(0, 100)
        : `imported ${id}`
    const category =
      typeof template.category === 'string' &&
      (TEMPLATE_CATEGORIES as readonly string[]).includes(template.category)
        ? template.category
        : 'Other'
    out.push({
      name,
      description: typeof pipeline.description === 'string' ? pipeline.description : '',
      category,
      tree,
    })
  }
  if (out.length === 0)
    throw new ParamInvalidError('invalid param: template_data: the export holds no template')
  if (out.length > 500)
    throw new ParamInvalidError('invalid param: template_data: at most 500 templates at once')
  return out
}

function requireTrusted(caller: Caller) {
  if (!caller.app.trusted)
    throw new PermissionDeniedError(
      `permission denied: only a trusted app may import templates (app ${caller.app.code})`,
    )
}

function checkAll(deps: Deps, templates: Exported[]) {
  for (const t of templates) {
    // An export's SubProcess nodes name templates by the exporting server's ids: they would point
    // at unrelated templates here, so such trees are refused (import the children and edit them).
    const activities = (t.tree as { activities?: Record<string, { type?: unknown; id?: unknown }> })
      .activities
    const sub = Object.values(activities ?? {}).find((a) => a?.type === 'SubProcess')
    if (sub)
      throw new ParamInvalidError(
        `invalid param: template_data: template ${t.name}: subprocess ${String(sub.id)} names a template by the exporting server's id; templates with subprocesses cannot be imported`,
      )
    try {
      checkTemplateTree(deps, t.tree)
    } catch (err) {
      throw new ParamInvalidError(
        `invalid param: template_data: template ${t.name}: ${(err as Error).message}`,
      )
    }
  }
}

/** Inserts every template in one transaction: all of them or none. `projectId` null: common templates. */
async function insertAll(deps: Deps, caller: Caller, templates: Exported[], projectId: number | null) {
  const now = deps.now()
  const created = await deps.db.tx(async (tx) => {
    const rows: Array<{ id: number; name: string }> = []
    for (const t of templates) {
      // secret constants are stored sealed with the server key
      const tree = JSON.stringify(sealTreeSecrets(deps.secrets, t.tree))
      const [row] = await tx.query<{ id: number }>(
        projectId === null
          ? sql`INSERT INTO common_templates (name, description, category, pipeline_tree, creator, editor, version, created_at, edited_at)
                VALUES (${t.name}, ${t.description}, ${t.category}, ${tree}, ${caller.username}, ${caller.username}, ${1}, ${now}, ${now})
                RETURNING id`
          : sql`INSERT INTO templates (project_id, name, description, category, pipeline_tree, creator, editor, version, created_at, edited_at)
                VALUES (${projectId}, ${t.name}, ${t.description}, ${t.category}, ${tree}, ${caller.username}, ${caller.username}, ${1}, ${now}, ${now})
                RETURNING id`,
      )
      rows.push({ id: Number(row!.id), name: t.name })
    }
    return rows
  })
  return { flows: Object.fromEntries(created.map((t) => [String(t.id), t.name])), count: created.length }
}

export async function importProjectTemplates(deps: Deps, caller: Caller, ref: ProjectRef, content: string) {
  const project = await resolveProject(deps, caller, ref)
  requireTrusted(caller)
  const templates = readTemplateExport(content)
  checkAll(deps, templates)
  return insertAll(deps, caller, templates, project.id)
}

export async function importCommonTemplates(deps: Deps, caller: Caller, content: string) {
  requireTrusted(caller)
  const templates = readTemplateExport(content)
  checkAll(deps, templates)
  return insertAll(deps, caller, templates, null)
}
