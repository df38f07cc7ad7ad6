import { z } from 'zod'
import { defineComponent } from './define'

const SECONDS = /^\s*\d+(\.\d+)?\s*$/
// bk-sops also accepts "YYYY-MM-DD HH:MM:SS" (local time); ISO 8601 date-times as Date parses them.
const DATE_TIME = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$/

/** `bk_timing`: seconds to wait (a number or numeric text), or the date-time to wait until. */
export const TimingSchema = z.union([z.number(), z.string()]).transform((value, ctx) => {
  if (typeof value === 'number' || SECONDS.test(value)) {
    const seconds = Number(value)
    if (Number.isFinite(seconds) && seconds >= 0) return { seconds } as const
    ctx.addIssue({ code: 'custom', message: 'seconds must be a number ≥ 0' })
    return z.NEVER
  }
  const text = value.trim()
  const at = DATE_TIME.test(text) ? Date.parse(text.replace(' ', 'T')) : Number.NaN
  if (Number.isNaN(at)) {
    ctx.addIssue({ code: 'custom', message: `expected seconds or an ISO 8601 date-time, got "${value}"` })
    return z.NEVER
  }
  return { at } as const
})

export const sleepTimer = defineComponent({
  code: 'sleep_timer',
  name: 'Timer',
  version: '1.0',
  inputs: z.object({ bk_timing: TimingSchema }),
  outputs: z.object({}),
  // A durable timer: the job row waits with a due time; no worker is held until then.
  async execute({ bk_timing }, ctx) {
    const until = 'seconds' in bk_timing ? ctx.now() + Math.round(bk_timing.seconds * 1000) : bk_timing.at
    return { status: 'wait', until }
  },
})
