/** Node rows and their history, and applying a plan (the rows, events and jobs one decision wrote). */
import type { Constant, NodeState } from '@stdops/core'
import {
  chunkRows,
  type Executor,
  empty,
  join,
  MAX_BOUND_PARAMETERS,
  parameterCount,
  type Sql,
  sql,
} from '@stdops/db'
import type { HistoryClose, HistoryInsert, NodeRow, NodeWrite, Plan } from '../plan'
import { insertEvents, TASK_EVENTS_CHANNEL, type TaskEventInput } from './events'
import { type ClaimedJob, heldBy, insertJobs, nodeJobRows } from './jobs'
import { enqueueCallbackEvent, type LockedTask, taskOutputList } from './tasks'

/** The node_states columns the engine decides on, as a query returns them. */
interface NodeRowDb {
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
  held: unknown
  wait: 'callback' | 'retry' | 'subproc' | null
  retry_kind: 'manual' | 'automatic' | null
  auto_retries: number
  input_overrides: string | null
}

const NODE_COLUMNS = sql`node_id, state, version, loop, retry, skip, error_ignored, arrivals, expected, attempt, error, started_at, finished_at,
  held, wait, retry_kind, auto_retries, input_overrides`

function toNodeRow(r: NodeRowDb): NodeRow {
  return {
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
    held: Boolean(r.held),
    wait: r.wait,
    retryKind: r.retry_kind,
    autoRetries: Number(r.auto_retries),
    inputOverrides: r.input_overrides,
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
  const rows = await exec.query<NodeRowDb>(
    sql`SELECT ${NODE_COLUMNS} FROM node_states WHERE task_id = ${taskId} ${filter}`,
  )
  const nodes = new Map<string, NodeRow>()
  for (const r of rows) nodes.set(r.node_id, toNodeRow(r))
  return nodes
}

/**
 * PostgreSQL, in a transaction that holds the task row (lockTask): locks `job` if `worker` still
 * holds it under the attempt it claimed (FOR UPDATE: from now on no claim takes it over, and the
 * statement that deletes it cannot miss it), and reads the node rows of `ids`, in one statement.
 * `held` false: the job was taken over or is gone, and nothing is locked.
 */
export async function lockJobAndLoadNodes(
  tx: Executor,
  job: ClaimedJob,
  worker: string,
  ids: readonly string[],
): Promise<{ held: boolean; nodes: Map<string, NodeRow> }> {
  const rows = await tx.query<
    { [K in keyof NodeRowDb]: NodeRowDb[K] | null } & { job_held: number | string }
  >(
    sql`WITH j AS (SELECT id FROM jobs WHERE ${heldBy(job, worker)} FOR UPDATE)
        SELECT (SELECT count(*) FROM j) AS job_held, n.node_id, n.state, n.version, n.loop, n.retry, n.skip,
               n.error_ignored, n.arrivals, n.expected, n.attempt, n.error, n.started_at, n.finished_at,
               n.held, n.wait, n.retry_kind, n.auto_retries, n.input_overrides
        FROM (SELECT 1 AS one) o
        LEFT JOIN node_states n ON n.task_id = ${job.taskId} AND n.node_id IN (${join(ids)})`,
  )
  const nodes = new Map<string, NodeRow>()
  for (const r of rows) if (r.node_id !== null) nodes.set(r.node_id, toNodeRow(r as NodeRowDb))
  return { held: Number(rows[0]?.job_held ?? 0) === 1, nodes }
}

export async function readNodeInputs(
  exec: Executor,
  taskId: number,
  nodeId: string,
): Promise<{
  state: NodeState
  inputs: unknown
  traceparent: string | null
  loop: number
  attempt: number
} | null> {
  const [row] = await exec.query<{
    state: NodeState
    inputs: string | null
    traceparent: string | null
    loop: number
    attempt: number
  }>(
    sql`SELECT state, inputs, loop, attempt, (SELECT traceparent FROM tasks WHERE id = ${taskId}) AS traceparent
        FROM node_states WHERE task_id = ${taskId} AND node_id = ${nodeId}`,
  )
  if (!row) return null
  return {
    state: row.state,
    inputs: row.inputs === null ? {} : JSON.parse(row.inputs),
    traceparent: row.traceparent ?? null,
    loop: Number(row.loop),
    attempt: Number(row.attempt),
  }
}

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
                 ${r.startedAt}, ${r.finishedAt}, ${r.held}, ${r.wait}, ${r.retryKind}, ${r.autoRetries}, ${r.inputOverrides})`,
    )
    for (const chunk of chunkRows(tx.provider, values))
      await tx.execute(sql`INSERT INTO node_states
        (task_id, node_id, state, version, loop, retry, skip, error_ignored, arrivals, expected, attempt, inputs, outputs, error, started_at, finished_at,
         held, wait, retry_kind, auto_retries, input_overrides)
      VALUES ${join(chunk)}
      ON CONFLICT (task_id, node_id) DO UPDATE SET
        state = excluded.state, version = excluded.version, loop = excluded.loop, retry = excluded.retry, skip = excluded.skip,
        error_ignored = excluded.error_ignored, arrivals = excluded.arrivals, expected = excluded.expected,
        attempt = excluded.attempt, inputs = COALESCE(excluded.inputs, node_states.inputs),
        outputs = COALESCE(excluded.outputs, node_states.outputs), error = excluded.error,
        started_at = excluded.started_at, finished_at = excluded.finished_at, held = excluded.held, wait = excluded.wait,
        retry_kind = excluded.retry_kind, auto_retries = excluded.auto_retries, input_overrides = excluded.input_overrides`)
  }
  for (const h of plan.historyCloses) {
    if (h.log !== undefined) await appendAttemptLog(tx, taskId, h.nodeId, h.loop, h.attempt, h.log)
    await tx.execute(sql`UPDATE node_histories SET state = ${h.state}, outputs = ${h.outputs}, error = ${h.error}, finished_at = ${h.finishedAt}
      WHERE task_id = ${taskId} AND node_id = ${h.nodeId} AND loop = ${h.loop} AND attempt = ${h.attempt} AND finished_at IS NULL`)
  }
  if (plan.historyInserts.length > 0) {
    const values = plan.historyInserts.map(
      (
        h,
      ) => sql`(${taskId}, ${h.nodeId}, ${h.loop}, ${h.attempt}, ${h.state}, ${h.worker}, ${h.inputs}, ${h.outputs}, ${h.error},
                 ${h.startedAt}, ${h.finishedAt}, ${h.version}, ${h.retryKind}, ${h.skip}, ${h.log})`,
    )
    for (const chunk of chunkRows(tx.provider, values))
      await tx.execute(sql`INSERT INTO node_histories
        (task_id, node_id, loop, attempt, state, worker, inputs, outputs, error, started_at, finished_at, version, retry_kind, skip, log)
      VALUES ${join(chunk)}`)
  }
  const jobs: Sql[] = nodeJobRows(taskId, plan.jobs, now)
  for (const later of plan.laterJobs) {
    // Due at the end of an automatic retry's interval (a durable timer, no worker held meanwhile).
    jobs.push(
      sql`(${taskId}, ${later.nodeId}, 'node', ${later.dueAt}, ${null}, ${null}, 0, ${null}, ${now}, ${false})`,
    )
  }
  await insertJobs(tx, jobs)
  let callbacks = 0
  if (task.callbackUrl !== null) {
    const constants = plan.constants ?? task.constants
    const shown = task.state === 'RUNNING' ? 'FAILED' : task.state
    for (const f of plan.failedNodes) {
      const record = { task_id: taskId, task_success: false, task_status: shown, task_outputs: [] }
      if (
        await enqueueCallbackEvent(
          tx,
          taskId,
          task,
          `node_failed:${f.nodeId}:${f.version}`,
          f.nodeId,
          record,
          now,
        )
      )
        callbacks += 1
    }
    if (plan.finish) {
      const record = {
        task_id: taskId,
        task_success: true,
        task_status: 'FINISHED',
        task_outputs: taskOutputList(constants, plan.finish.outputs),
      }
      if (await enqueueCallbackEvent(tx, taskId, task, 'finished', '', record, now)) callbacks += 1
    }
  }
  const callbackEnqueued = callbacks > 0

  await insertEvents(tx, taskId, task.eventSeq + 1, plan.events, now)
  const sets: Sql[] = []
  if (plan.events.length > 0) sets.push(sql`event_seq = ${task.eventSeq + plan.events.length}`)
  if (plan.constants) sets.push(sql`constants = ${JSON.stringify(plan.constants)}`)
  if (plan.scopeConstants) sets.push(sql`scope_constants = ${JSON.stringify(plan.scopeConstants)}`)
  if (plan.finish) {
    sets.push(sql`state = 'FINISHED'`, sql`version = version + 1`, sql`finished_at = ${now}`)
    sets.push(sql`outputs = ${JSON.stringify(plan.finish.outputs)}`)
  }
  if (sets.length > 0) await tx.execute(sql`UPDATE tasks SET ${join(sets)} WHERE id = ${taskId}`)
  return {
    jobs: plan.jobs.length + callbacks,
    finished: plan.finish !== undefined,
    callbackEnqueued,
  }
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

/**
 * Appends to one attempt's log. `text` is already bounded by its writer (the worker keeps at most
 * LOG_LIMITS of a component's lines per attempt; the engine's own lines are short and few).
 */
export async function appendAttemptLog(
  exec: Executor,
  taskId: number,
  nodeId: string,
  loop: number,
  attempt: number,
  text: string,
): Promise<void> {
  if (text === '') return
  await exec.execute(sql`UPDATE node_histories SET log = log || ${text}
    WHERE task_id = ${taskId} AND node_id = ${nodeId} AND loop = ${loop} AND attempt = ${attempt}`)
}

/** A RUNNING node now waits for `wait` (a callback) or for nothing. */
export async function setNodeWait(
  tx: Executor,
  taskId: number,
  nodeId: string,
  wait: 'callback' | null,
): Promise<void> {
  await tx.execute(
    sql`UPDATE node_states SET wait = ${wait} WHERE task_id = ${taskId} AND node_id = ${nodeId} AND state = 'RUNNING'`,
  )
}

/**
 * A node operation's compare-and-set: the node's version moves from `expected` to `next` only if
 * nobody moved it meanwhile (a row that does not exist yet is inserted, once). False: it moved on;
 * the caller reads again and decides again.
 */
export async function compareAndSetNode(
  tx: Executor,
  taskId: number,
  nodeId: string,
  expected: number | null,
  next: number,
): Promise<boolean> {
  if (expected === null) {
    const n = await tx.execute(sql`INSERT INTO node_states (task_id, node_id, state, version)
      VALUES (${taskId}, ${nodeId}, 'READY', ${next}) ON CONFLICT (task_id, node_id) DO NOTHING`)
    return n === 1
  }
  const n = await tx.execute(sql`UPDATE node_states SET version = ${next}
    WHERE task_id = ${taskId} AND node_id = ${nodeId} AND version = ${expected}`)
  return n === 1
}

/** One node's attempts, oldest first (the node detail's histories). */
export async function readAttempts(exec: Executor, taskId: number, nodeId: string) {
  const rows = await exec.query<{
    id: number
    loop: number
    attempt: number
    state: NodeState
    version: number
    retry_kind: 'manual' | 'automatic' | null
    skip: unknown
    inputs: string | null
    outputs: string | null
    error: string | null
    started_at: number | string
    finished_at: number | string | null
  }>(sql`SELECT id, loop, attempt, state, version, retry_kind, skip, inputs, outputs, error, started_at, finished_at
         FROM node_histories WHERE task_id = ${taskId} AND node_id = ${nodeId} ORDER BY id`)
  return rows.map((r) => ({
    id: Number(r.id),
    loop: Number(r.loop),
    attempt: Number(r.attempt),
    state: r.state,
    version: Number(r.version),
    retryKind: r.retry_kind,
    skip: Boolean(r.skip),
    inputs: r.inputs === null ? null : (JSON.parse(r.inputs) as unknown),
    outputs: r.outputs === null ? null : (JSON.parse(r.outputs) as unknown),
    error: r.error,
    startedAt: Number(r.started_at),
    finishedAt: r.finished_at === null ? null : Number(r.finished_at),
  }))
}
export type Attempt = Awaited<ReturnType<typeof readAttempts>>[number]

/** One attempt's log: by history id, by the node version it ran under, or the newest attempt's. */
export async function readAttemptLog(
  exec: Executor,
  taskId: number,
  nodeId: string,
  which: { historyId?: number | undefined; version?: number | undefined } = {},
): Promise<{ id: number; log: string } | null> {
  const by =
    which.historyId !== undefined
      ? sql`AND id = ${which.historyId}`
      : which.version !== undefined
        ? sql`AND version = ${which.version}`
        : empty
  const [row] = await exec.query<{ id: number; log: string }>(
    sql`SELECT id, log FROM node_histories WHERE task_id = ${taskId} AND node_id = ${nodeId} ${by} ORDER BY id DESC LIMIT 1`,
  )
  return row ? { id: Number(row.id), log: row.log } : null
}

/**
 * What one node step writes on PostgreSQL: the plans of a completion (or a start) and of the
 * starts it chained, merged in order (a node's row as the last plan left it, the events numbered
 * on from `firstSeq`). The caller holds the task row and the finished job's row.
 */
export interface StepWrite {
  taskId: number
  /** The job the step consumed (locked by lockJobAndLoadNodes); null: a start that runs keeps its job. */
  deleteJobId: number | null
  rows: readonly NodeWrite[]
  historyCloses: readonly HistoryClose[]
  historyInserts: readonly HistoryInsert[]
  firstSeq: number
  events: readonly TaskEventInput[]
  /** Node jobs due now for any worker, and node jobs due later (an automatic retry's interval). */
  jobs: readonly string[]
  laterJobs: ReadonlyArray<{ nodeId: string; dueAt: number }>
  /** Node jobs inserted already leased to `worker` (the starts run by this step's worker). */
  leased: { worker: string; until: number; nodeIds: readonly string[] }
  constants?: Record<string, Constant> | undefined
  scopeConstants?: Record<string, Record<string, Constant>> | undefined
  finish?: { outputs: Record<string, unknown> } | undefined
}

/**
 * PostgreSQL: everything a node step writes, as ONE statement of data-modifying CTEs (the job
 * deleted, node rows upserted, history closed and opened, events, jobs, the task row): all of it
 * or none. Every part writes a different row (the plans were merged first), as one statement
 * requires. Returns the ids of the leased jobs by node, or null when the statement would carry
 * more bound parameters than PostgreSQL takes (the caller then writes the plans one by one).
 */
export async function writeStep(
  tx: Executor,
  w: StepWrite,
  now: number,
): Promise<Map<string, number> | null> {
  const parts: Sql[] = []
  const taskId = w.taskId
  if (w.deleteJobId !== null) parts.push(sql`d AS (DELETE FROM jobs WHERE id = ${w.deleteJobId})`)
  if (w.rows.length > 0) {
    const values = w.rows.map(
      (
        r,
      ) => sql`(${taskId}, ${r.nodeId}, ${r.state}, ${r.version}, ${r.loop}, ${r.retry}, ${r.skip}, ${r.errorIgnored},
                 ${r.arrivals}, ${r.expected}, ${r.attempt}, ${r.inputs ?? null}, ${r.outputs ?? null}, ${r.error},
                 ${r.startedAt}, ${r.finishedAt}, ${r.held}, ${r.wait}, ${r.retryKind}, ${r.autoRetries}, ${r.inputOverrides})`,
    )
    parts.push(sql`n AS (INSERT INTO node_states
        (task_id, node_id, state, version, loop, retry, skip, error_ignored, arrivals, expected, attempt, inputs, outputs, error, started_at, finished_at,
         held, wait, retry_kind, auto_retries, input_overrides)
      VALUES ${join(values)}
      ON CONFLICT (task_id, node_id) DO UPDATE SET
        state = excluded.state, version = excluded.version, loop = excluded.loop, retry = excluded.retry, skip = excluded.skip,
        error_ignored = excluded.error_ignored, arrivals = excluded.arrivals, expected = excluded.expected,
        attempt = excluded.attempt, inputs = COALESCE(excluded.inputs, node_states.inputs),
        outputs = COALESCE(excluded.outputs, node_states.outputs), error = excluded.error,
        started_at = excluded.started_at, finished_at = excluded.finished_at, held = excluded.held, wait = excluded.wait,
        retry_kind = excluded.retry_kind, auto_retries = excluded.auto_retries, input_overrides = excluded.input_overrides)`)
  }
  if (w.historyCloses.length > 0) {
    // The log is appended whatever the row's state, the close applies to an open row only (as
    // appendAttemptLog and the close do as two statements).
    const values = w.historyCloses.map(
      (h) =>
        sql`(${h.nodeId}, CAST(${h.loop} AS INTEGER), CAST(${h.attempt} AS INTEGER), CAST(${h.state} AS TEXT),
             CAST(${h.outputs} AS TEXT), CAST(${h.error} AS TEXT), CAST(${h.finishedAt} AS BIGINT), CAST(${h.log ?? ''} AS TEXT))`,
    )
    parts.push(sql`c AS (UPDATE node_histories SET log = node_histories.log || v.log,
        state = CASE WHEN node_histories.finished_at IS NULL THEN v.state ELSE node_histories.state END,
        outputs = CASE WHEN node_histories.finished_at IS NULL THEN v.outputs ELSE node_histories.outputs END,
        error = CASE WHEN node_histories.finished_at IS NULL THEN v.error ELSE node_histories.error END,
        finished_at = COALESCE(node_histories.finished_at, v.finished_at)
      FROM (VALUES ${join(values)}) AS v (node_id, loop, attempt, state, outputs, error, finished_at, log)
      WHERE node_histories.task_id = ${taskId} AND node_histories.node_id = v.node_id
        AND node_histories.loop = v.loop AND node_histories.attempt = v.attempt)`)
  }
  if (w.historyInserts.length > 0) {
    const values = w.historyInserts.map(
      (
        h,
      ) => sql`(${taskId}, ${h.nodeId}, ${h.loop}, ${h.attempt}, ${h.state}, ${h.worker}, ${h.inputs}, ${h.outputs}, ${h.error},
                 ${h.startedAt}, ${h.finishedAt}, ${h.version}, ${h.retryKind}, ${h.skip}, ${h.log})`,
    )
    parts.push(sql`h AS (INSERT INTO node_histories
        (task_id, node_id, loop, attempt, state, worker, inputs, outputs, error, started_at, finished_at, version, retry_kind, skip, log)
      VALUES ${join(values)})`)
  }
  if (w.events.length > 0) {
    const values = w.events.map(
      (ev, i) =>
        sql`(${taskId}, ${w.firstSeq + i}, ${ev.type}, ${ev.nodeId ?? null}, ${ev.state}, ${ev.data === undefined ? null : JSON.stringify(ev.data)}, ${now})`,
    )
    parts.push(
      sql`e AS (INSERT INTO task_events (task_id, seq, type, node_id, state, data, created_at) VALUES ${join(values)})`,
    )
  }
  const jobs: Sql[] = nodeJobRows(taskId, w.jobs, now)
  for (const later of w.laterJobs) {
    jobs.push(
      sql`(${taskId}, ${later.nodeId}, 'node', ${later.dueAt}, ${null}, ${null}, 0, ${null}, ${now}, ${false})`,
    )
  }
  if (jobs.length > 0) {
    parts.push(sql`j AS (INSERT INTO jobs (task_id, node_id, kind, due_at, lease_owner, lease_until, attempts, payload, created_at, held)
      VALUES ${join(jobs)})`)
  }
  const { worker, until } = w.leased
  if (w.leased.nodeIds.length > 0) {
    const values = w.leased.nodeIds.map(
      (nodeId) =>
        sql`(${taskId}, ${nodeId}, 'node', ${now}, ${worker}, ${until}, 1, ${null}, ${now}, ${false})`,
    )
    parts.push(sql`l AS (INSERT INTO jobs (task_id, node_id, kind, due_at, lease_owner, lease_until, attempts, payload, created_at, held)
      VALUES ${join(values)} RETURNING id, node_id)`)
  }
  const sets: Sql[] = []
  if (w.events.length > 0) sets.push(sql`event_seq = ${w.firstSeq + w.events.length - 1}`)
  if (w.constants) sets.push(sql`constants = ${JSON.stringify(w.constants)}`)
  if (w.scopeConstants) sets.push(sql`scope_constants = ${JSON.stringify(w.scopeConstants)}`)
  if (w.finish) {
    sets.push(sql`state = 'FINISHED'`, sql`version = version + 1`, sql`finished_at = ${now}`)
    sets.push(sql`outputs = ${JSON.stringify(w.finish.outputs)}`)
  }
  if (sets.length > 0) parts.push(sql`t AS (UPDATE tasks SET ${join(sets)} WHERE id = ${taskId})`)
  if (parts.length === 0) return new Map()
  const statement =
    w.leased.nodeIds.length > 0
      ? sql`WITH ${join(parts)} SELECT id, node_id FROM l`
      : sql`WITH ${join(parts)} SELECT 1 AS done`
  if (parameterCount(statement) > MAX_BOUND_PARAMETERS.postgresql) return null
  const rows = await tx.query<{ id?: number; node_id?: string }>(statement)
  if (w.events.length > 0) tx.publish(TASK_EVENTS_CHANNEL, String(taskId))
  const ids = new Map<string, number>()
  for (const r of rows) if (r.node_id !== undefined) ids.set(r.node_id, Number(r.id))
  return ids
}
