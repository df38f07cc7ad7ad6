import { formatLegacyTime, ParamInvalidError, TIME_FILTER } from '@stdops/core'
import { isTimeZone, utcOffsetIn } from '@stdops/engine'
import type { Deps } from './deps'

/** Epoch ms (number or bigint, from either database) → the legacy `YYYY-MM-DD HH:MM:SS +ZZZZ`. */
export function formatTime(
  deps: Pick<Deps, 'utcOffsetMinutes'>,
  ms: number | bigint | null | undefined,
): string | null {
  if (ms === null || ms === undefined) return null
  const d = new Date(Number(ms))
  return formatLegacyTime(d, deps.utcOffsetMinutes(d))
}

/** `YYYY-MM-DD HH:MM:SS` (or `YYYY-MM-DD`) in the server's zone → epoch ms. */
export function parseLocalTime(deps: Pick<Deps, 'utcOffsetMinutes'>, s: string): number | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2}))?)?$/.exec(s.trim())
  if (!m) return null
  const [, y, mo, d, h = '0', mi = '0', se = '0'] = m
  const utc = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(se))
  if (Number.isNaN(utc)) return null
  return utc - deps.utcOffsetMinutes(new Date(utc)) * 60_000
}

/**
 * A get_task_list time filter → epoch ms: `YYYY-MM-DD` (the day's start, or with `end` its last
 * second), `YYYY-MM-DD HH:MM[:SS]`, either with a UTC offset (`+0800`, ` +0800`, `+08:00`, `Z`) or
 * as ISO 8601 with `T`; without an offset it is read in the server's zone.
 */
export function parseTimeFilter(
  deps: Pick<Deps, 'utcOffsetMinutes'>,
  s: string,
  end: boolean,
): number | null {
  const m = TIME_FILTER.exec(s.trim())
  if (!m) return null
  const [, y, mo, d, h, mi, se, zone] = m
  const dateOnly = h === undefined
  const [hh, mm, ss] = dateOnly
    ? end
      ? [23, 59, 59]
      : [0, 0, 0]
    : [Number(h), Number(mi), Number(se ?? '0')]
  const utc = Date.UTC(Number(y), Number(mo) - 1, Number(d), hh, mm, ss)
  if (Number.isNaN(utc)) return null
  const day = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d)))
  if (day.getUTCDate() !== Number(d)) return null // 2024-02-31 and the like
  if (zone === undefined) return utc - deps.utcOffsetMinutes(new Date(utc)) * 60_000
  if (zone === 'Z') return utc
  const sign = zone.startsWith('-') ? -1 : 1
  const digits = zone.slice(1).replace(':', '')
  const offset = sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2, 4)))
  return utc - offset * 60_000
}

/**
 * The time deps of a reply in `expectedTimezone` (bk-sops's `expected_timezone`), or the server's
 * zone when none is asked; an unknown zone is refused naming it.
 */
export function zoneDeps<D extends Pick<Deps, 'utcOffsetMinutes'>>(
  deps: D,
  expectedTimezone: string | undefined,
): Pick<Deps, 'utcOffsetMinutes'> {
  if (expectedTimezone === undefined) return deps
  if (!isTimeZone(expectedTimezone))
    throw new ParamInvalidError(`invalid param: expected_timezone: unknown time zone '${expectedTimezone}'`)
  return { utcOffsetMinutes: (d: Date) => utcOffsetIn(expectedTimezone, d) }
}
