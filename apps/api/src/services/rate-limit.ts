import { createHash } from 'node:crypto'

/**
 * Failed authentications per key (an app code and a client address) in fixed one-minute windows:
 * past `limit` failures, further failing attempts are refused until the window ends. Only failures
 * are counted and only failures are refused, so good credentials are never blocked. Per process:
 * with several API processes the effective limit is `limit` × processes.
 *
 * Bounded, since the keys come from unauthenticated requests: each key is kept as a SHA-256
 * digest (32 bytes whatever was sent), and at most `maxKeys` windows are held: when the map is
 * full, ended windows are swept, then the oldest windows are dropped. A flood of fresh keys can
 * thus forget an older key's failures early; it cannot grow the process.
 */
export class RateLimiter {
  #windows = new Map<string, { start: number; failures: number }>()

  constructor(
    readonly limit = 20,
    readonly windowMs = 60_000,
    readonly maxKeys = 10_000,
  ) {}

  /** Windows held now (at most maxKeys). */
  get size(): number {
    return this.#windows.size
  }

  /** Characters held in keys (each a 43-character digest). */
  get keyChars(): number {
    let n = 0
    for (const k of this.#windows.keys()) n += k.length
    return n
  }

  /** Records one failure; returns true when this attempt is past the limit. */
  fail(key: string, now: number): boolean {
    const digest = createHash('sha256').update(key).digest('base64url')
    let w = this.#windows.get(digest)
    if (!w || now - w.start >= this.windowMs) {
      this.#windows.delete(digest)
      if (this.#windows.size >= this.maxKeys) this.#makeRoom(now)
      w = { start: now, failures: 0 }
      this.#windows.set(digest, w)
    }
    w.failures += 1
    return w.failures > this.limit
  }

  #makeRoom(now: number) {
    for (const [k, w] of this.#windows) if (now - w.start >= this.windowMs) this.#windows.delete(k)
    // still full: drop the oldest windows (a Map iterates in insertion order), a tenth at a time
    if (this.#windows.size >= this.maxKeys) {
      let drop = Math.max(1, Math.floor(this.maxKeys / 10))
      for (const k of this.#windows.keys()) {
        if (drop-- <= 0) break
        this.#windows.delete(k)
      }
    }
  }
}
