import { readFileSync } from 'node:fs'
import { UsageError } from '../errors'
import { dash, formatDuration, paintState } from '../output/format'
import { printJson } from '../output/json'
import { renderRecord, renderTable } from '../output/table'
import { type CommandContext, connect, parseId } from './context'
import { parseConstants } from './task'

/** A node id as given: any non-empty word. */
function parseNodeId(value: string): string {
  if (value.trim() === '') throw new UsageError('node id must not be empty')
  return value
}

/** `--data @file.json` or `--data '{"k":"v"}'`: a JSON object. */
export function parseData(value: string | undefined): Record<string, unknown> | undefined {
  if (value === undefined) return undefined
  let text = value
  if (value.startsWith('@')) {
    try {
      text = readFileSync(value.slice(1), 'utf8')
    } catch (err) {
      throw new UsageError(`--data: cannot read ${value.slice(1)}: ${(err as Error).message}`)
    }
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (err) {
    throw new UsageError(`--data must be a JSON object (or @file.json): ${(err as Error).message}`)
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new UsageError('--data must be a JSON object')
  }
  return parsed as Record<string, unknown>
}

export interface NodeActionOptions {
  input?: string[]
  data?: string
  version?: string
  flow?: string
  flows?: string
  converge?: string
  /** pause / resume / retry of a SubProcess node: pause_subproc, resume_subproc, retry_subprocess. */
  subprocess?: boolean
  json?: boolean
}

/** The CLI's verbs → node actions (`skip` with --flow / --flows is skip_exg / skip_cpg). */
export type NodeVerb = 'retry' | 'skip' | 'fail' | 'callback' | 'approve' | 'pause' | 'resume'

function actionOf(verb: NodeVerb, o: NodeActionOptions): string {
  if (o.subprocess) {
    if (verb === 'pause') return 'pause_subproc'
    if (verb === 'resume') return 'resume_subproc'
    if (verb === 'retry') {
      if (o.input && o.input.length > 0) throw new UsageError('--input is not for --subprocess')
      return 'retry_subprocess'
    }
    throw new UsageError('--subprocess is only for pause, resume and retry')
  }
  switch (verb) {
    case 'fail':
      return 'forced_fail'
    case 'approve':
      return 'callback'
    case 'skip':
      if (o.flow !== undefined && o.flows !== undefined)
        throw new UsageError('give --flow or --flows, not both')
      if (o.flow !== undefined) return 'skip_exg'
      if (o.flows !== undefined) return 'skip_cpg'
      return 'skip'
    default:
      return verb
  }
}

export async function nodeAction(
  ctx: CommandContext,
  verb: NodeVerb,
  task: string,
  node: string,
  o: NodeActionOptions,
) {
  const taskId = parseId(task, 'task id')
  const nodeId = parseNodeId(node)
  const action = actionOf(verb, o)
  const inputs = o.input && o.input.length > 0 ? parseConstants(o.input, '--input') : undefined
  if (inputs && verb !== 'retry') throw new UsageError('--input is only for retry')
  const data = parseData(o.data)
  if (data && verb !== 'callback' && verb !== 'approve')
    throw new UsageError('--data is only for callback and approve')
  if (verb === 'callback' && data === undefined)
    throw new UsageError('callback needs --data (a JSON object or @file.json)')
  if (action === 'skip_cpg' && o.converge === undefined)
    throw new UsageError('skip --flows needs --converge <converge gateway id>')
  const version = o.version === undefined ? undefined : parseId(o.version, '--version')
  const { client, project } = connect(ctx)
  const result = await client.node.operate.mutate({
    ...project(),
    task_id: taskId,
    node_id: nodeId,
    action,
    ...(inputs ? { inputs } : {}),
    ...(action === 'callback' ? { data: data ?? {} } : {}),
    ...(version !== undefined ? { version } : {}),
    ...(o.flow !== undefined ? { flow_id: o.flow } : {}),
    ...(o.flows !== undefined ? { flow_ids: o.flows.split(',').filter((f) => f !== '') } : {}),
    ...(o.converge !== undefined ? { converge_gateway_id: o.converge } : {}),
  })
  if (o.json) return printJson(ctx.io, result)
  const c = ctx.io.color.out
  ctx.io.out.write(
    renderRecord(c, [
      ['task_id', String(result.task_id)],
      ['node_id', result.node_id],
      ['action', result.action],
      ['state', paintState(c, result.state)],
      ['version', String(result.version)],
    ]),
  )
}

const text = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v))

export async function nodeShow(ctx: CommandContext, task: string, node: string, o: { json?: boolean }) {
  const taskId = parseId(task, 'task id')
  const { client, project } = connect(ctx)
  const d = await client.node.detail.query({ ...project(), task_id: taskId, node_id: parseNodeId(node) })
  if (o.json) return printJson(ctx.io, d)
  const c = ctx.io.color.out
  const entries: Array<[string, string]> = [
    ['node', `${d.id}  ${d.name}`],
    ['state', paintState(c, d.state) + (d.held ? ' (paused: held by an operator)' : '')],
  ]
  if ('version' in d) {
    entries.push(
      ['version', String(d.version)],
      ['retry', String(d.retry)],
      ['loop', String(d.loop)],
      ['skip', String(d.skip)],
      ['started', dash(d.start_time)],
      ['finished', dash(d.finish_time)],
      ['elapsed', formatDuration(d.elapsed_time)],
    )
    if (d.waiting_for) entries.push(['waiting for', d.waiting_for])
  }
  if (d.ex_data) entries.push(['error', c.red(d.ex_data)])
  let out = renderRecord(c, entries)
  const inputs = Object.entries((d.inputs ?? {}) as Record<string, unknown>)
  if (inputs.length > 0) {
    out += `\n${renderTable(c, inputs, [
      { header: 'INPUT', value: ([k]) => k },
      { header: 'VALUE', value: ([, v]) => text(v) },
    ])}`
  }
  if (d.outputs.length > 0) {
    out += `\n${renderTable(c, d.outputs as Array<{ key: string; value: unknown }>, [
      { header: 'OUTPUT', value: (x) => x.key },
      { header: 'VALUE', value: (x) => text(x.value) },
    ])}`
  }
  if (d.histories.length > 0) {
    out += `\n${renderTable(c, d.histories as Array<Record<string, unknown>>, [
      { header: 'HISTORY', value: (x) => String(x.history_id) },
      { header: 'STATE', value: (x) => String(x.state) },
      {
        header: 'RETRY',
        value: (x) => (x.auto_retry ? 'automatic' : x.retry === 0 ? 'first run' : 'manual'),
      },
      { header: 'STARTED', value: (x) => dash(x.start_time as string | null) },
      { header: 'ERROR', value: (x) => dash((x.ex_data as string) || null) },
    ])}`
  }
  ctx.io.out.write(out)
}

export async function nodeLog(
  ctx: CommandContext,
  task: string,
  node: string,
  o: { history?: string; json?: boolean },
) {
  const taskId = parseId(task, 'task id')
  const { client, project } = connect(ctx)
  const r = await client.node.log.query({
    ...project(),
    task_id: taskId,
    node_id: parseNodeId(node),
    ...(o.history !== undefined ? { history_id: parseId(o.history, '--history') } : {}),
  })
  if (o.json) return printJson(ctx.io, r)
  if (r.log === '') ctx.io.err.write('no log lines\n')
  ctx.io.out.write(r.log)
}
