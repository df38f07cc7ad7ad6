import type { Colors } from '../io'
import { formatDuration, paintState } from './format'
import type { TreeLayout } from './status'
import { renderTable } from './table'

/** One event of `task.events`, as the server sends it (services/events.ts). */
export interface TaskEvent {
  seq: number
  task_id: number
  type: 'task_state' | 'node_state'
  node_id: string | null
  state: string
  data?: unknown
  created_at: number
  time: string | null
}

export const FINAL_STATES: readonly string[] = ['FINISHED', 'REVOKED']
export const isFinal = (e: Pick<TaskEvent, 'type' | 'state'>) =>
  e.type === 'task_state' && FINAL_STATES.includes(e.state)

/** The error a node event carries (`data.error`), if any. */
export function eventError(e: { data?: unknown }): string | undefined {
  const d = e.data
  if (typeof d === 'object' && d !== null && typeof (d as { error?: unknown }).error === 'string')
    return (d as { error: string }).error
  return undefined
}

interface NodeView {
  state: string
  startedAt: number | null
  finishedAt: number | null
  error?: string | undefined
  errorIgnored: boolean
}

/** What the live view shows, folded from the events seen so far. */
export interface WatchModel {
  taskId: number
  name: string
  state: string
  startedAt: number | null
  finishedAt: number | null
  lastSeq: number
  nodes: Map<string, NodeView>
}

export function newWatchModel(taskId: number, name: string): WatchModel {
  return { taskId, name, state: '', startedAt: null, finishedAt: null, lastSeq: 0, nodes: new Map() }
}

const ENDED = ['FINISHED', 'FAILED', 'REVOKED']

export function applyEvent(m: WatchModel, e: TaskEvent): void {
  m.lastSeq = e.seq
  if (e.type === 'task_state') {
    m.state = e.state
    if (e.state === 'RUNNING' && m.startedAt === null) m.startedAt = e.created_at
    if (FINAL_STATES.includes(e.state)) m.finishedAt = e.created_at
    return
  }
  if (!e.node_id) return
  const node = m.nodes.get(e.node_id) ?? { state: '', startedAt: null, finishedAt: null, errorIgnored: false }
  node.state = e.state
  if (e.state === 'RUNNING') {
    node.startedAt = e.created_at
    node.finishedAt = null
    node.error = undefined
  } else if (ENDED.includes(e.state)) {
    node.finishedAt = e.created_at
    node.error = eventError(e)
    node.errorIgnored = (e.data as { error_ignored?: unknown } | null)?.error_ignored === true
  }
  m.nodes.set(e.node_id, node)
}

/** One line per event, for pipes and logs. */
export function renderEventLine(c: Colors, e: TaskEvent, layout: TreeLayout | null): string {
  const when = c.dim(e.time ?? new Date(e.created_at).toISOString())
  const seq = c.dim(`#${e.seq}`)
  if (e.type === 'task_state') return `${when}  ${seq}  task ${e.task_id}  ${paintState(c, e.state)}\n`
  const id = e.node_id ?? '?'
  const label = layout?.labels[id]
  const err = eventError(e)
  const tail = err ? `  ${c.red('error:')} ${err}` : ''
  return `${when}  ${seq}  node ${id}${label && label !== id ? ` (${label})` : ''}  ${paintState(c, e.state)}${tail}\n`
}

const seconds = (from: number | null, to: number | null, now: number) =>
  from === null ? 0 : ((to ?? now) - from) / 1000

/** The in-place view: a header line and one row per node met so far, in run order. */
export function renderWatch(c: Colors, m: WatchModel, layout: TreeLayout | null, now: number): string {
  const head = `task ${m.taskId}  ${m.name}  ${paintState(c, m.state || 'CREATED')}  ${formatDuration(seconds(m.startedAt, m.finishedAt, now))}\n`
  const rank = new Map((layout?.order ?? []).map((id, i) => [id, i]))
  const rows = [...m.nodes.entries()]
    .map(([id, n]) => ({ id, ...n }))
    .sort((a, b) => (rank.get(a.id) ?? Number.MAX_SAFE_INTEGER) - (rank.get(b.id) ?? Number.MAX_SAFE_INTEGER))
  if (rows.length === 0) return head
  const table = renderTable(c, rows, [
    { header: 'STATE', value: (r) => r.state, paint: (s, r) => paintState(c, r.state).replace(r.state, s) },
    { header: 'NODE', value: (r) => layout?.labels[r.id] ?? r.id },
    {
      header: 'DURATION',
      value: (r) => (r.startedAt === null ? '' : formatDuration(seconds(r.startedAt, r.finishedAt, now))),
    },
    { header: 'ID', value: (r) => r.id },
    ...(rows.some((r) => r.error)
      ? [
          {
            header: 'ERROR',
            value: (r: (typeof rows)[number]) =>
              r.error ? `${r.errorIgnored ? '(ignored) ' : ''}${r.error}` : '',
          },
        ]
      : []),
  ])
  return head + table
}
