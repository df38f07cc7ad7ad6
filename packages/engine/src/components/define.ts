import type { z } from 'zod'
import type { ComponentModule } from '../types'

/** Identity, for type inference: `execute`'s inputs are the output type of the `inputs` schema. */
export function defineComponent<In extends z.ZodType, Out extends z.ZodType>(
  module: ComponentModule<In, Out>,
): ComponentModule<In, Out> {
  return module
}

/** Resolves after `ms`, or rejects with the signal's reason when it is aborted first. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason)
      return
    }
    const onAbort = () => {
      clearTimeout(timer)
      reject(signal.reason)
    }
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal.addEventListener('abort', onAbort, { once: true })
  })
}
