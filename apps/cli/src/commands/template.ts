import { readFileSync } from 'node:fs'
import { UsageError } from '../errors'
import { dash } from '../output/format'
import { printJson } from '../output/json'
import { layoutOf } from '../output/status'
import { renderRecord, renderTable } from '../output/table'
import { type CommandContext, connect, parseId } from './context'

type Obj = Record<string, unknown>
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)

/** A pipeline tree from a file (or `-` for stdin): the tree itself, or an object holding it as `pipeline_tree`. */
export function readTreeFile(path: string): Obj {
  let text: string
  try {
    text = readFileSync(path === '-' ? 0 : path, 'utf8')
  } catch (err) {
    throw new UsageError(`cannot read ${path}: ${(err as Error).message}`)
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (err) {
    throw new UsageError(`${path} is not JSON: ${(err as Error).message}`)
  }
  if (!isObj(parsed)) throw new UsageError(`${path} must hold a JSON object (a pipeline tree)`)
  if (!('start_event' in parsed) && isObj(parsed.pipeline_tree)) return parsed.pipeline_tree
  return parsed
}

export async function templateCreate(
  ctx: CommandContext,
  o: { file: string; name: string; description?: string; json?: boolean },
) {
  const tree = readTreeFile(o.file)
  const { client, project } = connect(ctx)
  const created = await client.template.create.mutate({
    ...project(),
    name: o.name,
    pipeline_tree: tree,
    ...(o.description !== undefined ? { description: o.description } : {}),
  })
  const shown = { template_id: created.template_id, template_name: created.template_name }
  if (o.json) return printJson(ctx.io, shown)
  ctx.io.out.write(
    renderRecord(ctx.io.color.out, [
      ['template_id', String(shown.template_id)],
      ['template_name', shown.template_name],
    ]),
  )
}

export async function templateList(ctx: CommandContext, o: { json?: boolean }) {
  const { client, project } = connect(ctx)
  const templates = await client.template.list.query(project())
  if (o.json) return printJson(ctx.io, templates)
  if (templates.length === 0) {
    ctx.io.err.write('no templates in this project\n')
    return
  }
  ctx.io.out.write(
    renderTable(ctx.io.color.out, templates, [
      { header: 'ID', value: (t) => String(t.id) },
      { header: 'NAME', value: (t) => t.name },
      { header: 'CREATOR', value: (t) => t.creator },
      { header: 'EDITED', value: (t) => dash(t.edit_time) },
    ]),
  )
}

export async function templateShow(ctx: CommandContext, id: string, o: { json?: boolean }) {
  const templateId = parseId(id, 'template id')
  const { client, project } = connect(ctx)
  const t = await client.template.get.query({ ...project(), template_id: templateId })
  if (o.json) return printJson(ctx.io, t)
  const c = ctx.io.color.out
  let text = renderRecord(c, [
    ['id', String(t.id)],
    ['name', t.name],
    ['description', dash(t.description)],
    ['version', dash(t.version)],
    ['creator', t.creator],
    ['created', dash(t.create_time)],
    ['editor', dash(t.editor)],
    ['edited', dash(t.edit_time)],
    ['bk_biz_id', String(t.bk_biz_id)],
  ])
  const tree = isObj(t.pipeline_tree) ? t.pipeline_tree : {}
  const activities = isObj(tree.activities) ? tree.activities : {}
  const layout = layoutOf(tree)
  const nodes = layout.order
    .filter((nodeId) => nodeId in activities)
    .map((nodeId) => activities[nodeId] as Obj)
  if (nodes.length > 0) {
    text += `\n${renderTable(c, nodes, [
      { header: 'NODE', value: (n) => String(n.id) },
      { header: 'NAME', value: (n) => dash(n.name) },
      { header: 'COMPONENT', value: (n) => (isObj(n.component) ? dash(n.component.code) : '-') },
    ])}`
  }
  const constants = Object.values(isObj(tree.constants) ? tree.constants : {}).filter(isObj)
  if (constants.length > 0) {
    text += `\n${renderTable(c, constants, [
      { header: 'CONSTANT', value: (k) => String(k.key) },
      { header: 'NAME', value: (k) => dash(k.name) },
      {
        header: 'VALUE',
        value: (k) => (typeof k.value === 'string' ? k.value : JSON.stringify(k.value ?? null)),
      },
    ])}`
  }
  ctx.io.out.write(text)
}
