/** Times as the console shows them: in the user's zone, or in UTC when the user asks. */

/** The legacy API's `YYYY-MM-DD HH:MM:SS +ZZZZ` → epoch ms (null when absent or malformed). */
export function parseLegacyTime(s: string | null | undefined): number | null {
  if (!s) return null
  const m = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}) ([+-])(\d{2})(\d{2})$/.exec(s)
  if (!m) return null
  const ms = Date.parse(`${m[1]}T${m[2]}${m[3]}${m[4]}:${m[5]}`)
  return Number.isNaN(ms) ? null : ms
}

const formatters = new Map<string, Intl.DateTimeFormat>()
function formatter(utc: boolean): Intl.DateTimeFormat {
  const key = utc ? 'utc' : 'local'
  let f = formatters.get(key)
  if (!f) {
    f = new Intl.DateTimeFormat('en-CA', {
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      hourCycle: 'h23',
      timeZoneName: 'short',
      ...(utc ? { timeZone: 'UTC' } : {}),
    })
    formatters.set(key, f)
  }
  return f
}

/** `2026-12-01 14:03:05 GMT+8` (or `… UTC`): sortable, unambiguous, the same in every language. */
export function formatTime(ms: number | null | undefined, utc: boolean): string {
  if (ms === null || ms === undefined) return '—'
  const parts = Object.fromEntries(
    formatter(utc)
      .formatToParts(new Date(ms))
      .map((p) => [p.type, p.value]),
  )
  return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}:${parts.second} ${utc ? 'UTC' : parts.timeZoneName}`
}

/** `1h 02m 03s`, `4m 05s`, `7s`. */
export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || ms < 0) return '—'
  const s = Math.floor(ms / 1000)
  const h = Math.floor(s / 3600)
  const m = Math.floor((s % 3600) / 60)
  const sec = s % 60
  const pad = (n: number) => String(n).padStart(2, '0')
  if (h > 0) return `${h}h ${pad(m)}m ${pad(sec)}s`
  if (m > 0) return `${m}m ${pad(sec)}s`
  return `${sec}s`
}

/** A day (`YYYY-MM-DD`, from a date input) as epoch ms at its start (or end) in the shown zone. */
export function dayBoundary(day: string, end: boolean, utc: boolean): number | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(day)
  if (!m) return null
  const [y, mo, d] = [Number(m[1]), Number(m[2]) - 1, Number(m[3])]
  const [h, mi, s, ms] = end ? [23, 59, 59, 999] : [0, 0, 0, 0]
  return utc ? Date.UTC(y, mo, d, h, mi, s, ms) : new Date(y, mo, d, h, mi, s, ms).getTime()
}

/**
 * A time as a `datetime-local` input holds it (`YYYY-MM-DDTHH:MM[:SS]`), read in the shown zone
 * (the browser's, or UTC), as the API's `plan_start_time`: `YYYY-MM-DD HH:MM:SS +HHMM`, so the
 * server never has to guess the zone. Null when it is not such a time.
 */
export function toPlanStartTime(local: string, utc: boolean): string | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$/.exec(local)
  if (!m) return null
  const [y, mo, d, h, mi, s] = [1, 2, 3, 4, 5, 6].map((i) => Number(m[i] ?? 0)) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ]
  const date = new Date(y, mo - 1, d, h, mi, s)
  if (!utc && (date.getFullYear() !== y || date.getMonth() !== mo - 1 || date.getDate() !== d)) return null
  const offset = utc ? 0 : -date.getTimezoneOffset()
  const sign = offset < 0 ? '-' : '+'
  const abs = Math.abs(offset)
  const pad = (n: number) => String(n).padStart(2, '0')
  return `${y}-${pad(mo)}-${pad(d)} ${pad(h)}:${pad(mi)}:${pad(s)} ${sign}${pad(Math.floor(abs / 60))}${pad(abs % 60)}`
}

/** epoch ms → a `datetime-local` value (`YYYY-MM-DDTHH:MM:SS`) in the shown zone. */
export function toLocalInput(ms: number, utc: boolean): string {
  const d = new Date(ms)
  const pad = (n: number) => String(n).padStart(2, '0')
  const [y, mo, day, h, mi, s] = utc
    ? [
        d.getUTCFullYear(),
        d.getUTCMonth() + 1,
        d.getUTCDate(),
        d.getUTCHours(),
        d.getUTCMinutes(),
        d.getUTCSeconds(),
      ]
    : [d.getFullYear(), d.getMonth() + 1, d.getDate(), d.getHours(), d.getMinutes(), d.getSeconds()]
  return `${y}-${pad(mo)}-${pad(day)}T${pad(h)}:${pad(mi)}:${pad(s)}`
}
