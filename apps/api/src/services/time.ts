import { formatLegacyTime } from '@stdops/core'
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
