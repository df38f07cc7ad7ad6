import { describe, expect, it } from 'vitest'
import {
  dayBoundary,
  formatDuration,
  formatTime,
  parseLegacyTime,
  toLocalInput,
  toPlanStartTime,
} from './time'

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

  it('writes a time picked in the shown zone as a plan_start_time with its offset', () => {
    expect(toPlanStartTime('2026-12-01T16:05', true)).toBe('2026-12-01 16:05:00 +0000')
    expect(toPlanStartTime('2026-12-01T16:05:09', true)).toBe('2026-12-01 16:05:09 +0000')
    // In the browser's zone: the offset is that zone's on that day, and the instant round-trips.
    const local = toPlanStartTime('2026-07-01T09:30:00', false)!
    expect(parseLegacyTime(local)).toBe(new Date(2026, 6, 1, 9, 30, 0).getTime())
    expect(toPlanStartTime('2026-12-01', true)).toBeNull()
    expect(toPlanStartTime('2026-02-30T10:00', false)).toBeNull()
  })

  it('fills a datetime-local input from an instant, in either zone', () => {
    const ms = Date.UTC(2026, 11, 1, 0, 3, 5)
    expect(toLocalInput(ms, true)).toBe('2026-12-01T00:03:05')
    expect(parseLegacyTime(toPlanStartTime(toLocalInput(ms, false), false))).toBe(ms)
  })
})
