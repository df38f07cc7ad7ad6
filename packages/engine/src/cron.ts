/**
 * Cron evaluation for periodic tasks, with croner (see docs/dependencies.md). A bk-sops cron is
 * Celery's crontab: five fields, day_of_week 0–6 from Sunday, and a day that must match BOTH
 * day_of_month and day_of_week (Celery ANDs them; classic cron ORs them): croner's `domAndDow`.
 * Every time is evaluated in one IANA time zone, the server's unless told otherwise.
 */
import { CRON_FIELDS, type CronField, type CronSpec } from '@stdops/core'
import { Cron } from 'croner'

/** The zone the process runs in (what `TZ` says, else the system's). */
export function localTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone
}

const CACHE_MAX = 1000
const cache = new Map<string, Cron>()

/** croner's order: minute hour day-of-month month day-of-week. */
const patternOf = (s: CronSpec) =>
  `${s.minute} ${s.hour} ${s.day_of_month} ${s.month_of_year} ${s.day_of_week}`

function cronOf(spec: CronSpec, timeZone: string): Cron {
  const key = `${timeZone}\u0000${patternOf(spec)}`
  let c = cache.get(key)
  if (!c) {
    c = new Cron(patternOf(spec), { timezone: timeZone, domAndDow: true })
    if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value as string)
    cache.set(key, c)
  }
  return c
}

/**
 * Null when the cron is valid and can fire; else the first field at fault and why (each field is
 * checked alone, so that the reply names it), or `field: null` when the fields are each valid but
 * never meet (`30 2 31 2 *`: 31 February).
 */
export function checkCron(
  spec: CronSpec,
  timeZone: string,
): { field: CronField | null; message: string } | null {
  for (const field of CRON_FIELDS) {
    const alone = {
      minute: '*',
      hour: '*',
      day_of_week: '*',
      day_of_month: '*',
      month_of_year: '*',
      [field]: spec[field],
    }
    try {
      new Cron(patternOf(alone), { domAndDow: true })
    } catch (err) {
      const why = err instanceof Error ? err.message.replace(/^CronPattern:\s*/, '') : String(err)
      return { field, message: `'${spec[field]}' is not a valid cron field (${why})` }
    }
  }
  try {
    if (cronOf(spec, timeZone).nextRun(new Date()) === null)
      return { field: null, message: 'the fields never meet: this cron would never fire' }
  } catch (err) {
    return { field: null, message: err instanceof Error ? err.message : String(err) }
  }
  return null
}

/** The first due time strictly after `after` (epoch ms), or null if there is none. */
export function nextDue(spec: CronSpec, timeZone: string, after: number): number | null {
  return cronOf(spec, timeZone).nextRun(new Date(after))?.getTime() ?? null
}

/** The next `n` due times strictly after `after`. */
export function nextDues(spec: CronSpec, timeZone: string, after: number, n: number): number[] {
  return cronOf(spec, timeZone)
    .nextRuns(n, new Date(after))
    .map((d) => d.getTime())
}

/** The latest due time at or before `at`, or null if there is none. */
export function latestDue(spec: CronSpec, timeZone: string, at: number): number | null {
  return (
    cronOf(spec, timeZone)
      .previousRuns(1, new Date(at + 1))[0]
      ?.getTime() ?? null
  )
}

const formatters = new Map<string, Intl.DateTimeFormat>()
function partsIn(ms: number, timeZone: string): Record<string, string> {
  let f = formatters.get(timeZone)
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      timeZoneName: 'longOffset',
    })
    formatters.set(timeZone, f)
  }
  return Object.fromEntries(f.formatToParts(new Date(ms)).map((p) => [p.type, p.value]))
}

/** `YYYYmmddHHMMSS`, the wall-clock time in `timeZone`: the suffix of a periodic firing's task name. */
export function wallClockStamp(ms: number, timeZone: string): string {
  const p = partsIn(ms, timeZone)
  return `${p.year}${p.month}${p.day}${p.hour}${p.minute}${p.second}`
}

/** Minutes east of UTC in `timeZone` at `at` (moves with daylight saving). */
export function utcOffsetIn(timeZone: string, at: Date): number {
  const m = /^GMT(?:([+-])(\d{2}):?(\d{2})?)?$/.exec(partsIn(at.getTime(), timeZone).timeZoneName ?? '')
  if (!m?.[1]) return 0
  const minutes = Number(m[2]) * 60 + Number(m[3] ?? 0)
  return m[1] === '-' ? -minutes : minutes
}

/** True when `timeZone` is an IANA zone this runtime knows. */
export function isTimeZone(timeZone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone })
    return true
  } catch {
    return false
  }
}
