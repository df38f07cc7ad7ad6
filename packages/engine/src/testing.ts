/**
 * Components for tests and drills; not registered by default (pass them in `components`).
 */
import { z } from 'zod'
import { defineComponent, sleep } from './components/define'

/** Finishes at once with no outputs, whatever its inputs. */
export const noop = defineComponent({
  code: 'noop',
  name: 'No-op',
  version: '1.0',
  inputs: z.record(z.string(), z.unknown()),
  outputs: z.object({}),
  async execute() {
    return { status: 'finished', outputs: {} }
  },
})

/** Holds a worker for `ms` milliseconds (default 300), stopping at once when aborted. */
export const sleepMs = defineComponent({
  code: 'sleep_ms',
  name: 'Sleep (holding a worker)',
  version: '1.0',
  inputs: z.object({ ms: z.coerce.number().int().min(0).default(300) }),
  outputs: z.object({ slept: z.number() }),
  async execute({ ms }, ctx) {
    await sleep(ms, ctx.signal)
    return { status: 'finished', outputs: { slept: ms } }
  },
})

/** Holds a worker for `ms` milliseconds (default 5000) and ignores abort: for the grace period. */
export const slowIgnoreAbort = defineComponent({
  code: 'slow_ignore_abort',
  name: 'Slow, ignoring abort',
  version: '1.0',
  inputs: z.object({ ms: z.coerce.number().int().min(0).default(5000) }),
  outputs: z.object({ slept: z.number() }),
  async execute({ ms }) {
    await new Promise((resolve) => setTimeout(resolve, ms))
    return { status: 'finished', outputs: { slept: ms } }
  },
})

/** Outputs `value` + 1 (for loops that count). */
export const increment = defineComponent({
  code: 'increment',
  name: 'Increment',
  version: '1.0',
  inputs: z.object({ value: z.coerce.number() }),
  outputs: z.object({ value: z.number() }),
  async execute({ value }) {
    return { status: 'finished', outputs: { value: value + 1 } }
  },
})

/** Fails (with a message naming `value`) unless `ok` is true; logs what it saw through ctx.log. */
export const check = defineComponent({
  code: 'check',
  name: 'Check',
  version: '1.0',
  inputs: z.object({
    ok: z.preprocess((v) => v === true || v === 'true', z.boolean()),
    value: z.unknown().optional(),
  }),
  outputs: z.object({ value: z.unknown() }),
  async execute({ ok, value }, ctx) {
    ctx.log(`checking ok=${ok} value=${JSON.stringify(value ?? null)}`)
    return ok
      ? { status: 'finished', outputs: { value: value ?? null } }
      : { status: 'failed', error: `check failed: ok is false (value ${JSON.stringify(value ?? null)})` }
  },
})

/** Fails its first `failures` runs in this process (per task and node), then finishes: for automatic retries. */
const flakyRuns = new Map<string, number>()
export const flaky = defineComponent({
  code: 'flaky',
  name: 'Flaky',
  version: '1.0',
  inputs: z.object({ failures: z.coerce.number().int().min(0).default(2) }),
  outputs: z.object({ runs: z.number() }),
  async execute({ failures }, ctx) {
    const key = `${ctx.taskId}:${ctx.nodeId}`
    const runs = (flakyRuns.get(key) ?? 0) + 1
    flakyRuns.set(key, runs)
    ctx.log(`run ${runs}`)
    return runs <= failures
      ? { status: 'failed', error: `flaky: run ${runs} of ${failures} failing ones` }
      : { status: 'finished', outputs: { runs } }
  },
})

export const TEST_COMPONENTS = [noop, sleepMs, slowIgnoreAbort, increment, check, flaky]
