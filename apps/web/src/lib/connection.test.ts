import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createConnection } from './connection'

describe('createConnection', () => {
  beforeEach(() => vi.useFakeTimers())
  afterEach(() => vi.useRealTimers())

  it('is offline while any cause holds, and refetches once when all are gone', () => {
    const onRecovered = vi.fn()
    const c = createConnection({ probe: async () => false, onRecovered })
    c.offline('stream')
    c.offline('browser')
    expect(c.state.get().online).toBe(false)
    c.online('browser')
    expect(c.state.get().online).toBe(false)
    c.online('stream')
    expect(c.state.get().online).toBe(true)
    expect(onRecovered).toHaveBeenCalledTimes(1)
    c.dispose()
  })

  it('probes the server after an unanswered call, backing off, until it answers', async () => {
    let up = false
    const probe = vi.fn(async () => up)
    const onRecovered = vi.fn()
    const c = createConnection({ probe, onRecovered, probeMs: 100 })
    c.offline('network')
    await vi.advanceTimersByTimeAsync(100)
    expect(probe).toHaveBeenCalledTimes(1)
    await vi.advanceTimersByTimeAsync(150)
    expect(probe).toHaveBeenCalledTimes(1) // next one 200 ms after the first
    await vi.advanceTimersByTimeAsync(50)
    expect(probe).toHaveBeenCalledTimes(2)
    up = true
    await vi.advanceTimersByTimeAsync(400)
    expect(c.state.get().online).toBe(true)
    expect(onRecovered).toHaveBeenCalledTimes(1)
    await vi.advanceTimersByTimeAsync(5000)
    expect(probe).toHaveBeenCalledTimes(3) // no probing once online
    c.dispose()
  })

  it('takes a reconnected stream as proof that the server answers', () => {
    const c = createConnection({ probe: async () => false, onRecovered: () => {} })
    c.offline('network')
    c.offline('stream')
    c.online('stream')
    expect(c.state.get().online).toBe(true)
    // Only the browser's own flag closes the streams.
    expect(c.browserOnline.get()).toBe(true)
    c.dispose()
  })

  it('follows the browser’s offline and online events', () => {
    const c = createConnection({ probe: async () => true, onRecovered: () => {} })
    window.dispatchEvent(new Event('offline'))
    expect(c.state.get().online).toBe(false)
    expect(c.browserOnline.get()).toBe(false)
    window.dispatchEvent(new Event('online'))
    expect(c.state.get().online).toBe(true)
    expect(c.browserOnline.get()).toBe(true)
    c.dispose()
  })
})
