/**
 * Every statement the engine runs. Each goes through the `sql` tagged template; the SQL is the
 * same on SQLite and PostgreSQL except where `provider` says otherwise (claiming).
 */
import {
  buildGraph,
  type Constant,
  ConstantSchema,
  type NodeState,
  PipelineTreeSchema,
  type TaskState,
} from '@stdops/core'
import { type Db, type Executor, empty, join, type Sql, sql } from '@stdops/db'
import { z } from 'zod'
import { insertEvents } from './events'
import { type NodeRow, type Plan, prepareGraph, type TaskGraph } from './plan'

export type JobKind = 'node' | 'timer' | 'callback'

export interface ClaimedJob {
  id: number
  taskId: number
  nodeId: string
  kind: JobKind
  /** The attempt this claim counted: the fence for completing it. */
  attempts: number
  payload: string | null
}

/** The task row as a transaction that holds it sees it. */
export interface LockedTask {
  eventSeq: number
  state: TaskState
  constants: Record<string, Constant>
  callbackUrl: string | null
  callbackStatus: string | null
}

const ConstantsSchema = z.record(z.string(), ConstantSchema)

// ---- claiming and leases ----------------------------------------------------------------------

/**
 * Claims up to `limit` due jobs for `worker`, counting the attempt at claim time. A job is due when
 * its `due_at` has passed and nobody holds an unexpired lease on it. Node jobs are claimed only
 * while their task is RUNNING; timers also while it is SUSPENDED (a node that is already running
 * carries on through a pause); callback_url jobs in any state.
 *
 * Why it is safe: on PostgreSQL the inner SELECT locks the rows it picks (`FOR UPDATE OF j SKIP
 * LOCKED`), so two workers claiming at once never pick the same job, and a row whose lease was
 * just renewed or taken is re-checked against the WHERE clause under its lock before it is
 * updated. On SQLite there is one writer and the statement runs inside a transaction. The task's
 * state read here is only a filter: the node start re-checks it under the task row's lock
 * (startNode), which is what orders starts against pause and revoke.
 */
export const PER_TASK_CLAIM = 8

interface JobRow {
  id: number
  task_id: number
  node_id: string
  kind: JobKind
  attempts: number
  payload: string | null
}

/** Claimed rows, oldest first. */
function toClaimed(rows: JobRow[]): ClaimedJob[] {
  return rows
    .map((r) => ({
      id: Number(r.id),
      taskId: Number(r.task_id),
      nodeId: r.node_id,
      kind: r.kind,
      attempts: Number(r.attempts),
      payload: r.payload,
    }))
    .sort((a, b) => a.id - b.id)
}

export async function claimJobs(
  db: Db,
  worker: string,
  now: number,
  leaseMs: number,
  limit: number,
): Promise<ClaimedJob[]> {
  const pg = db.provider === 'postgresql'
  const lock = pg ? sql`FOR UPDATE OF j SKIP LOCKED` : empty
  // PostgreSQL: at most PER_TASK_CLAIM jobs of one task per claim, so that one wide fork does not
  // fill every slot while other tasks wait (its transactions run one at a time anyway: they all
  // take its task row). The worker claims again at once while claims find work, so a fork of slow
  // components still fills the worker. SQLite has one writer: nothing to spread.
  const fair = pg
    ? sql`AND j.id IN (SELECT d.id FROM (
              SELECT id, row_number() OVER (PARTITION BY task_id ORDER BY due_at, id) AS rn FROM jobs
              WHERE due_at <= ${now} AND (lease_until IS NULL OR lease_until < ${now})) d
            WHERE d.rn <= ${PER_TASK_CLAIM})`
    : empty
  const claim = (exec: Executor) =>
    exec.query<JobRow>(
      sql`UPDATE jobs SET lease_owner = ${worker}, lease_until = ${now + leaseMs}, attempts = attempts + 1
          WHERE id IN (
            SELECT j.id FROM jobs j JOIN tasks t ON t.id = j.task_id
            WHERE j.due_at <= ${now} AND (j.lease_until IS NULL OR j.lease_until < ${now}) ${fair}
              AND (j.kind = 'callback' OR t.state = 'RUNNING' OR (j.kind = 'timer' AND t.state = 'SUSPENDED'))
            ORDER BY j.due_at, j.id
            LIMIT ${limit}
            ${lock})
          RETURNING id, task_id, node_id, kind, attempts, payload`,
    )
  const rows = db.provider === 'postgresql' ? await claim(db) : await db.tx(claim)
  return toClaimed(rows)
}

/**
 * Inside a completion's transaction, which holds the task row: leases to `worker` the node jobs
 * that completion just inserted for `nodeIds`, so that it can start them in the same transaction
 * (the attempt is counted, as at any claim).
 */
export async function claimTaskJobs(
  tx: Executor,
  worker: string,
  taskId: number,
  nodeIds: readonly string[],
  now: number,
  leaseMs: number,
): Promise<ClaimedJob[]> {
  if (nodeIds.length === 0) return []
  const rows = await tx.query<JobRow>(
    sql`UPDATE jobs SET lease_owner = ${worker}, lease_until = ${now + leaseMs}, attempts = attempts + 1
        WHERE task_id = ${taskId} AND kind = 'node' AND lease_owner IS NULL AND node_id IN (${join(nodeIds)})
        RETURNING id, task_id, node_id, kind, attempts, payload`,
  )
  return toClaimed(rows)
}

/**
 * Renews this worker's leases on `ids` and, in the same statement, learns which of them are gone:
 * a job that is not returned was deleted (its task revoked), belongs to a revoked task, or was
 * taken over by another worker. The caller aborts those.
 */
export async function renewLeases(
  db: Db,
  worker: string,
  ids: readonly number[],
  until: number,
): Promise<Set<number>> {
  if (ids.length === 0) return new Set()
  const rows = await db.query<{ id: number }>(
    sql`UPDATE jobs SET lease_until = ${until}
        WHERE lease_owner = ${worker} AND id IN (${join(ids)})
          AND EXISTS (SELECT 1 FROM tasks t WHERE t.id = jobs.task_id AND t.state <> 'REVOKED')
        RETURNING id`,
  )
  return new Set(rows.map((r) => Number(r.id)))
}

/** Gives up this worker's leases so that any worker can take the jobs at once. */
export async function releaseLeases(exec: Executor, worker: string, ids: readonly number[]): Promise<number> {
  if (ids.length === 0) return 0
  return exec.execute(
    sql`UPDATE jobs SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = ${worker} AND id IN (${join(ids)})`,
  )
}

/** True while `job` is still held by `worker` under the attempt it claimed. */
function heldBy(job: ClaimedJob, worker: string): Sql {
  return sql`id = ${job.id} AND lease_owner = ${worker} AND attempts = ${job.attempts}`
}

export async function stillHeld(tx: Executor, job: ClaimedJob, worker: string): Promise<boolean> {
  const rows = await tx.query(sql`SELECT id FROM jobs WHERE ${heldBy(job, worker)}`)
  return rows.length === 1
}

/** Deletes the job if `worker` still holds it under this attempt; false means the result is fenced. */
export async function deleteHeldJob(tx: Executor, job: ClaimedJob, worker: string): Promise<boolean> {
  return (await tx.execute(sql`DELETE FROM jobs WHERE ${heldBy(job, worker)}`)) === 1
}

/** Turns the held job into a timer due at `until`, lease cleared: no worker waits for it. */
export async function deferHeldJob(
  tx: Executor,
  job: ClaimedJob,
  worker: string,
  until: number,
  kind: JobKind,
): Promise<boolean> {
  const n = await tx.execute(
    sql`UPDATE jobs SET kind = ${kind}, due_at = ${until}, lease_owner = NULL, lease_until = NULL WHERE ${heldBy(job, worker)}`,
  )
  return n === 1
}

export async function recordFenced(
  tx: Executor,
  job: ClaimedJob,
  worker: string,
  reason: string,
  now: number,
): Promise<void> {
  await tx.execute(sql`INSERT INTO fenced_results (job_id, task_id, node_id, worker, attempt, reason, created_at)
    VALUES (${job.id}, ${job.taskId}, ${job.nodeId}, ${worker}, ${job.attempts}, ${reason}, ${now})`)
}

/** Why a result does not apply, for the fenced_results row. */
export async function fenceReason(tx: Executor, job: ClaimedJob, worker: string): Promise<string> {
  const [row] = await tx.query<{ lease_owner: string | null; attempts: number }>(
    sql`SELECT lease_owner, attempts FROM jobs WHERE id = ${job.id}`,
  )
  if (!row) return 'job gone (task revoked or node completed)'
  if (row.lease_owner !== worker) {
    return `lease taken over by ${row.lease_owner ?? 'nobody (released)'} (attempt ${Number(row.attempts)})`
  }
  return `lease renewed under a later attempt ${Number(row.attempts)}`
}

// ---- the task row ------------------------------------------------------------------------------

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

/** The task's node rows: all of them, those in `only.states`, or those of `only.ids`. */
export async function loadNodes(
  exec: Executor,
  taskId: number,
  only: { states?: readonly NodeState[]; ids?: readonly string[] } = {},
): Promise<Map<string, NodeRow>> {
  const filter =
    only.ids !== undefined
      ? sql`AND node_id IN (${join(only.ids)})`
      : only.states !== undefined
        ? sql`AND state IN (${join(only.states)})`
        : empty
  const rows = await exec.query<{
    node_id: string
    state: NodeState
    version: number
    loop: number
    retry: number
    skip: unknown
    error_ignored: unknown
    arrivals: number
    expected: number
    attempt: number
    error: string | null
    started_at: number | null
    finished_at: number | null
  }>(sql`SELECT node_id, state, version, loop, retry, skip, error_ignored, arrivals, expected, attempt, error, started_at, finished_at
         FROM node_states WHERE task_id = ${taskId} ${filter}`)
  const nodes = new Map<string, NodeRow>()
  for (const r of rows) {
    nodes.set(r.node_id, {
      state: r.state,
      version: Number(r.version),
      loop: Number(r.loop),
      retry: Number(r.retry),
      skip: Boolean(r.skip),
      errorIgnored: Boolean(r.error_ignored),
      arrivals: Number(r.arrivals),
      expected: Number(r.expected),
      attempt: Number(r.attempt),
      error: r.error,
      startedAt: r.started_at === null ? null : Number(r.started_at),
      finishedAt: r.finished_at === null ? null : Number(r.finished_at),
    })
  }
  return nodes
}

export async function readNodeInputs(
  exec: Executor,
  taskId: number,
  nodeId: string,
): Promise<{ state: NodeState; inputs: unknown } | null> {
  const [row] = await exec.query<{ state: NodeState; inputs: string | null }>(
    sql`SELECT state, inputs FROM node_states WHERE task_id = ${taskId} AND node_id = ${nodeId}`,
  )
  if (!row) return null
  return { state: row.state, inputs: row.inputs === null ? {} : JSON.parse(row.inputs) }
}

// ---- applying a plan -----------------------------------------------------------------------------

export interface Applied {
  /** Jobs inserted that are due now (wake workers). */
  jobs: number
  finished: boolean
  callbackEnqueued: boolean
}

/**
 * Performs a plan inside the transaction that holds the task row (`task` from lockTask): node rows,
 * history, events, next jobs, constants, and the task's own move to FINISHED with its outputs and
 * its callback job.
 */
export async function applyPlan(
  tx: Executor,
  taskId: number,
  task: LockedTask,
  plan: Plan,
  now: number,
): Promise<Applied> {
  if (plan.rows.length > 0) {
    const values = plan.rows.map(
      (
        r,
      ) => sql`(${taskId}, ${r.nodeId}, ${r.state}, ${r.version}, ${r.loop}, ${r.retry}, ${r.skip}, ${r.errorIgnored},
                 ${r.arrivals}, ${r.expected}, ${r.attempt}, ${r.inputs ?? null}, ${r.outputs ?? null}, ${r.error},
                 ${r.startedAt}, ${r.finishedAt})`,
    )
    await tx.execute(sql`INSERT INTO node_states
        (task_id, node_id, state, version, loop, retry, skip, error_ignored, arrivals, expected, attempt, inputs, outputs, error, started_at, finished_at)
      VALUES ${join(values)}
      ON CONFLICT (task_id, node_id) DO UPDATE SET
        state = excluded.state, version = excluded.version, loop = excluded.loop, retry = excluded.retry, skip = excluded.skip,
        error_ignored = excluded.error_ignored, arrivals = excluded.arrivals, expected = excluded.expected,
        attempt = excluded.attempt, inputs = COALESCE(excluded.inputs, node_states.inputs),
        outputs = COALESCE(excluded.outputs, node_states.outputs), error = excluded.error,
        started_at = excluded.started_at, finished_at = excluded.finished_at`)
  }
  for (const h of plan.historyCloses) {
    await tx.execute(sql`UPDATE node_histories SET state = ${h.state}, outputs = ${h.outputs}, error = ${h.error}, finished_at = ${h.finishedAt}
      WHERE task_id = ${taskId} AND node_id = ${h.nodeId} AND loop = ${h.loop} AND attempt = ${h.attempt} AND finished_at IS NULL`)
  }
  if (plan.historyInserts.length > 0) {
    const values = plan.historyInserts.map(
      (
        h,
      ) => sql`(${taskId}, ${h.nodeId}, ${h.loop}, ${h.attempt}, ${h.state}, ${h.worker}, ${h.inputs}, ${h.outputs}, ${h.error},
                 ${h.startedAt}, ${h.finishedAt})`,
    )
    await tx.execute(sql`INSERT INTO node_histories
        (task_id, node_id, loop, attempt, state, worker, inputs, outputs, error, started_at, finished_at)
      VALUES ${join(values)}`)
  }
  const jobs: Sql[] = plan.jobs.map(
    (nodeId) => sql`(${taskId}, ${nodeId}, 'node', ${now}, ${null}, ${null}, 0, ${null}, ${now})`,
  )
  const callbackEnqueued =
    plan.finish !== undefined && task.callbackUrl !== null && task.callbackStatus === null
  if (callbackEnqueued) jobs.push(callbackJob(taskId, now))
  if (jobs.length > 0) {
    await tx.execute(sql`INSERT INTO jobs (task_id, node_id, kind, due_at, lease_owner, lease_until, attempts, payload, created_at)
      VALUES ${join(jobs)}`)
  }

  await insertEvents(tx, taskId, task.eventSeq + 1, plan.events, now)
  const sets: Sql[] = []
  if (plan.events.length > 0) sets.push(sql`event_seq = ${task.eventSeq + plan.events.length}`)
  if (plan.constants) sets.push(sql`constants = ${JSON.stringify(plan.constants)}`)
  if (plan.finish) {
    sets.push(sql`state = 'FINISHED'`, sql`version = version + 1`, sql`finished_at = ${now}`)
    sets.push(sql`outputs = ${JSON.stringify(plan.finish.outputs)}`)
  }
  if (callbackEnqueued) sets.push(sql`callback_status = 'pending'`)
  if (sets.length > 0) await tx.execute(sql`UPDATE tasks SET ${join(sets)} WHERE id = ${taskId}`)
  return {
    jobs: plan.jobs.length + (callbackEnqueued ? 1 : 0),
    finished: plan.finish !== undefined,
    callbackEnqueued,
  }
}

function callbackJob(taskId: number, now: number): Sql {
  return sql`(${taskId}, '', 'callback', ${now}, ${null}, ${null}, 0, ${null}, ${now})`
}

/** Enqueues the task's callback_url job unless there is none or it was enqueued before. */
export async function enqueueCallback(
  tx: Executor,
  taskId: number,
  task: LockedTask,
  now: number,
): Promise<boolean> {
  if (task.callbackUrl === null || task.callbackStatus !== null) return false
  await tx.execute(sql`INSERT INTO jobs (task_id, node_id, kind, due_at, lease_owner, lease_until, attempts, payload, created_at)
    VALUES ${callbackJob(taskId, now)}`)
  await tx.execute(sql`UPDATE tasks SET callback_status = 'pending' WHERE id = ${taskId}`)
  return true
}

/** Drops the task's node and timer jobs (its callback job stays). */
export async function dropTaskJobs(tx: Executor, taskId: number): Promise<number> {
  return tx.execute(sql`DELETE FROM jobs WHERE task_id = ${taskId} AND kind <> 'callback'`)
}

/** Closes every open history row of the task (the nodes were revoked). */
export async function closeOpenHistories(
  tx: Executor,
  taskId: number,
  state: NodeState,
  now: number,
): Promise<void> {
  await tx.execute(sql`UPDATE node_histories SET state = ${state}, finished_at = ${now}
    WHERE task_id = ${taskId} AND finished_at IS NULL`)
}

export async function countRunningNodes(exec: Executor, taskId: number): Promise<number> {
  const [row] = await exec.query<{ n: number }>(
    sql`SELECT COUNT(*) AS n FROM node_states WHERE task_id = ${taskId} AND state = 'RUNNING'`,
  )
  return Number(row?.n ?? 0)
}
