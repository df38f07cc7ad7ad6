/**
 * The server's stop, in the order that leaves nothing using the database once it closes: stop
 * accepting, end the event streams, let every request and use case in flight finish, stop the
 * worker (it drains its own nodes), and only then close the pool.
 *
 * `track` counts a piece of work in flight (a route handler, an event stream); `closing` aborts
 * when the stop begins, for work that would otherwise wait for its client (event streams);
 * `stopping` turns /readyz to 503 so that a load balancer stops sending requests.
 */
export interface Lifecycle {
  readonly stopping: boolean
  /** Aborted when the stop begins. */
  readonly closing: AbortSignal
  /** Runs `fn`, counted as in flight until it settles. */
  track<T>(fn: () => Promise<T>): Promise<T>
  /** Counted as in flight until the returned function is called (once). */
  enter(): () => void
  readonly inFlight: number
  beginStop(): void
  /** Resolves true once nothing is in flight, false when `timeoutMs` passes first. */
  drained(timeoutMs: number): Promise<boolean>
}

export function createLifecycle(): Lifecycle {
  const controller = new AbortController()
  let stopping = false
  let inFlight = 0
  let waiters: Array<() => void> = []

  const leave = () => {
    inFlight--
    if (inFlight === 0) {
      for (const w of waiters) w()
      waiters = []
    }
  }
  const enter = () => {
    inFlight++
    let left = false
    return () => {
      if (left) return
      left = true
      leave()
    }
  }

  return {
    get stopping() {
      return stopping
    },
    closing: controller.signal,
    get inFlight() {
      return inFlight
    },
    enter,
    async track(fn) {
      const done = enter()
      try {
        return await fn()
      } finally {
        done()
      }
    },
    beginStop() {
      if (stopping) return
      stopping = true
      controller.abort(new Error('the server is stopping'))
    },
    drained(timeoutMs) {
      if (inFlight === 0) return Promise.resolve(true)
      return new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => {
          waiters = waiters.filter((w) => w !== done)
          resolve(false)
        }, timeoutMs)
        timer.unref()
        function done() {
          clearTimeout(timer)
          resolve(true)
        }
        waiters.push(done)
      })
    },
  }
}
