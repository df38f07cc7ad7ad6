import { displayedTaskState, type NodeState, type TaskState } from '@stdops/core'
import { type DrawGraph, wontRun } from './graph'

/**
 * A task's live state, folded from its event stream (`task.events`): the same events, in seq
 * order, that the server keeps. Replaying the stream from its first event rebuilds everything the
 * canvas and the events tab show; an event at or below the last seq is a duplicate and ignored,
 * so a stream resumed after a drop can never count anything twice.
 */

export interface LiveEvent {
  seq: number
  type: 'task_state' | 'node_state'
  node_id: string | null
  state: string
  data: unknown
  /** epoch ms */
  created_at: number
}

export interface NodeLive {
  state: NodeState
  /** epoch ms of the current pass's start / end */
  startedAt: number | null
  finishedAt: number | null
  /** retries seen (a FAILED node made READY again) */
  retry: number
  /** finished by a skip after failing */
  skip: boolean
  /** the last failure's error, while the node has not passed since */
  error: string | null
  errorIgnored: boolean
  /** times the node started running (loops and retries included) */
  runs: number
}

export interface TaskLive {
  lastSeq: number
  /** the task's own state (null until its first event) */
  taskState: TaskState | null
  nodes: Readonly<Record<string, NodeLive>>
  events: readonly LiveEvent[]
  createdAt: number | null
  startedAt: number | null
  finishedAt: number | null
}

export const EMPTY_LIVE: TaskLive = {
  lastSeq: 0,
  taskState: null,
  nodes: {},
  events: [],
  createdAt: null,
  startedAt: null,
  finishedAt: null,
}

const FINAL: ReadonlySet<string> = new Set(['FINISHED', 'REVOKED'])
const ENDS_PASS: ReadonlySet<string> = new Set(['FINISHED', 'FAILED', 'REVOKED'])

function errorOf(data: unknown): string | null {
  const e = (data as { error?: unknown } | null)?.error
  return typeof e === 'string' ? e : null
}

function nextNode(prev: NodeLive | undefined, e: LiveEvent): NodeLive {
  const state = e.state as NodeState
  const base: NodeLive = prev ?? {
    state,
    startedAt: null,
    finishedAt: null,
    retry: 0,
    skip: false,
    error: null,
    errorIgnored: false,
    runs: 0,
  }
  const n: NodeLive = { ...base, state }
  if (state === 'READY' && prev?.state === 'FAILED') {
    n.retry += 1
    n.startedAt = null
    n.finishedAt = null
  }
  if (state === 'RUNNING' && prev?.state !== 'SUSPENDED' && prev?.state !== 'RUNNING') {
    n.startedAt = e.created_at
    n.finishedAt = null
    n.runs += 1
  }
  if (ENDS_PASS.has(state)) n.finishedAt = e.created_at
  if (state === 'FINISHED' && prev?.state === 'FAILED') n.skip = true
  const error = errorOf(e.data)
  if (state === 'FAILED') n.error = error
  else if (state === 'FINISHED') {
    n.errorIgnored = (e.data as { error_ignored?: unknown } | null)?.error_ignored === true
    n.error = n.errorIgnored ? error : null
  } else if (state === 'RUNNING' || state === 'READY') n.error = null
  return n
}

/** Pure: the state after `events` (in seq order; duplicates and stale events are skipped). */
export function reduceEvents(live: TaskLive, events: readonly LiveEvent[]): TaskLive {
  let s = live
  let nodes: Record<string, NodeLive> | null = null
  const added: LiveEvent[] = []
  for (const e of events) {
    if (e.seq <= s.lastSeq) continue
    added.push(e)
    s = { ...s, lastSeq: e.seq }
    if (e.type === 'task_state') {
      const state = e.state as TaskState
      s = {
        ...s,
        taskState: state,
        createdAt: state === 'CREATED' ? e.created_at : s.createdAt,
        startedAt: state === 'RUNNING' && s.startedAt === null ? e.created_at : s.startedAt,
        finishedAt: FINAL.has(state) ? e.created_at : s.finishedAt,
      }
    } else if (e.node_id !== null) {
      nodes ??= { ...s.nodes }
      nodes[e.node_id] = nextNode(nodes[e.node_id], e)
    }
  }
  if (added.length === 0) return live
  return { ...s, nodes: nodes ?? s.nodes, events: [...live.events, ...added] }
}

/** The state the task shows: FAILED while it runs and a node waits after failing. */
export function displayedState(live: TaskLive): TaskState | 'FAILED' | null {
  if (live.taskState === null) return null
  return displayedTaskState(
    live.taskState,
    Object.values(live.nodes).map((n) => n.state),
  )
}

export const isEnded = (live: Pick<TaskLive, 'taskState'>) =>
  live.taskState !== null && FINAL.has(live.taskState)

/** What the canvas draws beside the nodes' own states. */
export interface Derived {
  displayed: TaskState | 'FAILED' | null
  wontRun: ReadonlySet<string>
  /** failed nodes, in the order they failed */
  failed: readonly string[]
}

export function derive(live: TaskLive, graph: DrawGraph | null): Derived {
  const failed = Object.entries(live.nodes)
    .filter(([, n]) => n.state === 'FAILED')
    .sort((a, b) => (a[1].finishedAt ?? 0) - (b[1].finishedAt ?? 0))
    .map(([id]) => id)
  return {
    displayed: displayedState(live),
    wontRun: graph ? wontRun(graph, (id) => live.nodes[id]?.state, isEnded(live)) : new Set(),
    failed,
  }
}

export const REPAINT_MARK = 'stdops:repaint'

/**
 * The live state as an external store for React: events are buffered and applied once per
 * animation frame (a burst of events is one render), and each applied batch leaves a
 * `stdops:repaint` performance measure from its first event's arrival to the frame after it was
 * drawn. Components read only the slice they show (one node), so a state change re-renders that
 * node alone and never the layout.
 */
export interface TaskStore {
  get(): TaskLive
  derived(): Derived
  subscribe(listener: () => void): () => void
  push(events: LiveEvent[]): void
  /** Applies what is buffered now (tests; and before a resubscription reads lastSeq). */
  flush(): void
}

export function createTaskStore(graph: DrawGraph | null, schedule = defaultSchedule): TaskStore {
  let live = EMPTY_LIVE
  let derived = derive(live, graph)
  const listeners = new Set<() => void>()
  let buffer: LiveEvent[] = []
  let firstArrival = 0
  let scheduled = false
  const flush = () => {
    scheduled = false
    if (buffer.length === 0) return
    const batch = buffer
    buffer = []
    const next = reduceEvents(live, batch)
    if (next === live) return
    live = next
    derived = derive(live, graph)
    for (const l of listeners) l()
    const since = firstArrival
    schedule(() => performance.measure(REPAINT_MARK, { start: since, end: performance.now() }))
  }
  return {
    get: () => live,
    derived: () => derived,
    subscribe(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    push(events) {
      if (buffer.length === 0) firstArrival = performance.now()
      buffer.push(...events)
      if (!scheduled) {
        scheduled = true
        schedule(flush)
      }
    },
    flush,
  }
}

function defaultSchedule(fn: () => void) {
  if (typeof requestAnimationFrame === 'function') requestAnimationFrame(() => fn())
  else setTimeout(fn, 0)
}
