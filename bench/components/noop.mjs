// Components for `pnpm bench`, loaded through STDOPS_COMPONENTS (see bench/src/lib/proc.ts).
// Plain JavaScript with no imports beyond node:, so that any stdops process can load it.
import { appendFileSync } from 'node:fs'

/** Accepts anything: the bench measures the engine, not schema validation. */
const anything = { safeParse: (v) => ({ success: true, data: v ?? {} }) }

/** Finishes at once with no outputs. */
const benchNoop = {
  code: 'bench_noop',
  name: 'Bench no-op',
  version: '1.0',
  inputs: anything,
  outputs: anything,
  async execute() {
    return { status: 'finished', outputs: {} }
  },
}

/**
 * Holds a worker for `ms` milliseconds (default 100). When aborted, it stops at once and, if
 * BENCH_ABORT_LOG names a file, appends `taskId nodeId epochMs` to it: the moment the abort
 * reached the component, for the revoke-to-abort measurement.
 */
const benchHold = {
  code: 'bench_hold',
  name: 'Bench hold',
  version: '1.0',
  inputs: anything,
  outputs: anything,
  async execute(inputs, ctx) {
    const ms = Number(inputs?.ms ?? 100)
    await new Promise((resolve, reject) => {
      const onAbort = () => {
        const at = performance.timeOrigin + performance.now()
        clearTimeout(timer)
        const log = process.env.BENCH_ABORT_LOG
        if (log) appendFileSync(log, `${ctx.taskId} ${ctx.nodeId} ${at.toFixed(3)}\n`)
        reject(ctx.signal.reason)
      }
      const timer = setTimeout(() => {
        ctx.signal.removeEventListener('abort', onAbort)
        resolve()
      }, ms)
      if (ctx.signal.aborted) onAbort()
      else ctx.signal.addEventListener('abort', onAbort, { once: true })
    })
    return { status: 'finished', outputs: {} }
  },
}

export default [benchNoop, benchHold]
