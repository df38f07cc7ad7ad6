import { maskSealed, NotFoundError } from '@stdops/core'
import { sql } from '@stdops/db'
import type { Caller } from './auth'
import type { Deps } from './deps'
import { authorize, type ProjectRef, resolveScope } from './projects'
import { formatTime } from './time'
import { openWaker, TASK_EVENTS_CHANNEL } from './wake'

/**
 * The task event stream: every state change of a task and its nodes, read back from the
 * `task_events` table in `seq` order.
 *
 * How a follower learns of new events: it polls the table every `pollMs` (150 ms), and wakes
 * early when anything is published on the `stdops_task_events` channel (PostgreSQL NOTIFY across
 * processes; an in-process emitter on SQLite). Correctness rests on polling alone: a missed or
 * absent notification only costs latency, so a follower in one process sees events committed
 * by any other process sharing the PostgreSQL database. Every transaction that appends events
 * publishes the task's id once it commits (insertEvents, coalesced per tick), so followers wake
 * at once.
 *
 * Why `seq > last` misses nothing: `seq` is taken per task from `tasks.event_seq` inside the
 * transaction that makes the change, so the row lock orders the writers and seqs become visible
 * in commit order without gaps. A follower still yields only the next seq (last + 1); should a
 * gap ever show, it waits for the missing event and skips ahead, with a warning, only after
 * `gapWaitMs`.
 */

export { TASK_EVENTS_CHANNEL }

/** The task states after which nothing more happens: their event (with what commits alongside) ends a stream. */
export const FINAL_TASK_STATES: readonly string[] = ['FINISHED', 'REVOKED']

export interface TaskEvent {
  /** 1, 2, 3 … per task, gap-free; the stream's tracked id is its decimal string. */
  seq: number
  task_id: number
  type: 'task_state' | 'node_state'
  /** null for task_state events */
  node_id: string | null
  state: string
  /** what the writer attached (an error, outputs …), parsed when JSON; null when nothing */
  data: unknown
  /** epoch milliseconds */
  created_at: number
  /** created_at in the legacy API's format */
  time: string | null
}

export const isFinalEvent = (e: Pick<TaskEvent, 'type' | 'state'>) =>
  e.type === 'task_state' && FINAL_TASK_STATES.includes(e.state)

interface EventRow {
  seq: number | string
  type: string
  node_id: string | null
  state: string | null
  data: string | null
  created_at: number | string
}

function parseData(text: string | null): unknown {
  if (text === null || text === '') return null
  try {
    return JSON.parse(text) as unknown
  } catch {
    return text
  }
}

function toEvent(deps: Deps, taskId: number, r: EventRow): TaskEvent {
  const at = Number(r.created_at)
  return {
    seq: Number(r.seq),
    task_id: taskId,
    type: r.type === 'node_state' ? 'node_state' : 'task_state',
    node_id: r.node_id ?? null,
    state: r.state ?? '',
    // an event's data (an error, outputs) never holds a secret constant but masked
    data: maskSealed(parseData(r.data)),
    created_at: at,
    time: formatTime(deps, at),
  }
}

/**
 * Checks, as get_task_status does and in its order (project, task, permission), that the caller
 * may view the task: task_view in its project; a task of another project is answered like a
 * missing one. Runs before any event flows.
 */
export async function authorizeTaskEvents(
  deps: Deps,
  caller: Caller,
  ref: ProjectRef,
  taskId: number,
): Promise<void> {
  const { project, task } = await resolveScope(deps, caller, ref, taskId)
  if (!task) throw new NotFoundError(`task[id=${taskId}] does not exist in project(${ref.bk_biz_id})`)
  authorize(caller, project, 'task_view')
}

/** The events after `afterSeq`, at most `limit`, in seq order. */
export async function readTaskEvents(
  deps: Deps,
  taskId: number,
  afterSeq: number,
  limit = 500,
): Promise<TaskEvent[]> {
  const rows = await deps.db.query<EventRow>(
    sql`SELECT seq, type, node_id, state, data, created_at FROM task_events
        WHERE task_id = ${taskId} AND seq > ${afterSeq} ORDER BY seq LIMIT ${limit}`,
  )
  return rows.map((r) => toEvent(deps, taskId, r))
}

async function finalSeq(deps: Deps, taskId: number): Promise<number | null> {
  const [row] = await deps.db.query<{ seq: number | string }>(
    sql`SELECT seq FROM task_events WHERE task_id = ${taskId} AND type = ${'task_state'}
        AND state IN (${FINAL_TASK_STATES[0]}, ${FINAL_TASK_STATES[1]}) ORDER BY seq LIMIT 1`,
  )
  return row ? Number(row.seq) : null
}

export interface FollowOptions {
  pollMs?: number
  gapWaitMs?: number
}

/**
 * Yields every event of the task after `afterSeq`, in order, as they commit, and returns after
 * the final state's event and the events committed with it (at once when `afterSeq` is already
 * at or past the final event). Stops quietly when `signal` aborts.
 */
export async function* followTaskEvents(
  deps: Deps,
  taskId: number,
  afterSeq: number,
  signal: AbortSignal | undefined,
  opts: FollowOptions = {},
): AsyncGenerator<TaskEvent, void, undefined> {
  const pollMs = opts.pollMs ?? 150
  const gapWaitMs = opts.gapWaitMs ?? 5_000
  // A stream also ends when the server stops (the client resumes it elsewhere from its last id),
  // and counts as work in flight until it has.
  const closing = deps.lifecycle.closing
  signal = signal ? AbortSignal.any([signal, closing]) : closing
  const entered = deps.lifecycle.enter()
  deps.metrics.streamOpened(afterSeq > 0)
  const leave = () => {
    entered()
    deps.metrics.streamClosed()
  }
  if (signal.aborted) {
    leave()
    return
  }
  let end: number | null
  try {
    end = await finalSeq(deps, taskId)
  } catch (err) {
    leave()
    throw err
  }

  const waker = await openWaker(deps, signal, pollMs, { taskId })

  try {
    let last = afterSeq
    // Resumed at or past the final event: only what committed with it may be left to send.
    let ending = end !== null && afterSeq >= end
    let gapSince: number | null = null
    while (!signal?.aborted) {
      const batch = await readTaskEvents(deps, taskId, last)
      let progressed = false
      for (const event of batch) {
        if (event.seq !== last + 1) {
          gapSince ??= Date.now()
          if (Date.now() - gapSince < gapWaitMs) break
          deps.logger.warn(
            { taskId, after: last, next: event.seq },
            'task events: gap in seq, skipping ahead',
          )
        }
        gapSince = null
        if (signal?.aborted) return
        yield event
        last = event.seq
        progressed = true
        if (isFinalEvent(event)) ending = true
      }
      const drained = batch.length < 500 && (batch.length === 0 || batch.at(-1)!.seq === last)
      // The final state commits with what it causes (a revoke's node REVOKED events follow it in
      // the same transaction): once it is seen, what is there now is the rest of the stream.
      if (ending && drained) return
      // More is waiting (a full batch): read again at once.
      if (progressed && !drained) continue
      await waker.sleep()
    }
  } finally {
    await waker.close()
    leave()
  }
}
