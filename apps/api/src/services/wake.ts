import type { Deps } from './deps'

/** Published (PostgreSQL NOTIFY, or in-process on SQLite) when task events commit; payload the task id. */
export const TASK_EVENTS_CHANNEL = 'stdops_task_events'

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
  const poke = () => wake?.()
  let unlisten: (() => Promise<void>) | null = null
  try {
    unlisten = await deps.db.listen(TASK_EVENTS_CHANNEL, poke)
  } catch (err) {
    deps.logger.warn({ err, ...what }, 'LISTEN failed, following by polling alone')
  }
  signal?.addEventListener('abort', poke)
  return {
    sleep: () =>
      new Promise<void>((resolve) => {
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
