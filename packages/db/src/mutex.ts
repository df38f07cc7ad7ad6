/** A FIFO async lock: one holder at a time. */
export class Mutex {
  #tail: Promise<void> = Promise.resolve()

  async run<T>(fn: () => Promise<T> | T): Promise<T> {
    let release!: () => void
    const next = new Promise<void>((r) => {
      release = r
    })
    const prev = this.#tail
    this.#tail = prev.then(() => next)
    await prev
    try {
      return await fn()
    } finally {
      release()
    }
  }
}
