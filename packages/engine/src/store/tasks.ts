/** The task row: its lock, its parsed tree, its compare-and-set, its callback_url, its records. */
import {
  buildTaskGraph,
  type Constant,
  ConstantSchema,
  PipelineTreeSchema,
  type TaskState,
} from '@stdops/core'
import { type Executor, empty, join, type Sql, sql } from '@stdops/db'
import { z } from 'zod'
import { prepareGraph, type TaskGraph } from '../plan'
import { TASK_EVENTS_CHANNEL } from './events'
import { callbackJobRow, HELD_OFFSET, insertJobs } from './jobs'

/** The task row as a transaction that holds it sees it. */
export interface LockedTask {
  /** The task's project (a job started in a completion's transaction is counted against its share). */
  projectId: number
  eventSeq: number
  state: TaskState
  constants: Record<string, Constant>
  /** Each started subprocess's child constants, by SubProcess node id. */
  scopeConstants: Record<string, Record<string, Constant>>
  callbackUrl: string | null
  callbackStatus: string | null
  /** When the task started (epoch ms); null before its start. */
  startedAt: number | null
  /** The W3C traceparent of the request that started it, when that request was traced. */
  traceparent: string | null
}

const ConstantsSchema = z.record(z.string(), ConstantSchema)
const ScopeConstantsSchema = z.record(z.string(), ConstantsSchema)

/** The task row's columns LockedTask is read from. */
export interface TaskRowDb {
  project_id: number
  event_seq: number
  state: TaskState
  constants: string
  scope_constants: string
  callback_url: string | null
  callback_status: string | null
  started_at: number | string | null
  traceparent: string | null
}

export function parseTaskRow(row: TaskRowDb): LockedTask {
  return {
    projectId: Number(row.project_id),
    eventSeq: Number(row.event_seq),
    state: row.state,
    constants: ConstantsSchema.parse(JSON.parse(row.constants)),
    scopeConstants: ScopeConstantsSchema.parse(JSON.parse(row.scope_constants)),
    callbackUrl: row.callback_url,
    callbackStatus: row.callback_status,
    startedAt: row.started_at === null ? null : Number(row.started_at),
    traceparent: row.traceparent ?? null,
  }
}

/**
 * Takes the task row's lock for this transaction (a no-op UPDATE) and reads what the engine
 * decides on. Every engine transaction that changes a task's nodes on SQLite starts here, and on
 * PostgreSQL every one but a node step (see lockStep and writeStep), so it is ordered with the
 * API's compare-and-set on the same row: a node start that requires RUNNING either commits before
 * a pause or sees SUSPENDED after it. The event numbers are taken under this lock and `event_seq`
 * set at the end (applyPlan), so a transaction that turns out to apply nothing (fenced) leaves no
 * gap in the event log.
 *
 * `steps: 'exclude'` (PostgreSQL; node actions and poison jobs, which change node rows the engine's
 * node steps may have read): first takes the task's advisory lock exclusively, which every node
 * step holds shared from its first statement, so that no step is between its read and its write
 * meanwhile. Taken before the row, as the steps do (they take the row last), so that neither
 * waits for the other in a cycle; only a transaction that holds no lock of the task yet may ask
 * for it.
 */
export async function lockTask(
  tx: Executor,
  taskId: number,
  opts: { running?: boolean; steps?: 'exclude' } = {},
): Promise<LockedTask | null> {
  const onlyRunning = opts.running ? sql`AND state = 'RUNNING'` : empty
  const returning = sql`RETURNING project_id, event_seq, state, constants, scope_constants, callback_url, callback_status, started_at, traceparent`
  const [row] = await tx.query<TaskRowDb>(
    opts.steps === 'exclude' && tx.provider === 'postgresql'
      ? sql`WITH a AS (SELECT pg_advisory_xact_lock(CAST(${-taskId} AS BIGINT)) AS locked)
          UPDATE tasks SET event_seq = event_seq WHERE id = ${taskId} ${onlyRunning} AND EXISTS (SELECT 1 FROM a) ${returning}`
      : sql`UPDATE tasks SET event_seq = event_seq WHERE id = ${taskId} ${onlyRunning} ${returning}`,
  )
  return row ? parseTaskRow(row) : null
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
    const graph = prepareGraph(buildTaskGraph(tree), tree.outputs)
    this.graphs.set(taskId, graph)
    if (this.graphs.size > this.max) {
      const oldest = this.graphs.keys().next().value
      if (oldest !== undefined) this.graphs.delete(oldest)
    }
    return graph
  }
}

/**
 * The task's callback record, as bk-sops sends it: `task_id`, `task_success`, and (ours)
 * `task_status`, the displayed state; `task_outputs` is sent with callback_version v2 only.
 */
export interface CallbackRecord {
  task_id: number
  task_success: boolean
  task_status: string
  task_outputs: Array<{ key: string; name: string; value: unknown }>
}

/** The task outputs as get_task_detail lists them: `{key, name, value}` for each output constant. */
export function taskOutputList(
  constants: Record<string, Constant>,
  outputs: Record<string, unknown>,
): CallbackRecord['task_outputs'] {
  return Object.entries(outputs).map(([key, value]) => ({ key, name: constants[key]?.name ?? key, value }))
}

/**
 * Records one callback_url event of the task (`finished`, `revoked`, `node_failed:<node>:<version>`)
 * and its job, in the caller's transaction. An event is recorded once: a second try of the same
 * event (a replayed transaction, a retried decision) inserts nothing. False when the task has no
 * callback_url or the event was recorded before.
 */
export async function enqueueCallbackEvent(
  tx: Executor,
  taskId: number,
  task: Pick<LockedTask, 'callbackUrl'>,
  event: string,
  nodeId: string,
  record: CallbackRecord,
  now: number,
): Promise<boolean> {
  if (task.callbackUrl === null) return false
  const [row] = await tx.query<{
    id: number
  }>(sql`INSERT INTO task_callbacks (task_id, event, node_id, body, status, attempts, created_at)
    VALUES (${taskId}, ${event}, ${nodeId}, ${JSON.stringify(record)}, 'pending', 0, ${now})
    ON CONFLICT (task_id, event) DO NOTHING RETURNING id`)
  if (!row) return false
  await insertJobs(tx, [callbackJobRow(taskId, now, Number(row.id))])
  await tx.execute(sql`UPDATE tasks SET callback_status = 'pending' WHERE id = ${taskId}`)
  return true
}

// ---- operations on the task row ---------------------------------------------------------------------

/** What a compare-and-set is decided on: the task's state under a version. */
export interface TaskVersion {
  state: TaskState
  version: number
}

export async function readTaskVersion(exec: Executor, taskId: number): Promise<TaskVersion | null> {
  const [row] = await exec.query<{ state: TaskState; version: number }>(
    sql`SELECT state, version FROM tasks WHERE id = ${taskId}`,
  )
  return row ? { state: row.state, version: Number(row.version) } : null
}

/** The columns a task operation sets beside its state. */
export interface TaskMove {
  next: TaskState
  /** `start`: the run's start time, its executor, and the traceparent of the request that started it. */
  started?: { at: number; executor: string; traceparent: string | null }
  /** A final state reached by an operation (REVOKED). */
  finishedAt?: number
}

/**
 * The compare-and-set of a task operation: moves the task to `move.next` only if its version is
 * still `expected`, and takes the next event number in the same statement. Returns that event
 * number, or null when the version moved on (the caller reads again and decides again).
 */
export async function compareAndSetTask(
  tx: Executor,
  taskId: number,
  expected: number,
  move: TaskMove,
): Promise<number | null> {
  const sets: Sql[] = [sql`state = ${move.next}`, sql`version = version + 1`, sql`event_seq = event_seq + 1`]
  if (move.started)
    sets.push(
      sql`started_at = ${move.started.at}`,
      sql`executor = ${move.started.executor}`,
      sql`traceparent = ${move.started.traceparent}`,
    )
  if (move.finishedAt !== undefined) sets.push(sql`finished_at = ${move.finishedAt}`)
  const [row] = await tx.query<{ event_seq: number }>(
    sql`UPDATE tasks SET ${join(sets)} WHERE id = ${taskId} AND version = ${expected} RETURNING event_seq`,
  )
  return row ? Number(row.event_seq) : null
}

/** One row of `operate_records`: who did what to a task (or one of its nodes), from where. */
export interface OperateRecordInput {
  taskId: number
  projectId: number
  operator: string
  /** The app that made the call; `''` when none is known. */
  appCode?: string
  type: string
  source: string
  /** `''` for a task operation. */
  nodeId?: string
  /** What the operation took (get_task_operate_record's `extra_info`); absent: nothing. */
  extraInfo?: Record<string, unknown>
  at: number
}

export async function insertOperateRecord(tx: Executor, r: OperateRecordInput): Promise<void> {
  const extra = r.extraInfo === undefined ? null : JSON.stringify(r.extraInfo)
  await tx.execute(sql`INSERT INTO operate_records (task_id, project_id, node_id, operator, app_code, operate_type, operate_source, extra_info, created_at)
    VALUES (${r.taskId}, ${r.projectId}, ${r.nodeId ?? ''}, ${r.operator}, ${r.appCode ?? ''}, ${r.type}, ${r.source}, ${extra}, ${r.at})`)
}

/**
 * The same compare-and-set as compareAndSetTask with its task event and its operate record, as
 * ONE autocommit statement on PostgreSQL, for operations that write nothing else (pause,
 * resume): the update, the event and the record are data-modifying CTEs of one statement, all or
 * nothing. A transaction would hold a pooled connection for several round trips; this holds it
 * for one. The times are the database's clock_timestamp(), read after the UPDATE holds the row.
 * Returns that time, or null when the version moved on.
 */
export async function compareAndSetTaskInOneStatement(
  exec: Executor,
  taskId: number,
  expected: number,
  next: TaskState,
  record: Omit<OperateRecordInput, 'taskId' | 'at'>,
): Promise<number | null> {
  const nowMs = sql`(extract(epoch from clock_timestamp()) * 1000)::bigint`
  // Pause holds the task's node jobs and resume releases them, in the same statement (as
  // holdTaskJobs does in a transaction). Its snapshot may miss a job that a completion committed
  // while the statement waited for the task row: such a job was inserted unheld (nodeJobRows), so
  // pause only leaves it for claims to pass by (they check the task's state), and resume has
  // nothing to release in it. A held job changed meanwhile is re-checked under its row lock.
  const hold =
    next === 'SUSPENDED'
      ? sql`h AS (UPDATE jobs SET held = ${true}, due_at = due_at + ${HELD_OFFSET}
              WHERE task_id = (SELECT id FROM u) AND kind = 'node' AND held = ${false}),`
      : next === 'RUNNING'
        ? sql`h AS (UPDATE jobs SET held = ${false}, due_at = due_at - ${HELD_OFFSET}
              WHERE task_id = (SELECT id FROM u) AND held = ${true}),`
        : empty
  const [row] = await exec.query<{ at: number }>(sql`WITH u AS (
      UPDATE tasks SET state = ${next}, version = version + 1, event_seq = event_seq + 1
      WHERE id = ${taskId} AND version = ${expected} RETURNING id, event_seq), ${hold}
    e AS (INSERT INTO task_events (task_id, seq, type, node_id, state, data, created_at)
      SELECT id, event_seq, 'task_state', NULL, ${next}, NULL, ${nowMs} FROM u),
    r AS (INSERT INTO operate_records (task_id, project_id, node_id, operator, app_code, operate_type, operate_source, created_at)
      SELECT id, ${record.projectId}, ${record.nodeId ?? ''}, ${record.operator}, ${record.appCode ?? ''}, ${record.type}, ${record.source}, ${nowMs} FROM u)
    SELECT ${nowMs} AS at FROM u`)
  if (!row) return null
  exec.publish(TASK_EVENTS_CHANNEL, String(taskId))
  return Number(row.at)
}

// ---- callback_url ---------------------------------------------------------------------------------

export interface CallbackTarget {
  url: string
  version: 'v1' | 'v2'
  record: CallbackRecord
}

/**
 * What a callback job sends: its task_callbacks row (`callbackId`), or for a job enqueued before
 * callback events were recorded (no payload), the task's final state. Null when there is nothing
 * (more) to send.
 */
export async function readCallbackTarget(
  exec: Executor,
  taskId: number,
  callbackId: number | null,
): Promise<CallbackTarget | null> {
  const [t] = await exec.query<{
    state: string
    callback_url: string | null
    callback_status: string | null
    callback_version: string
  }>(sql`SELECT state, callback_url, callback_status, callback_version FROM tasks WHERE id = ${taskId}`)
  if (!t?.callback_url) return null
  const version = t.callback_version === 'v2' ? 'v2' : 'v1'
  if (callbackId === null) {
    if (t.callback_status === 'success' || (t.state !== 'FINISHED' && t.state !== 'REVOKED')) return null
    const record = {
      task_id: taskId,
      task_success: t.state === 'FINISHED',
      task_status: t.state,
      task_outputs: [],
    }
    return { url: t.callback_url, version, record }
  }
  const [c] = await exec.query<{ body: string; status: string }>(
    sql`SELECT body, status FROM task_callbacks WHERE id = ${callbackId} AND task_id = ${taskId}`,
  )
  if (!c || c.status === 'success') return null
  return { url: t.callback_url, version, record: JSON.parse(c.body) as CallbackRecord }
}

/** Records the outcome of a callback_url try on its event and, as the latest, on the task. */
export async function recordCallbackOutcome(
  tx: Executor,
  taskId: number,
  callbackId: number | null,
  outcome: { status: 'success' | 'pending' | 'failed'; attempts: number; error: string | null; at: number },
): Promise<void> {
  if (callbackId !== null) {
    await tx.execute(sql`UPDATE task_callbacks SET status = ${outcome.status}, attempts = ${outcome.attempts},
      error = ${outcome.error}, sent_at = ${outcome.status === 'success' ? outcome.at : null} WHERE id = ${callbackId}`)
  }
  await tx.execute(sql`UPDATE tasks SET callback_status = ${outcome.status}, callback_attempts = ${outcome.attempts},
    callback_error = ${outcome.error} WHERE id = ${taskId}`)
}
