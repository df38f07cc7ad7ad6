/**
 * The `jobs` table: claims, leases, fencing, and the rows that make work due. Each statement goes
 * through the `sql` tagged template; the SQL is the same on SQLite and PostgreSQL except where
 * `provider` says otherwise (claiming).
 */
import { chunkRows, type Db, type Executor, empty, join, type Provider, type Sql, sql } from '@stdops/db'

export type JobKind = 'node' | 'timer' | 'callback'

export interface ClaimedJob {
  id: number
  taskId: number
  /** The task's project: a worker gives one project at most its share of slots (claimJobs). */
  projectId: number
  nodeId: string
  kind: JobKind
  /** The attempt this claim counted: the fence for completing it. */
  attempts: number
  /** Times its transaction failed before (recordJobFailure), and the last error. */
  failures: number
  lastError: string | null
  payload: string | null
  /** When it fell due (epoch ms): claim latency is the claim's time minus this. */
  dueAt: number
}

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
 * state read here is only a filter: the node start re-checks it under the task row's lock (on
 * PostgreSQL in the start's write statement, see writeStep), which is what orders starts against
 * pause and revoke.
 */
export const PER_TASK_CLAIM = 8

interface JobRow {
  id: number
  task_id: number
  project_id: number
  node_id: string
  kind: JobKind
  attempts: number
  failures: number
  last_error: string | null
  payload: string | null
  due_at: number | string
}

/** Claimed rows, oldest first. */
function toClaimed(rows: JobRow[]): ClaimedJob[] {
  return rows
    .map((r) => ({
      id: Number(r.id),
      taskId: Number(r.task_id),
      projectId: Number(r.project_id),
      nodeId: r.node_id,
      kind: r.kind,
      attempts: Number(r.attempts),
      failures: Number(r.failures),
      lastError: r.last_error,
      payload: r.payload,
      dueAt: Number(r.due_at),
    }))
    .sort((a, b) => a.id - b.id)
}

/** What a claim returns: the job and its task's project (a lookup by primary key). */
const CLAIMED = sql`id, task_id, node_id, kind, attempts, failures, last_error, payload, due_at,
  (SELECT p.project_id FROM tasks p WHERE p.id = jobs.task_id) AS project_id`

/**
 * How a worker shares its slots between projects: `load` counts the slots each project's jobs hold
 * in this worker now (a project not listed holds none), and no project may hold more than `cap`.
 */
export interface ProjectShare {
  cap: number
  load: ReadonlyMap<number, number>
}

/** `CASE project WHEN p THEN value(p) ... ELSE otherwise END`, every number a bound parameter. */
function perProject(
  column: Sql,
  load: ReadonlyMap<number, number>,
  value: (n: number) => number,
  otherwise: number,
): Sql {
  const cases = [...load].map(([p, n]) => sql`WHEN ${p} THEN ${value(n)}`)
  if (cases.length === 0) return sql`CAST(${otherwise} AS INTEGER)`
  return sql`CAST((CASE ${column} ${join(cases, ' ')} ELSE ${otherwise} END) AS INTEGER)`
}

/** Node jobs while their task is RUNNING, timers also while it is SUSPENDED, callbacks always (two aliasings). */
const CLAIMABLE = {
  j: sql`(j.kind = 'callback' OR t.state = 'RUNNING' OR (j.kind = 'timer' AND t.state = 'SUSPENDED'))`,
  w: sql`(w.kind = 'callback' OR wt.state = 'RUNNING' OR (w.kind = 'timer' AND wt.state = 'SUSPENDED'))`,
}

export async function claimJobs(
  db: Db,
  worker: string,
  now: number,
  leaseMs: number,
  limit: number,
  share: ProjectShare = { cap: limit, load: new Map() },
): Promise<ClaimedJob[]> {
  const claim = claimStatement(db.provider, worker, now, leaseMs, limit, share)
  const rows =
    db.provider === 'postgresql'
      ? await db.query<JobRow>(claim)
      : await db.tx((tx) => tx.query<JobRow>(claim))
  return toClaimed(rows)
}

/** The claim's one statement (claimJobs; the benchmark EXPLAINs it). */
export function claimStatement(
  provider: Provider,
  worker: string,
  now: number,
  leaseMs: number,
  limit: number,
  share: ProjectShare = { cap: limit, load: new Map() },
): Sql {
  const pg = provider === 'postgresql'
  const lock = pg ? sql`FOR UPDATE OF j SKIP LOCKED` : empty
  // Fair between projects, on both databases: the due, claimable jobs are ranked within their
  // project (rn), and a project may take only the slots its share leaves it (rn <= cap - load);
  // the claim then takes the lowest rn + load first, so a project that holds few slots goes ahead
  // of one that holds many, and one claim takes turns between projects.
  // PostgreSQL also ranks within each task first: at most PER_TASK_CLAIM jobs of one task per
  // claim, so that one wide fork does not fill every slot while other tasks wait (a worker runs
  // only a few of one task's transactions at once anyway, and its branches meet at their converge). The worker claims again
  // at once while claims find work, so a fork of slow components still fills its share. SQLite
  // has one writer: nothing to spread between tasks.
  // Only claimable jobs are ranked: a paused task's held node jobs must not take the places of its
  // running nodes' timers (with PER_TASK_CLAIM held jobs ahead, a timer would wait for resume).
  // The claim reads jobs_due_at_idx up to now: future timers and held jobs (moved HELD_OFFSET
  // ahead) lie past that range, so however many there are, they cost it nothing.
  const due = sql`w.due_at <= ${now} AND (w.lease_until IS NULL OR w.lease_until < ${now}) AND ${CLAIMABLE.w}`
  const candidates = pg
    ? sql`SELECT c.id, c.project_id, c.due_at FROM (
              SELECT w.id, wt.project_id, w.due_at,
                     row_number() OVER (PARTITION BY w.task_id ORDER BY w.due_at, w.id) AS trn
              FROM jobs w JOIN tasks wt ON wt.id = w.task_id
              WHERE ${due}) c
            WHERE c.trn <= ${PER_TASK_CLAIM}`
    : sql`SELECT w.id, wt.project_id, w.due_at FROM jobs w JOIN tasks wt ON wt.id = w.task_id WHERE ${due}`
  const load = perProject(sql`r.project_id`, share.load, (n) => n, 0)
  const room = perProject(sql`r.project_id`, share.load, (n) => share.cap - n, share.cap)
  return sql`UPDATE jobs SET lease_owner = ${worker}, lease_until = ${now + leaseMs}, attempts = attempts + 1
          WHERE id IN (
            SELECT j.id FROM jobs j JOIN tasks t ON t.id = j.task_id
              JOIN (SELECT d.id, d.project_id,
                           row_number() OVER (PARTITION BY d.project_id ORDER BY d.due_at, d.id) AS rn
                    FROM (${candidates}) d) r ON r.id = j.id
            WHERE j.due_at <= ${now} AND (j.lease_until IS NULL OR j.lease_until < ${now})
              AND ${CLAIMABLE.j} AND r.rn <= ${room}
            ORDER BY r.rn + ${load}, j.due_at, j.id
            LIMIT ${limit}
            ${lock})
          RETURNING ${CLAIMED}`
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
        RETURNING ${CLAIMED}`,
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
export function heldBy(job: ClaimedJob, worker: string): Sql {
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
    // A timer or callback is never held (a pause held the node job it was).
    sql`UPDATE jobs SET kind = ${kind}, due_at = ${until}, lease_owner = NULL, lease_until = NULL, held = ${false}
        WHERE ${heldBy(job, worker)}`,
  )
  return n === 1
}

/**
 * A transaction of the held job failed: counts the failure and keeps its error. With `retryAt`
 * the lease is given up and the job falls due again then (any worker may take it); without, this
 * worker keeps it (it retries what failed itself). False when the job is no longer held.
 */
export async function recordJobFailure(
  exec: Executor,
  job: ClaimedJob,
  worker: string,
  error: string,
  retryAt: number | null,
): Promise<boolean> {
  const release =
    retryAt === null ? empty : sql`, lease_owner = NULL, lease_until = NULL, due_at = ${retryAt}`
  const n = await exec.execute(
    sql`UPDATE jobs SET failures = failures + 1, last_error = ${error} ${release} WHERE ${heldBy(job, worker)}`,
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

/**
 * How far a held job's due time is moved ahead (2^52 ms, about 142,000 years; still an exact
 * integer in JavaScript): past any claim's range, so that held jobs cost claims nothing. Resume
 * moves it back.
 */
export const HELD_OFFSET = 2 ** 52

/**
 * A `node` job row for each of `nodeIds`, due now (for insertJobs). Never held: a job scheduled
 * while its task is paused (what a node that ran on through the pause leads to) is passed by
 * claims for its task's state; only the jobs a pause finds are held (holdTaskJobs).
 */
export function nodeJobRows(taskId: number, nodeIds: readonly string[], now: number): Sql[] {
  return nodeIds.map(
    (nodeId) => sql`(${taskId}, ${nodeId}, 'node', ${now}, ${null}, ${null}, 0, ${null}, ${now}, ${false})`,
  )
}

/** A callback_url job; its payload is the task_callbacks row to send (null: an older job, see readCallbackTarget). */
export function callbackJobRow(taskId: number, now: number, callbackId: number | null = null): Sql {
  const payload = callbackId === null ? null : String(callbackId)
  return sql`(${taskId}, '', 'callback', ${now}, ${null}, ${null}, 0, ${payload}, ${now}, ${false})`
}

/** Inserts job rows built by nodeJobRows / callbackJobRow, in one statement. */
export async function insertJobs(tx: Executor, rows: readonly Sql[]): Promise<void> {
  if (rows.length === 0) return
  for (const chunk of chunkRows(tx.provider, rows)) {
    await tx.execute(sql`INSERT INTO jobs (task_id, node_id, kind, due_at, lease_owner, lease_until, attempts, payload, created_at, held)
      VALUES ${join(chunk)}`)
  }
}

/**
 * Holds (pause) or releases (resume) the task's node jobs, in the transaction of the task's state
 * change (PostgreSQL's one-statement pause and resume do the same in their statement, see
 * compareAndSetTaskInOneStatement). Held: flagged, and due HELD_OFFSET later.
 */
export async function holdTaskJobs(exec: Executor, taskId: number, held: boolean): Promise<number> {
  return exec.execute(
    held
      ? sql`UPDATE jobs SET held = ${true}, due_at = due_at + ${HELD_OFFSET}
            WHERE task_id = ${taskId} AND kind = 'node' AND held = ${false}`
      : sql`UPDATE jobs SET held = ${false}, due_at = due_at - ${HELD_OFFSET} WHERE task_id = ${taskId} AND held = ${true}`,
  )
}

/**
 * Releases the held jobs of every RUNNING task. A safety net (resume releases its task's jobs in
 * its own statement): for a row held by hand, or a task made RUNNING by anything but resume.
 * Reads running tasks by their state index and their jobs by task.
 */
export async function releaseHeldJobsOfRunningTasks(exec: Executor): Promise<number> {
  return exec.execute(
    sql`UPDATE jobs SET held = ${false}, due_at = due_at - ${HELD_OFFSET}
        WHERE held = ${true} AND task_id IN (SELECT id FROM tasks WHERE state = 'RUNNING')`,
  )
}

/** Drops the task's node and timer jobs (its callback job stays). */
export async function dropTaskJobs(tx: Executor, taskId: number): Promise<number> {
  return tx.execute(sql`DELETE FROM jobs WHERE task_id = ${taskId} AND kind <> 'callback'`)
}

/** Deletes one job whatever its lease (a callback_url call that succeeded: never send it again). */
export async function deleteJob(tx: Executor, jobId: number): Promise<void> {
  await tx.execute(sql`DELETE FROM jobs WHERE id = ${jobId}`)
}

/** Drops one node's node and timer jobs (forced_fail, pause of a node already due); how many. */
export async function dropNodeJobs(tx: Executor, taskId: number, nodeId: string): Promise<number> {
  return tx.execute(
    sql`DELETE FROM jobs WHERE task_id = ${taskId} AND node_id = ${nodeId} AND kind IN ('node', 'timer')`,
  )
}

/** Delivers a node callback: a `timer` job due now whose payload carries the data (its schedule step reads it). */
export async function enqueueNodeCallback(
  tx: Executor,
  taskId: number,
  nodeId: string,
  data: unknown,
  now: number,
): Promise<void> {
  const payload = JSON.stringify({ callback_data: data })
  await insertJobs(tx, [
    sql`(${taskId}, ${nodeId}, 'timer', ${now}, ${null}, ${null}, 0, ${payload}, ${now}, ${false})`,
  ])
}

/** True when the node has a `node` job: the run reached it and it waits to start. */
export async function hasNodeJob(exec: Executor, taskId: number, nodeId: string): Promise<boolean> {
  const rows = await exec.query(
    sql`SELECT id FROM jobs WHERE task_id = ${taskId} AND node_id = ${nodeId} AND kind = 'node' LIMIT 1`,
  )
  return rows.length > 0
}
