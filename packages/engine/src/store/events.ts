import { chunkRows, type Executor, join, sql } from '@stdops/db'

/**
 * Published after every commit that appended task events, the task id as key (coalesced per tick,
 * see Executor.publish): event followers in every process wake at once instead of at their next
 * poll.
 */
export const TASK_EVENTS_CHANNEL = 'stdops_task_events'

export interface TaskEventInput {
  type: 'task_state' | 'node_state'
  state: string
  nodeId?: string
  data?: unknown
}

/**
 * Appends one event to the task's log. Bumps `tasks.event_seq` and inserts the event with that
 * seq: every appender updates the task row, so one task's events are gap-free and in commit
 * order. Returns the seq.
 */
export async function appendTaskEvent(
  tx: Executor,
  taskId: number,
  ev: TaskEventInput,
  now: number,
): Promise<number> {
  const [row] = await tx.query<{ event_seq: number }>(
    sql`UPDATE tasks SET event_seq = event_seq + 1 WHERE id = ${taskId} RETURNING event_seq`,
  )
  if (!row) throw new Error(`task ${taskId} does not exist`)
  const seq = Number(row.event_seq)
  await insertEvents(tx, taskId, seq, [ev], now)
  return seq
}

/**
 * Inserts events numbered from `firstSeq` on, in one statement. The caller holds the task row and
 * sets `event_seq` to the last number in the same transaction.
 */
export async function insertEvents(
  tx: Executor,
  taskId: number,
  firstSeq: number,
  events: readonly TaskEventInput[],
  now: number,
): Promise<void> {
  if (events.length === 0) return
  const rows = events.map(
    (ev, i) =>
      sql`(${taskId}, ${firstSeq + i}, ${ev.type}, ${ev.nodeId ?? null}, ${ev.state}, ${ev.data === undefined ? null : JSON.stringify(ev.data)}, ${now})`,
  )
  for (const chunk of chunkRows(tx.provider, rows)) {
    await tx.execute(
      sql`INSERT INTO task_events (task_id, seq, type, node_id, state, data, created_at) VALUES ${join(chunk)}`,
    )
  }
  tx.publish(TASK_EVENTS_CHANNEL, String(taskId))
}
