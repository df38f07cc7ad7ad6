/**
 * Coalesced wake-ups: `add(channel, key)` any number of times in a tick sends one notification per
 * channel on the next tick, its payload the distinct keys comma-separated, or `*` (anything
 * changed) when they would not fit in PostgreSQL's 8000-byte payload. Listeners treat a
 * notification as a hint to look (they also poll), so a lost or merged one costs latency only.
 */
const MAX_PAYLOAD = 7900

export interface Publisher {
  add(channel: string, key: string): void
  /** Sends what is pending now (before the connection closes). */
  flush(): Promise<void>
}

export function createPublisher(
  send: (channel: string, payload: string) => Promise<void>,
  onError: (err: unknown) => void = () => {},
): Publisher {
  const pending = new Map<string, Set<string>>()
  let queued = false
  const flush = async () => {
    queued = false
    const batches = [...pending]
    pending.clear()
    await Promise.all(
      batches.map(([channel, keys]) => {
        const payload = [...keys].join(',')
        return send(channel, payload.length > MAX_PAYLOAD ? '*' : payload).catch(onError)
      }),
    )
  }
  return {
    flush,
    add(channel, key) {
      let keys = pending.get(channel)
      if (!keys) {
        keys = new Set()
        pending.set(channel, keys)
      }
      keys.add(key)
      if (!queued) {
        queued = true
        setImmediate(() => void flush())
      }
    },
  }
}
