import { RateLimitedError } from '@stdops/core'
import type { Caller } from './auth'
import type { Deps } from './deps'

/**
 * How long an event stream stays open and how many one user may hold (per process). A stream that
 * reaches its maximum duration ends like a stream of a stopping server: the client follows again
 * from the last event it saw (`lastEventId`), on this process or another. A connection that is
 * idle forever, or a script that opens streams in a loop, thus holds the server for a bounded time
 * and a bounded number of slots.
 */
export interface StreamLimits {
  /** Longest a stream stays open, ms. */
  readonly maxMs: number
  /** Streams one user may hold open at once in this process. */
  readonly perUser: number
  /** Open streams per user now. */
  openFor(username: string): number
  /**
   * Takes a slot for `caller` (RateLimitedError past `perUser`); returns the stream's signal (the
   * caller's, the server's stop, and the maximum duration) and the release, safe to call twice.
   */
  open(
    caller: Caller,
    signal: AbortSignal | undefined,
    closing: AbortSignal,
  ): { signal: AbortSignal; release(): void }
}

export function createStreamLimits(opts: { maxMs: number; perUser: number }): StreamLimits {
  const open = new Map<string, number>()
  return {
    maxMs: opts.maxMs,
    perUser: opts.perUser,
    openFor: (username) => open.get(username) ?? 0,
    open(caller, signal, closing) {
      const n = open.get(caller.username) ?? 0
      if (n >= opts.perUser)
        throw new RateLimitedError(
          `too many open event streams for user ${caller.username}: at most ${opts.perUser} at once (STDOPS_STREAM_MAX_PER_USER); close one first`,
        )
      open.set(caller.username, n + 1)
      let released = false
      const release = () => {
        if (released) return
        released = true
        const left = (open.get(caller.username) ?? 1) - 1
        if (left <= 0) open.delete(caller.username)
        else open.set(caller.username, left)
      }
      // the request's end releases the slot too: a stream that never started runs no finally
      signal?.addEventListener('abort', release, { once: true })
      const signals = [closing, AbortSignal.timeout(opts.maxMs)]
      if (signal) signals.push(signal)
      return { signal: AbortSignal.any(signals), release }
    },
  }
}

/** The stream's slot and signal for a follower (see followTaskEvents, followTaskChanges). */
export const openStream = (deps: Deps, caller: Caller, signal: AbortSignal | undefined) =>
  deps.streams.open(caller, signal, deps.lifecycle.closing)
