import { TASK_EVENTS_CHANNEL } from '@stdops/engine'
import type { Deps } from './deps'

/**
 * Published by the engine (PostgreSQL NOTIFY, or in-process on SQLite) after every commit that
 * appended task events; payload the task ids, comma-separated (`*`: any).
 */
export { TASK_EVENTS_CHANNEL }

export interface Waker {
  /** Resolves after `pollMs`, or sooner when the channel is notified or the signal aborts. */
  sleep(): Promise<void>
  close(): Promise<void>
}

/**
 * The pacing of a loop that follows the database: it polls every `pollMs` and wakes early on
 * the task-events channel. Correctness rests on polling alone; a missed notification only costs
 * latency, and a failed LISTEN falls back to polling with a warning.
 */
export async function openWaker(
  deps: Pick<Deps, 'db' | 'logger'>,
  signal: AbortSignal | undefined,
  pollMs: number,
  what: Record<string, unknown>,
): Promise<Waker> {
  let wake: (() => void) | null = null
  // Poked while not asleep (between two reads): the next sleep returns at once.
  let poked = false
  const poke = () => {
    if (wake) wake()
    else poked = true
  }
  // A follower of one task wakes only for that task's events (or `*`: too many tasks to name).
  const taskKey = typeof what.taskId === 'number' ? String(what.taskId) : null
  const onNotify = (payload: string) => {
    if (taskKey === null || payload === '*' || payload.split(',').includes(taskKey)) poke()
  }
  let unlisten: (() => Promise<void>) | null = null
  try {
    unlisten = await deps.db.listen(TASK_EVENTS_CHANNEL, onNotify)
  } catch (err) {
    deps.logger.warn({ err, ...what }, 'LISTEN failed, following by polling alone')
  }
  signal?.addEventListener('abort', poke)
  return {
    sleep: () =>
      new Promise<void>((resolve) => {
        if (poked) {
          poked = false
          resolve()
          return
        }
        const timer = setTimeout(done, pollMs)
        function done() {
          clearTimeout(timer)
          wake = null
          resolve()
        }
        wake = done
      }),
    close: async () => {
      signal?.removeEventListener('abort', poke)
      wake = null
      await unlisten?.().catch(() => {})
    },
  }
}
