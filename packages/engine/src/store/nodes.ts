/** Node rows and their history, and applying a plan (the rows, events and jobs one decision wrote). */
import type { Constant, NodeState, TaskState } from '@stdops/core'
import { chunkRows, type Executor, empty, join, type Sql, sql } from '@stdops/db'
import type { HistoryClose, HistoryInsert, NodeRow, NodeWrite, Plan } from '../plan'
import { insertEvents, TASK_EVENTS_CHANNEL, type TaskEventInput } from './events'
import { type ClaimedJob, heldBy, insertJobs, nodeJobRows } from './jobs'
import { enqueueCallbackEvent, type LockedTask, parseTaskRow, taskOutputList } from './tasks'

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
 * PostgreSQL: the advisory locks a node step takes before it reads anything, in one statement: the
 * task's lock SHARED (the operations that change node rows beside the engine's steps, node actions
 * and poison jobs, take it exclusively: lockTask with `steps: 'exclude'`), then an exclusive lock
 * per node row the step may write, in key order (so two steps never wait for each other in a
 * cycle). Two steps of one task wait for each other only where their rows meet (the branches of a
 * fork at their converge gateway). Keys: the task's is -id, a node's id × 2^32 + hashtext(node) in
 * the 64-bit key space (Prisma's migration lock is a small positive number).
 */
export async function lockStep(tx: Executor, taskId: number, nodeIds: readonly string[]): Promise<void> {
  await tx.query(sql`SELECT CASE WHEN s.o = 0 THEN pg_advisory_xact_lock_shared(s.k) ELSE pg_advisory_xact_lock(s.k) END AS locked
    FROM (SELECT 0 AS o, CAST(${-taskId} AS BIGINT) AS k
          UNION SELECT 1, CAST(${taskId} AS BIGINT) * 4294967296 + (CAST(hashtext(x) AS BIGINT) & 4294967295)
          FROM unnest(CAST(${nodeIds} AS TEXT[])) AS x) s
    ORDER BY s.o, s.k`)
}

/** The task row as a step reads it, with digests of its constants (the step's write re-checks them). */
export interface StepTask extends LockedTask {
  constantsDigest: string
  scopeConstantsDigest: string
}

/**
 * PostgreSQL, after lockStep: the task row, whether `worker` still holds `job`, and the node rows
 * of `ids`, in one statement (nothing locked: the write re-checks what it relies on). Null when
 * the task does not exist.
 */
export async function readStep(
  tx: Executor,
  job: ClaimedJob,
  worker: string,
  ids: readonly string[],
): Promise<{ task: StepTask; held: boolean; nodes: Map<string, NodeRow> } | null> {
  const rows = await tx.query<
    { [K in keyof NodeRowDb]: NodeRowDb[K] | null } & {
      job_held: number | string
      project_id: number
      event_seq: number
      task_state: TaskState
      constants: string
      scope_constants: string
      constants_digest: string
      scope_constants_digest: string
      callback_url: string | null
      callback_status: string | null
      task_started_at: number | string | null
      traceparent: string | null
    }
  >(sql`SELECT (SELECT count(*) FROM jobs WHERE ${heldBy(job, worker)}) AS job_held,
        t.project_id, t.event_seq, t.state AS task_state, t.constants, t.scope_constants,
        md5(t.constants) AS constants_digest, md5(t.scope_constants) AS scope_constants_digest,
        t.callback_url, t.callback_status, t.started_at AS task_started_at, t.traceparent,
        n.node_id, n.state, n.version, n.loop, n.retry, n.skip, n.error_ignored, n.arrivals, n.expected, n.attempt,
        n.error, n.started_at, n.finished_at, n.held, n.wait, n.retry_kind, n.auto_retries, n.input_overrides
      FROM tasks t LEFT JOIN node_states n ON n.task_id = t.id AND n.node_id IN (${join(ids)})
      WHERE t.id = ${job.taskId}`)
  const first = rows[0]
  if (!first) return null
  const nodes = new Map<string, NodeRow>()
  for (const r of rows) if (r.node_id !== null) nodes.set(r.node_id, toNodeRow(r as NodeRowDb))
  return {
    task: {
      ...parseTaskRow({ ...first, state: first.task_state, started_at: first.task_started_at }),
      constantsDigest: first.constants_digest,
      scopeConstantsDigest: first.scope_constants_digest,
    },
    held: Number(first.job_held) === 1,
    nodes,
  }
}

/**
 * What one node step writes on PostgreSQL: the plans of a completion (or a start) and of the
 * starts it chained, merged in order (a node's row as the last plan left it).
 */
export interface StepWrite {
  /** The task row as the step read it: the write applies only while its state and constants are still these. */
  task: StepTask
  job: ClaimedJob
  worker: string
  /** A start whose activity runs keeps its job (leased); any other step deletes it. */
  keepJob: boolean
  rows: readonly NodeWrite[]
  historyCloses: readonly HistoryClose[]
  historyInserts: readonly HistoryInsert[]
  events: readonly TaskEventInput[]
  /** Node jobs due now for any worker, and node jobs due later (an automatic retry's interval). */
  jobs: readonly string[]
  laterJobs: ReadonlyArray<{ nodeId: string; dueAt: number }>
  /** Node jobs inserted already leased to `worker` (the starts this step runs itself). */
  leased: { until: number; nodeIds: readonly string[] }
  constants?: Record<string, Constant> | undefined
  scopeConstants?: Record<string, Record<string, Constant>> | undefined
  finish?: { outputs: Record<string, unknown> } | undefined
}

/**
 * PostgreSQL: everything a node step writes, as ONE statement of data-modifying CTEs, all of it or
 * none. First the task row (`u`): its event numbers are taken (the events are numbered from what
 * it returns, so one task's events stay gap-free in commit order), on condition that its state and
 * constants are still those the step decided on (under the row's lock, re-read at its latest
 * version when another transaction changed it meanwhile: a pause that committed first fails it).
 * Then the job (`d`, held by this worker under this attempt: deleted, or kept and locked by a start
 * that runs), and every other write on condition that both held. The rows travel as one JSON
 * parameter per table, typed by the table's own row type. Returns the leased jobs' ids by node,
 * or null when the task moved on (nothing written: the caller reads again and decides again). A
 * job lost after the task row was taken (its lease expired and another worker claimed it between
 * the step's read and this write) fails the statement, and with it the transaction.
 */
export async function writeStep(
  tx: Executor,
  w: StepWrite,
  now: number,
): Promise<Map<string, number> | null> {
  const taskId = w.job.taskId
  // Parameters in a SELECT list are given their types: nothing there says them.
  const task = sql`CAST(${taskId} AS INTEGER)`
  const at = sql`CAST(${now} AS BIGINT)`
  const sets: Sql[] = [sql`event_seq = event_seq + ${w.events.length}`]
  if (w.constants) sets.push(sql`constants = ${JSON.stringify(w.constants)}`)
  if (w.scopeConstants) sets.push(sql`scope_constants = ${JSON.stringify(w.scopeConstants)}`)
  if (w.finish) {
    sets.push(sql`state = 'FINISHED'`, sql`version = version + 1`, sql`finished_at = ${now}`)
    sets.push(sql`outputs = ${JSON.stringify(w.finish.outputs)}`)
  }
  const parts: Sql[] = [
    sql`u AS (UPDATE tasks SET ${join(sets)}
      WHERE id = ${taskId} AND state = ${w.task.state} AND md5(constants) = ${w.task.constantsDigest}
        AND md5(scope_constants) = ${w.task.scopeConstantsDigest}
      RETURNING event_seq)`,
    w.keepJob
      ? sql`d AS (UPDATE jobs SET lease_until = lease_until WHERE ${heldBy(w.job, w.worker)} AND EXISTS (SELECT 1 FROM u) RETURNING id)`
      : sql`d AS (DELETE FROM jobs WHERE ${heldBy(w.job, w.worker)} AND EXISTS (SELECT 1 FROM u) RETURNING id)`,
  ]
  const json = (rows: unknown[]) => sql`CAST(${JSON.stringify(rows)} AS JSONB)`
  if (w.rows.length > 0) {
    const rows = w.rows.map((r) => ({
      task_id: taskId,
      node_id: r.nodeId,
      state: r.state,
      version: r.version,
      loop: r.loop,
      retry: r.retry,
      skip: r.skip,
      error_ignored: r.errorIgnored,
      arrivals: r.arrivals,
      expected: r.expected,
      attempt: r.attempt,
      inputs: r.inputs ?? null,
      outputs: r.outputs ?? null,
      error: r.error,
      started_at: r.startedAt,
      finished_at: r.finishedAt,
      held: r.held,
      wait: r.wait,
      retry_kind: r.retryKind,
      auto_retries: r.autoRetries,
      input_overrides: r.inputOverrides,
    }))
    parts.push(sql`n AS (INSERT INTO node_states
        (task_id, node_id, state, version, loop, retry, skip, error_ignored, arrivals, expected, attempt, inputs, outputs, error, started_at, finished_at,
         held, wait, retry_kind, auto_retries, input_overrides)
      SELECT r.task_id, r.node_id, r.state, r.version, r.loop, r.retry, r.skip, r.error_ignored, r.arrivals, r.expected, r.attempt,
             r.inputs, r.outputs, r.error, r.started_at, r.finished_at, r.held, r.wait, r.retry_kind, r.auto_retries, r.input_overrides
      FROM jsonb_populate_recordset(NULL::node_states, ${json(rows)}) r WHERE EXISTS (SELECT 1 FROM d)
      ON CONFLICT (task_id, node_id) DO UPDATE SET
        state = excluded.state, version = excluded.version, loop = excluded.loop, retry = excluded.retry, skip = excluded.skip,
        error_ignored = excluded.error_ignored, arrivals = excluded.arrivals, expected = excluded.expected,
        attempt = excluded.attempt, inputs = COALESCE(excluded.inputs, node_states.inputs),
        outputs = COALESCE(excluded.outputs, node_states.outputs), error = excluded.error,
        started_at = excluded.started_at, finished_at = excluded.finished_at, held = excluded.held, wait = excluded.wait,
        retry_kind = excluded.retry_kind, auto_retries = excluded.auto_retries, input_overrides = excluded.input_overrides)`)
  }
  if (w.historyCloses.length > 0) {
    const rows = w.historyCloses.map((h) => ({
      node_id: h.nodeId,
      loop: h.loop,
      attempt: h.attempt,
      state: h.state,
      outputs: h.outputs,
      error: h.error,
      finished_at: h.finishedAt,
      log: h.log ?? '',
    }))
    // The log is appended whatever the row's state, the close applies to an open row only (as
    // appendAttemptLog and the close do as two statements).
    parts.push(sql`c AS (UPDATE node_histories SET log = node_histories.log || v.log,
        state = CASE WHEN node_histories.finished_at IS NULL THEN v.state ELSE node_histories.state END,
        outputs = CASE WHEN node_histories.finished_at IS NULL THEN v.outputs ELSE node_histories.outputs END,
        error = CASE WHEN node_histories.finished_at IS NULL THEN v.error ELSE node_histories.error END,
        finished_at = COALESCE(node_histories.finished_at, v.finished_at)
      FROM jsonb_populate_recordset(NULL::node_histories, ${json(rows)}) v
      WHERE node_histories.task_id = ${taskId} AND node_histories.node_id = v.node_id
        AND node_histories.loop = v.loop AND node_histories.attempt = v.attempt AND EXISTS (SELECT 1 FROM d))`)
  }
  if (w.historyInserts.length > 0) {
    const rows = w.historyInserts.map((h) => ({
      node_id: h.nodeId,
      loop: h.loop,
      attempt: h.attempt,
      state: h.state,
      worker: h.worker,
      inputs: h.inputs,
      outputs: h.outputs,
      error: h.error,
      started_at: h.startedAt,
      finished_at: h.finishedAt,
      version: h.version,
      retry_kind: h.retryKind,
      skip: h.skip,
      log: h.log,
    }))
    parts.push(sql`h AS (INSERT INTO node_histories
        (task_id, node_id, loop, attempt, state, worker, inputs, outputs, error, started_at, finished_at, version, retry_kind, skip, log)
      SELECT ${task}, r.node_id, r.loop, r.attempt, r.state, r.worker, r.inputs, r.outputs, r.error, r.started_at, r.finished_at,
             r.version, r.retry_kind, r.skip, r.log
      FROM jsonb_populate_recordset(NULL::node_histories, ${json(rows)}) r WHERE EXISTS (SELECT 1 FROM d))`)
  }
  if (w.events.length > 0) {
    // Numbered from u's event_seq: the last of this step's events is u's new value.
    const rows = w.events.map((ev, i) => ({
      seq: i + 1 - w.events.length,
      type: ev.type,
      node_id: ev.nodeId ?? null,
      state: ev.state,
      data: ev.data === undefined ? null : JSON.stringify(ev.data),
    }))
    parts.push(sql`e AS (INSERT INTO task_events (task_id, seq, type, node_id, state, data, created_at)
      SELECT ${task}, u.event_seq + r.seq, r.type, r.node_id, r.state, r.data, ${at}
      FROM u, jsonb_populate_recordset(NULL::task_events, ${json(rows)}) r WHERE EXISTS (SELECT 1 FROM d))`)
  }
  const jobs = [
    ...w.jobs.map((nodeId) => ({
      node_id: nodeId,
      due_at: now,
      lease_owner: null,
      lease_until: null,
      attempts: 0,
    })),
    ...w.laterJobs.map((j) => ({
      node_id: j.nodeId,
      due_at: j.dueAt,
      lease_owner: null,
      lease_until: null,
      attempts: 0,
    })),
  ]
  // A job scheduled here is never held (see nodeJobRows).
  if (jobs.length > 0) {
    parts.push(sql`j AS (INSERT INTO jobs (task_id, node_id, kind, due_at, lease_owner, lease_until, attempts, payload, created_at, held)
      SELECT ${task}, r.node_id, 'node', r.due_at, NULL, NULL, 0, NULL, ${at}, FALSE
      FROM jsonb_populate_recordset(NULL::jobs, ${json(jobs)}) r WHERE EXISTS (SELECT 1 FROM d))`)
  }
  const leased = w.leased.nodeIds.map((nodeId) => ({ node_id: nodeId }))
  parts.push(
    leased.length > 0
      ? sql`l AS (INSERT INTO jobs (task_id, node_id, kind, due_at, lease_owner, lease_until, attempts, payload, created_at, held)
          SELECT ${task}, r.node_id, 'node', ${at}, CAST(${w.worker} AS TEXT), CAST(${w.leased.until} AS BIGINT), 1, NULL, ${at}, FALSE
          FROM jsonb_populate_recordset(NULL::jobs, ${json(leased)}) r WHERE EXISTS (SELECT 1 FROM d)
          RETURNING id, node_id)`
      : sql`l AS (SELECT CAST(NULL AS BIGINT) AS id, CAST(NULL AS TEXT) AS node_id WHERE false)`,
  )
  // The task row taken but the job no longer held: fail the statement (a cast that cannot succeed,
  // evaluated only then), so that nothing of it, the event numbers included, is kept.
  const rows = await tx.query<{ taken: number | string; id: number | string | null; node_id: string | null }>(
    sql`WITH ${join(parts)}
      SELECT (SELECT count(*) FROM u) AS taken,
             CASE WHEN EXISTS (SELECT 1 FROM u) AND NOT EXISTS (SELECT 1 FROM d)
                  THEN CAST(CONCAT('job ', CAST(${w.job.id} AS BIGINT), ' held ', (SELECT count(*) FROM d), ' times: lease lost') AS INTEGER)
             END AS lost,
             l.id, l.node_id
      FROM (SELECT 1 AS one) o LEFT JOIN l ON true`,
  )
  if (Number(rows[0]?.taken ?? 0) === 0) return null
  if (w.events.length > 0) tx.publish(TASK_EVENTS_CHANNEL, String(taskId))
  const ids = new Map<string, number>()
  for (const r of rows) if (r.node_id !== null) ids.set(r.node_id, Number(r.id))
  return ids
}
