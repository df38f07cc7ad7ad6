/** Node rows and their history, and applying a plan (the rows, events and jobs one decision wrote). */
import type { NodeState } from '@stdops/core'
import { chunkRows, type Executor, empty, join, type Sql, sql } from '@stdops/db'
import type { NodeRow, Plan } from '../plan'
import { insertEvents } from './events'
import { insertJobs, nodeJobRows } from './jobs'
import { enqueueCallbackEvent, type LockedTask, taskOutputList } from './tasks'

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
    held: unknown
    wait: 'callback' | 'retry' | 'subproc' | null
    retry_kind: 'manual' | 'automatic' | null
    auto_retries: number
    input_overrides: string | null
  }>(sql`SELECT node_id, state, version, loop, retry, skip, error_ignored, arrivals, expected, attempt, error, started_at, finished_at,
                held, wait, retry_kind, auto_retries, input_overrides
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
      held: Boolean(r.held),
      wait: r.wait,
      retryKind: r.retry_kind,
      autoRetries: Number(r.auto_retries),
      inputOverrides: r.input_overrides,
    })
  }
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
