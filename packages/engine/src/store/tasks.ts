/** The task row: its lock, its parsed tree, its compare-and-set, its callback_url, its records. */
import { buildGraph, type Constant, ConstantSchema, PipelineTreeSchema, type TaskState } from '@stdops/core'
import { type Executor, empty, sql } from '@stdops/db'
import { z } from 'zod'
import { prepareGraph, type TaskGraph } from '../plan'
import { callbackJobRow, insertJobs } from './jobs'

/** The task row as a transaction that holds it sees it. */
export interface LockedTask {
  eventSeq: number
  state: TaskState
  constants: Record<string, Constant>
  callbackUrl: string | null
  callbackStatus: string | null
}

const ConstantsSchema = z.record(z.string(), ConstantSchema)

/**
 * Takes the task row's lock for this transaction (a no-op UPDATE) and reads what the engine
 * decides on. Every engine transaction that changes a task's nodes starts here, so it is ordered
 * with the API's compare-and-set on the same row: a node start that requires RUNNING either
 * commits before a pause or sees SUSPENDED after it. The event numbers are taken under this lock
 * and `event_seq` set at the end (applyPlan), so a transaction that turns out to apply nothing
 * (fenced) leaves no gap in the event log.
 */
export async function lockTask(
  tx: Executor,
  taskId: number,
  opts: { running?: boolean } = {},
): Promise<LockedTask | null> {
  const onlyRunning = opts.running ? sql`AND state = 'RUNNING'` : empty
  const [row] = await tx.query<{
    event_seq: number
    state: TaskState
    constants: string
    callback_url: string | null
    callback_status: string | null
  }>(
    sql`UPDATE tasks SET event_seq = event_seq WHERE id = ${taskId} ${onlyRunning}
        RETURNING event_seq, state, constants, callback_url, callback_status`,
  )
  if (!row) return null
  return {
    eventSeq: Number(row.event_seq),
    state: row.state,
    constants: ConstantsSchema.parse(JSON.parse(row.constants)),
    callbackUrl: row.callback_url,
    callbackStatus: row.callback_status,
  }
}

/** Parsed trees by task id: a task's tree does not change after creation. */
export class GraphCache {
  private readonly graphs = new Map<number, TaskGraph>()
  constructor(private readonly max = 500) {}

  async get(exec: Executor, taskId: number): Promise<TaskGraph> {
    const hit = this.graphs.get(taskId)
    if (hit) {
      this.graphs.delete(taskId)
      this.graphs.set(taskId, hit)
      return hit
    }
    const [row] = await exec.query<{ pipeline_tree: string }>(
      sql`SELECT pipeline_tree FROM tasks WHERE id = ${taskId}`,
    )
    if (!row) throw new Error(`task ${taskId} does not exist`)
    const tree = PipelineTreeSchema.parse(JSON.parse(row.pipeline_tree))
    const graph = prepareGraph(buildGraph(tree), tree.outputs)
    this.graphs.set(taskId, graph)
    if (this.graphs.size > this.max) {
      const oldest = this.graphs.keys().next().value
      if (oldest !== undefined) this.graphs.delete(oldest)
    }
    return graph
  }
}

/** Enqueues the task's callback_url job unless there is none or it was enqueued before. */
export async function enqueueCallback(
  tx: Executor,
  taskId: number,
  task: LockedTask,
  now: number,
): Promise<boolean> {
  if (task.callbackUrl === null || task.callbackStatus !== null) return false
  await insertJobs(tx, [callbackJobRow(taskId, now)])
  await tx.execute(sql`UPDATE tasks SET callback_status = 'pending' WHERE id = ${taskId}`)
  return true
}

// ---- callback_url ---------------------------------------------------------------------------------

export interface CallbackTarget {
  url: string
  body: { task_id: number; task_status: string }
}

/** The task's callback, or null when there is nothing (more) to send. */
export async function readCallbackTarget(exec: Executor, taskId: number): Promise<CallbackTarget | null> {
  const [row] = await exec.query<{
    state: string
    callback_url: string | null
    callback_status: string | null
  }>(sql`SELECT state, callback_url, callback_status FROM tasks WHERE id = ${taskId}`)
  if (!row || !row.callback_url || row.callback_status === 'success') return null
  if (row.state !== 'FINISHED' && row.state !== 'REVOKED') return null
  return { url: row.callback_url, body: { task_id: taskId, task_status: row.state } }
}

/** Records the outcome of a callback_url try on the task. */
export async function recordCallbackOutcome(
  tx: Executor,
  taskId: number,
  outcome: { status: 'success' | 'pending' | 'failed'; attempts: number; error: string | null },
): Promise<void> {
  await tx.execute(sql`UPDATE tasks SET callback_status = ${outcome.status}, callback_attempts = ${outcome.attempts},
    callback_error = ${outcome.error} WHERE id = ${taskId}`)
}
