/**
 * Failed authentications per (app code, client address) in fixed one-minute windows:
 * past `limit` failures, further failing attempts are refused until the window ends. Only
 * failures are counted and only failures are refused, so good credentials are never blocked.
 * Per process: with several API processes the effective limit is `limit` × processes.
 */
export class RateLimiter {
  #windows = new Map<string, { start: number; failures: number }>()

  constructor(
    readonly limit = 20,
    readonly windowMs = 60_000,
  ) {}

  /** Records one failure; returns true when this attempt is past the limit. */
  fail(key: string, now: number): boolean {
    let w = this.#windows.get(key)
    if (!w || now - w.start >= this.windowMs) {
      w = { start: now, failures: 0 }
      this.#windows.set(key, w)
      if (this.#windows.size > 10_000) this.#sweep(now)
    }
    w.failures += 1
    return w.failures > this.limit
  }

  #sweep(now: number) {
    for (const [k, w] of this.#windows) if (now - w.start >= this.windowMs) this.#windows.delete(k)
  }
}
