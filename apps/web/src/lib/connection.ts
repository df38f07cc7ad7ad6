import { createValueStore } from './value-store'

/**
 * Whether the console can reach its server, from three signals: the browser's own offline flag,
 * an event stream that lost its connection, and a call that got no answer. While a call went
 * unanswered (and only then), the server's health is probed with a growing pause until it answers;
 * then every query is refetched. Event streams reconnect by themselves and resume from their
 * last event.
 */
export type Cause = 'browser' | 'stream' | 'network'

export interface Connection {
  readonly state: ReturnType<typeof createValueStore<{ online: boolean }>>
  /**
   * The browser's own flag alone. While it says offline, event streams are closed (a connection
   * kept open across a network change may be dead without anyone noticing for minutes); when it
   * says online again they are opened anew from their last event.
   */
  readonly browserOnline: ReturnType<typeof createValueStore<boolean>>
  offline(cause: Cause): void
  online(cause: Cause): void
  dispose(): void
}

export function createConnection(opts: {
  probe: () => Promise<boolean>
  onRecovered: () => void
  /** ms before the first probe; doubled up to 8× */
  probeMs?: number
}): Connection {
  const state = createValueStore({ online: true })
  const browserOnline = createValueStore(true)
  const causes = new Set<Cause>()
  let probing: ReturnType<typeof setTimeout> | null = null
  let wasOffline = false
  const update = () => {
    const online = causes.size === 0
    if (online === state.get().online) return
    state.set({ online })
    if (!online) wasOffline = true
    else if (wasOffline) {
      wasOffline = false
      opts.onRecovered()
    }
  }
  const base = opts.probeMs ?? 1000
  const probe = (delay: number) => {
    probing = setTimeout(async () => {
      const ok = await opts.probe().catch(() => false)
      if (!causes.has('network')) return
      if (ok) {
        probing = null
        causes.delete('network')
        update()
      } else probe(Math.min(delay * 2, base * 8))
    }, delay)
  }
  const onBrowserOffline = () => conn.offline('browser')
  const onBrowserOnline = () => conn.online('browser')
  const conn: Connection = {
    state,
    browserOnline,
    offline(cause) {
      if (cause === 'browser') browserOnline.set(false)
      causes.add(cause)
      if (cause === 'network' && probing === null) probe(base)
      update()
    },
    online(cause) {
      if (cause === 'browser') browserOnline.set(true)
      causes.delete(cause)
      // A stream that came back is proof the server answers again.
      if (cause === 'stream') causes.delete('network')
      update()
    },
    dispose() {
      if (probing) clearTimeout(probing)
      window.removeEventListener('offline', onBrowserOffline)
      window.removeEventListener('online', onBrowserOnline)
    },
  }
  window.addEventListener('offline', onBrowserOffline)
  window.addEventListener('online', onBrowserOnline)
  if (typeof navigator !== 'undefined' && navigator.onLine === false) {
    causes.add('browser')
    browserOnline.set(false)
  }
  update()
  return conn
}
