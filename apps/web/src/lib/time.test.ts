import { describe, expect, it } from 'vitest'
import { dayBoundary, formatDuration, formatTime, parseLegacyTime } from './time'

describe('time', () => {
  it('reads the legacy API’s times with their offset', () => {
    expect(parseLegacyTime('2026-12-01 08:03:05 +0800')).toBe(Date.UTC(2026, 11, 1, 0, 3, 5))
    expect(parseLegacyTime('2026-12-01 08:03:05 -0130')).toBe(Date.UTC(2026, 11, 1, 9, 33, 5))
    expect(parseLegacyTime('yesterday')).toBeNull()
    expect(parseLegacyTime(null)).toBeNull()
  })

  it('shows a time in UTC on request', () => {
    expect(formatTime(Date.UTC(2026, 11, 1, 0, 3, 5), true)).toBe('2026-12-01 00:03:05 UTC')
    expect(formatTime(null, true)).toBe('—')
  })

  it('shows durations compactly', () => {
    expect(formatDuration(7_400)).toBe('7s')
    expect(formatDuration(245_000)).toBe('4m 05s')
    expect(formatDuration(3_723_000)).toBe('1h 02m 03s')
  })

  it('turns a day into the bounds of a time range', () => {
    expect(dayBoundary('2026-12-01', false, true)).toBe(Date.UTC(2026, 11, 1))
    expect(dayBoundary('2026-12-01', true, true)).toBe(Date.UTC(2026, 11, 1, 23, 59, 59, 999))
    expect(dayBoundary('bad', true, true)).toBeNull()
  })
})
