import { Failure, UsageError } from '../errors'
import { dash, paintState } from '../output/format'
import { printJson } from '../output/json'
import { layoutOf, renderStatus, type StatusTree } from '../output/status'
import { renderRecord, renderTable } from '../output/table'
import { type CommandContext, connect, parseId } from './context'

/** `--constant key=value` (or `--input`), repeated: the value is kept as text, as bk-sops constants are. */
export function parseConstants(pairs: readonly string[], flag = '--constant'): Record<string, string> {
  const constants: Record<string, string> = {}
  for (const pair of pairs) {
    const eq = pair.indexOf('=')
    if (eq <= 0) throw new UsageError(`${flag} expects key=value, got '${pair}'`)
    constants[pair.slice(0, eq)] = pair.slice(eq + 1)
  }
  return constants
}

export async function taskCreate(
  ctx: CommandContext,
  o: { template: string; name: string; constant: string[]; description?: string; json?: boolean },
) {
  const templateId = parseId(o.template, '--template')
  const constants = parseConstants(o.constant)
  const { client, project } = connect(ctx)
  const created = await client.task.create.mutate({
    ...project(),
    template_id: templateId,
    name: o.name,
    ...(Object.keys(constants).length > 0 ? { constants } : {}),
    ...(o.description !== undefined ? { description: o.description } : {}),
  })
  // The tree the task runs is `task status`'s business; the creation prints what identifies it.
  const shown = { task_id: created.task_id, task_url: created.task_url }
  if (o.json) return printJson(ctx.io, shown)
  ctx.io.out.write(
    renderRecord(ctx.io.color.out, [
      ['task_id', String(shown.task_id)],
      ['task_url', shown.task_url],
    ]),
  )
}

type Action = 'start' | 'pause' | 'resume' | 'revoke'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export async function taskOperate(
  ctx: CommandContext,
  action: Action,
  id: string,
  o: { json?: boolean; wait?: boolean; timeout?: string },
) {
  const taskId = parseId(id, 'task id')
  const timeoutS = o.timeout === undefined ? undefined : Number(o.timeout)
  if (timeoutS !== undefined && !(timeoutS > 0))
    throw new UsageError(`--timeout must be a number of seconds, got '${o.timeout}'`)
  const { client, project } = connect(ctx)
  const ref = { ...project(), task_id: taskId }
  let shown: { task_id: number; state: string; task_url?: string; running_nodes?: number }
  if (action === 'start') {
    const r = await client.task.start.mutate(ref)
    shown = { task_id: taskId, state: 'RUNNING', task_url: r.task_url }
  } else {
    const r = await client.task.operate.mutate({ ...ref, action })
    shown = { task_id: taskId, state: r.state }
  }
  if (action === 'pause' && o.wait) {
    // Pause stops new nodes at once; nodes already running finish. Wait until none is left.
    const deadline = timeoutS === undefined ? Number.POSITIVE_INFINITY : Date.now() + timeoutS * 1000
    let said = -1
    for (;;) {
      const tree = (await client.task.status.query(ref)) as unknown as StatusTree
      const running = tree.running_nodes ?? 0
      shown = { task_id: taskId, state: tree.state, running_nodes: running }
      if (running === 0) break
      if (Date.now() > deadline)
        throw new Failure(`task ${taskId} still has ${running} running node(s) after ${timeoutS}s`)
      if (running !== said && ctx.io.err.isTTY)
        ctx.io.err.write(`waiting for ${running} running node(s) to finish…\n`)
      said = running
      await sleep(200)
    }
  }
  if (o.json) return printJson(ctx.io, shown)
  const c = ctx.io.color.out
  const entries: Array<[string, string]> = [
    ['task_id', String(shown.task_id)],
    ['state', paintState(c, shown.state)],
  ]
  if (shown.running_nodes !== undefined) entries.push(['running_nodes', String(shown.running_nodes)])
  if (shown.task_url !== undefined) entries.push(['task_url', shown.task_url])
  ctx.io.out.write(renderRecord(c, entries))
}

export async function taskStatus(ctx: CommandContext, id: string, o: { json?: boolean }) {
  const taskId = parseId(id, 'task id')
  const { client, project } = connect(ctx)
  const ref = { ...project(), task_id: taskId }
  const [tree, detail] = await Promise.all([client.task.status.query(ref), client.task.detail.query(ref)])
  if (o.json) return printJson(ctx.io, tree)
  ctx.io.out.write(
    renderStatus(ctx.io.color.out, tree as unknown as StatusTree, layoutOf(detail.pipeline_tree)),
  )
}

export interface ListOptions {
  keyword?: string
  started?: boolean
  finished?: boolean
  executor?: string
  template?: string
  createdAfter?: string
  createdBefore?: string
  offset?: string
  limit?: string
  json?: boolean
}

const count = (v: string | undefined, what: string) => {
  if (v === undefined) return undefined
  if (!/^\d+$/.test(v)) throw new UsageError(`${what} must be a whole number, got '${v}'`)
  return Number(v)
}

export async function taskList(ctx: CommandContext, o: ListOptions) {
  const filters = {
    ...(o.keyword !== undefined ? { keyword: o.keyword } : {}),
    ...(o.started !== undefined ? { is_started: o.started } : {}),
    ...(o.finished !== undefined ? { is_finished: o.finished } : {}),
    ...(o.executor !== undefined ? { executor: o.executor } : {}),
    ...(o.template !== undefined ? { template_id: parseId(o.template, '--template') } : {}),
    ...(o.createdAfter !== undefined ? { create_time_start: o.createdAfter } : {}),
    ...(o.createdBefore !== undefined ? { create_time_end: o.createdBefore } : {}),
    ...(o.offset !== undefined ? { offset: count(o.offset, '--offset') } : {}),
    ...(o.limit !== undefined ? { limit: count(o.limit, '--limit') } : {}),
  }
  const { client, project } = connect(ctx)
  const page = await client.task.list.query({ ...project(), ...filters })
  if (o.json) return printJson(ctx.io, page)
  const c = ctx.io.color.out
  if (page.list.length > 0) {
    ctx.io.out.write(
      renderTable(c, page.list, [
        { header: 'ID', value: (t) => String(t.id) },
        { header: 'NAME', value: (t) => t.name },
        {
          header: 'STATE',
          value: (t) => t.state,
          paint: (s, t) => paintState(c, t.state).replace(t.state, s),
        },
        { header: 'CREATOR', value: (t) => t.creator },
        { header: 'CREATED', value: (t) => dash(t.create_time) },
        { header: 'STARTED', value: (t) => dash(t.start_time) },
        { header: 'FINISHED', value: (t) => dash(t.finish_time) },
      ]),
    )
  }
  ctx.io.err.write(`${page.list.length} of ${page.count} task(s)\n`)
}

export async function taskRecords(ctx: CommandContext, id: string, o: { node?: string; json?: boolean }) {
  const taskId = parseId(id, 'task id')
  const { client, project } = connect(ctx)
  const records = await client.task.records.query({
    ...project(),
    task_id: taskId,
    ...(o.node !== undefined ? { node_id: o.node } : {}),
  })
  if (o.json) return printJson(ctx.io, records)
  if (records.length === 0) {
    ctx.io.err.write('no operate records\n')
    return
  }
  ctx.io.out.write(
    renderTable(ctx.io.color.out, records, [
      { header: 'ID', value: (r) => String(r.id) },
      { header: 'OPERATION', value: (r) => r.operate_type },
      { header: 'OPERATOR', value: (r) => r.operator },
      { header: 'APP', value: (r) => dash(r.extra_info.app_code) },
      { header: 'SOURCE', value: (r) => r.operate_source },
      { header: 'DATE', value: (r) => dash(r.operate_date) },
      { header: 'NODE', value: (r) => dash(r.node_id) },
    ]),
  )
}
