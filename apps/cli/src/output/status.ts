import type { Colors } from '../io'
import { dash, formatDuration, paintState } from './format'
import { renderRecord, renderTable } from './table'

/** get_task_status's tree as the server sends it, with `ex_data` on failed nodes. */
export interface NodeStatus {
  id: string
  name: string
  state: string
  elapsed_time: number
  start_time: string | null
  finish_time: string | null
  retry?: number
  loop?: number
  error_ignored?: boolean
  ex_data?: string | null
}

export interface StatusTree {
  id: number
  name: string
  state: string
  elapsed_time: number
  start_time: string | null
  finish_time: string | null
  running_nodes?: number
  children: Record<string, NodeStatus>
}

/** Node ids in the order a run meets them (breadth-first from the start event), and a label for each. */
export interface TreeLayout {
  order: string[]
  labels: Record<string, string>
  /** `activity`, a gateway's type (`ExclusiveGateway` …), or `event`. */
  kinds?: Record<string, string>
}

type Obj = Record<string, unknown>
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)
const list = (v: unknown): string[] =>
  typeof v === 'string' ? (v ? [v] : []) : Array.isArray(v) ? v.filter((x) => typeof x === 'string') : []

export function layoutOf(pipelineTree: unknown): TreeLayout {
  const labels: Record<string, string> = {}
  const kinds: Record<string, string> = {}
  const outgoing: Record<string, string[]> = {}
  if (!isObj(pipelineTree)) return { order: [], labels, kinds }
  const add = (node: unknown, label: (n: Obj) => string) => {
    if (!isObj(node) || typeof node.id !== 'string') return
    labels[node.id] = label(node)
    outgoing[node.id] = list(node.outgoing)
    kinds[node.id] =
      node.type === 'ServiceActivity'
        ? 'activity'
        : typeof node.type === 'string' && node.type.endsWith('Gateway')
          ? node.type
          : 'event'
  }
  add(pipelineTree.start_event, () => 'start')
  add(pipelineTree.end_event, () => 'end')
  for (const a of Object.values(isObj(pipelineTree.activities) ? pipelineTree.activities : {})) {
    add(a, (n) => (typeof n.name === 'string' && n.name ? n.name : String(n.id)))
  }
  for (const g of Object.values(isObj(pipelineTree.gateways) ? pipelineTree.gateways : {})) {
    add(g, (n) =>
      typeof n.name === 'string' && n.name ? n.name : typeof n.type === 'string' ? n.type : 'gateway',
    )
  }
  const flows = isObj(pipelineTree.flows) ? pipelineTree.flows : {}
  const start = isObj(pipelineTree.start_event) ? pipelineTree.start_event.id : undefined
  const order: string[] = []
  const seen = new Set<string>()
  const queue = typeof start === 'string' ? [start] : []
  while (queue.length > 0) {
    const id = queue.shift()!
    if (seen.has(id) || !(id in labels)) continue
    seen.add(id)
    order.push(id)
    for (const f of outgoing[id] ?? []) {
      const flow = flows[f]
      if (isObj(flow) && typeof flow.target === 'string') queue.push(flow.target)
    }
  }
  for (const id of Object.keys(labels)) if (!seen.has(id)) order.push(id)
  return { order, labels, kinds }
}

/** The status tree's nodes in run order (nodes the layout does not know go last, by start time). */
export function orderedNodes(tree: StatusTree, layout: TreeLayout | null): NodeStatus[] {
  const nodes = Object.values(tree.children ?? {})
  const rank = new Map((layout?.order ?? []).map((id, i) => [id, i]))
  return nodes.sort((a, b) => {
    const ra = rank.get(a.id) ?? Number.MAX_SAFE_INTEGER
    const rb = rank.get(b.id) ?? Number.MAX_SAFE_INTEGER
    if (ra !== rb) return ra - rb
    return (a.start_time ?? '').localeCompare(b.start_time ?? '') || a.id.localeCompare(b.id)
  })
}

export const nodeLabel = (node: Pick<NodeStatus, 'id' | 'name'>, layout: TreeLayout | null) =>
  node.name || layout?.labels[node.id] || node.id

/** `task status`: a summary of the task, its nodes with states and durations, and the errors of failed nodes. */
export function renderStatus(c: Colors, tree: StatusTree, layout: TreeLayout | null): string {
  const summary: Array<[string, string]> = [
    ['task', `${tree.id}  ${tree.name}`],
    ['state', paintState(c, tree.state)],
    ['elapsed', formatDuration(tree.elapsed_time)],
    ['started', dash(tree.start_time)],
    ['finished', dash(tree.finish_time)],
  ]
  if (tree.running_nodes !== undefined) summary.push(['running', `${tree.running_nodes} node(s)`])
  let text = renderRecord(c, summary)
  const nodes = orderedNodes(tree, layout)
  if (nodes.length === 0) return text
  text += `\n${renderTable(c, nodes, [
    { header: 'STATE', value: (n) => n.state, paint: (s, n) => paintState(c, n.state).replace(n.state, s) },
    { header: 'NODE', value: (n) => nodeLabel(n, layout) },
    { header: 'DURATION', value: (n) => formatDuration(n.elapsed_time) },
    { header: 'STARTED', value: (n) => dash(n.start_time) },
    { header: 'ID', value: (n) => n.id + (n.error_ignored ? ' (error ignored)' : '') },
  ])}`
  for (const n of nodes) {
    if (n.state === 'FAILED' || (n.ex_data && n.error_ignored)) {
      text += `\n${c.red(`${n.id} (${nodeLabel(n, layout)}) failed:`)} ${n.ex_data ?? 'no error message'}\n`
    }
    const moves = n.state === 'FAILED' || n.state === 'SUSPENDED' ? nextCommands(tree.id, n, layout) : []
    if (n.state === 'SUSPENDED')
      text += `\n${c.yellow(`${n.id} (${nodeLabel(n, layout)}) is held by a node pause`)}\n`
    if (moves.length > 0) text += `  to move it on:\n${moves.map((m) => `    ${m}\n`).join('')}`
  }
  return text
}

/** The commands that would move a FAILED or held node on, by its kind. */
export function nextCommands(taskId: number, n: Pick<NodeStatus, 'id' | 'state'>, layout: TreeLayout | null) {
  const at = `${taskId} ${n.id}`
  if (n.state === 'SUSPENDED') return [`stdops node resume ${at}`]
  switch (layout?.kinds?.[n.id]) {
    case 'ExclusiveGateway':
      return [`stdops node skip ${at} --flow <flow_id>`]
    case 'ConditionalParallelGateway':
      return [`stdops node skip ${at} --flows <flow_id,...> --converge <converge_gateway_id>`]
    case 'activity':
    case undefined:
      return [
        `stdops node retry ${at} [--input key=value ...]`,
        `stdops node skip ${at}`,
        `stdops node show ${at}`,
      ]
    default:
      return []
  }
}
