const pad = (n: number, width = 2) => String(n).padStart(width, '0')

/**
 * `YYYY-MM-DD HH:MM:SS +ZZZZ` as the legacy API writes times, in the zone `offsetMinutes` east of
 * UTC (e.g. 480 for +0800); null stays null.
 */
export function formatLegacyTime(date: Date | null, offsetMinutes: number): string | null {
  if (date === null) return null
  const local = new Date(date.getTime() + offsetMinutes * 60_000)
  const sign = offsetMinutes < 0 ? '-' : '+'
  const offset = Math.abs(offsetMinutes)
  return (
    `${pad(local.getUTCFullYear(), 4)}-${pad(local.getUTCMonth() + 1)}-${pad(local.getUTCDate())} ` +
    `${pad(local.getUTCHours())}:${pad(local.getUTCMinutes())}:${pad(local.getUTCSeconds())} ` +
    `${sign}${pad(Math.floor(offset / 60))}${pad(offset % 60)}`
  )
}
