import { NotFoundError, type TaskState } from '@stdops/core'
import { sql } from '@stdops/db'
import type { Caller } from './auth'
import type { Deps } from './deps'
import { authorize, type ProjectRef, resolveScope } from './projects'

/**
 * "Why is it waiting?": for each node in line to run, what it waits for, read from the engine's
 * own rows (node states and due work), so the answer is what the engine will act on.
 */

export const WAIT_REASONS = [
  /** executing on a worker now */
  'running',
  /** waiting for a node callback (an approval point, or a component that asked for one) since `since` */
  'callback',
  /** a durable timer due at `due_at` */
  'timer',
  /** the task is paused: it starts when the task is resumed */
  'task_paused',
  /** the run reached a node held by a node pause: it starts when the node is resumed */
  'node_paused',
  /** failed, and its automatic retry is due at `due_at` */
  'auto_retry',
  /** failed: waits for an operator (retry, skip) */
  'failed',
  /** due since `since` and not yet taken by a worker: the workers are busy, or none runs */
  'backlog',
] as const
export type WaitReason = (typeof WAIT_REASONS)[number]

export interface NodeWait {
  node_id: string
  name: string
  reason: WaitReason
  /** epoch ms: since when it waits (null when unknown) */
  since: number | null
  /** epoch ms: when a timer is due */
  due_at: number | null
  /** the error of a failed node */
  error: string | null
}

interface NodeRow {
  node_id: string
  state: string
  /** held by a node pause */
  held?: unknown
  /** what a RUNNING node waits for: `callback`, `retry` (its automatic retry's interval) */
  wait?: string | null
  error: string | null
  started_at: number | string | null
  finished_at: number | string | null
}
interface JobRow {
  node_id: string
  kind: string
  due_at: number | string
  lease_owner: string | null
}

const num = (v: number | string | null) => (v === null ? null : Number(v))

/** Pure: the waits of a task, from its state, its live node rows and its due work. */
export function explainWaits(input: {
  taskState: TaskState
  pausedAt: number | null
  now: number
  names: Record<string, string>
  nodes: NodeRow[]
  jobs: JobRow[]
}): NodeWait[] {
  const { taskState, pausedAt, now, names, nodes, jobs } = input
  const jobsOf = new Map<string, JobRow[]>()
  for (const j of jobs) jobsOf.set(j.node_id, [...(jobsOf.get(j.node_id) ?? []), j])
  const waits: NodeWait[] = []
  const add = (
    node_id: string,
    reason: WaitReason,
    since: number | null,
    due_at: number | null = null,
    error: string | null = null,
  ) => waits.push({ node_id, name: names[node_id] ?? '', reason, since, due_at, error })
  for (const n of nodes) {
    const mine = jobsOf.get(n.node_id) ?? []
    const timer = mine.find((j) => j.kind === 'timer')
    const work = mine.find((j) => j.kind === 'node')
    const started = num(n.started_at)
    const due = timer ?? work
    if (n.wait === 'retry' && due)
      add(n.node_id, 'auto_retry', num(n.finished_at), Number(due.due_at), n.error)
    else if (n.state === 'FAILED') add(n.node_id, 'failed', num(n.finished_at), null, n.error)
    // Held and reached (a held node the run has not reached yet is not in line: nothing waits on it).
    else if (
      Boolean(n.held) &&
      (n.state === 'SUSPENDED' || (n.state === 'READY' && work && !work.lease_owner))
    )
      add(n.node_id, 'node_paused', num(n.started_at) ?? num(n.finished_at))
    else if (n.state === 'RUNNING' || n.state === 'READY') {
      if (timer) add(n.node_id, 'timer', started, Number(timer.due_at))
      else if (work?.lease_owner) add(n.node_id, 'running', started)
      else if (work && taskState === 'SUSPENDED') add(n.node_id, 'task_paused', pausedAt)
      else if (work && Number(work.due_at) > now) add(n.node_id, 'timer', started, Number(work.due_at))
      else if (work) add(n.node_id, 'backlog', Number(work.due_at))
      else if (n.state === 'RUNNING') add(n.node_id, 'callback', started)
    }
  }
  const order: Record<WaitReason, number> = {
    failed: 0,
    callback: 1,
    node_paused: 2,
    task_paused: 3,
    backlog: 4,
    auto_retry: 5,
    timer: 6,
    running: 7,
  }
  return waits.sort((a, b) => order[a.reason] - order[b.reason] || a.node_id.localeCompare(b.node_id))
}

export async function taskWaits(deps: Deps, caller: Caller, ref: ProjectRef, taskId: number) {
  const { project, task } = await resolveScope(deps, caller, ref, taskId)
  if (!task) throw new NotFoundError(`task[id=${taskId}] does not exist in project(${ref.bk_biz_id})`)
  authorize(caller, project, 'task_view')
  const [[t], nodes, jobs, [paused]] = await Promise.all([
    deps.db.query<{ state: TaskState; pipeline_tree: string }>(
      sql`SELECT state, pipeline_tree FROM tasks WHERE id = ${taskId}`,
    ),
    deps.db.query<NodeRow>(
      sql`SELECT node_id, state, held, wait, error, started_at, finished_at FROM node_states
          WHERE task_id = ${taskId} AND state IN ('READY', 'RUNNING', 'FAILED', 'SUSPENDED')`,
    ),
    deps.db.query<JobRow>(
      sql`SELECT node_id, kind, due_at, lease_owner FROM jobs WHERE task_id = ${taskId} AND node_id <> ''`,
    ),
    deps.db.query<{ created_at: number | string }>(
      sql`SELECT created_at FROM task_events WHERE task_id = ${taskId} AND type = 'task_state' AND state = 'SUSPENDED'
          ORDER BY seq DESC LIMIT 1`,
    ),
  ])
  if (!t) throw new Error(`task ${taskId} vanished`)
  const tree = JSON.parse(t.pipeline_tree) as { activities?: Record<string, { name?: unknown }> }
  const names = Object.fromEntries(
    Object.entries(tree.activities ?? {}).map(([id, a]) => [id, typeof a.name === 'string' ? a.name : '']),
  )
  const now = deps.now()
  const live = t.state === 'RUNNING' || t.state === 'SUSPENDED'
  return {
    task_id: taskId,
    state: t.state,
    checked_at: now,
    waits: live
      ? explainWaits({
          taskState: t.state,
          pausedAt: paused ? Number(paused.created_at) : null,
          now,
          names,
          nodes,
          jobs,
        })
      : [],
  }
}
