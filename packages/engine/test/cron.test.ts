import { type CronSpec, parseCronText } from '@stdops/core'
import { describe, expect, it } from 'vitest'
import { checkCron, latestDue, nextDue, nextDues, utcOffsetIn, wallClockStamp } from '../src/cron'

const cron = (s: Partial<CronSpec>): CronSpec => ({
  minute: '*',
  hour: '*',
  day_of_week: '*',
  day_of_month: '*',
  month_of_year: '*',
  ...s,
})
const t = (iso: string) => Date.parse(iso)
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString())

describe('cron evaluation (croner)', () => {
  it('next is strictly after, latest is at or before', () => {
    const every = cron({})
    expect(iso(nextDue(every, 'UTC', t('2026-01-01T00:05:00Z')))).toBe('2026-01-01T00:06:00.000Z')
    expect(iso(latestDue(every, 'UTC', t('2026-01-01T00:05:00Z')))).toBe('2026-01-01T00:05:00.000Z')
    expect(iso(latestDue(every, 'UTC', t('2026-01-01T00:05:59.999Z')))).toBe('2026-01-01T00:05:00.000Z')
    // after two hours of downtime, the latest missed due time
    expect(iso(latestDue(cron({ minute: '*/15' }), 'UTC', t('2026-01-01T02:07:00Z')))).toBe(
      '2026-01-01T02:00:00.000Z',
    )
  })

  it('day of month AND day of week, as Celery’s crontab (bk-sops) means them: the first Monday of a month', () => {
    const firstMonday = cron({ minute: '0', hour: '9', day_of_month: '1-7', day_of_week: '1' })
    expect(nextDues(firstMonday, 'UTC', t('2026-01-01T00:00:00Z'), 3).map(iso)).toEqual([
      '2026-01-05T09:00:00.000Z',
      '2026-02-02T09:00:00.000Z',
      '2026-03-02T09:00:00.000Z',
    ])
  })

  it('day_of_week counts from Sunday = 0, names accepted', () => {
    const sunday = nextDue(
      cron({ minute: '0', hour: '0', day_of_week: '0' }),
      'UTC',
      t('2026-01-01T00:00:00Z'),
    )
    expect(new Date(sunday!).getUTCDay()).toBe(0)
    const named = nextDue(
      cron({ minute: '0', hour: '0', day_of_week: 'sun' }),
      'UTC',
      t('2026-01-01T00:00:00Z'),
    )
    expect(named).toBe(sunday)
  })

  it('evaluates in the given zone', () => {
    const nine = cron({ minute: '0', hour: '9' })
    expect(iso(nextDue(nine, 'Asia/Shanghai', t('2026-01-01T00:00:00Z')))).toBe('2026-01-01T01:00:00.000Z')
    expect(wallClockStamp(t('2026-01-01T01:00:00Z'), 'Asia/Shanghai')).toBe('20260101090000')
    expect(utcOffsetIn('Asia/Shanghai', new Date())).toBe(480)
    expect(utcOffsetIn('Europe/Berlin', new Date(t('2026-07-01T00:00:00Z')))).toBe(120)
    expect(utcOffsetIn('America/St_Johns', new Date(t('2026-01-01T00:00:00Z')))).toBe(-210)
    expect(utcOffsetIn('UTC', new Date())).toBe(0)
  })

  it('checkCron names the field at fault, and refuses a cron that can never fire', () => {
    expect(checkCron(cron({ minute: '*/5' }), 'UTC')).toBeNull()
    expect(checkCron(cron({ minute: '60' }), 'UTC')).toMatchObject({ field: 'minute' })
    expect(checkCron(cron({ hour: '24' }), 'UTC')).toMatchObject({ field: 'hour' })
    expect(checkCron(cron({ day_of_week: 'someday' }), 'UTC')).toMatchObject({ field: 'day_of_week' })
    expect(checkCron(cron({ day_of_month: '0' }), 'UTC')).toMatchObject({ field: 'day_of_month' })
    expect(checkCron(cron({ month_of_year: '13' }), 'UTC')).toMatchObject({ field: 'month_of_year' })
    expect(checkCron(cron({ day_of_month: '30', month_of_year: '2' }), 'UTC')).toMatchObject({ field: null })
  })

  it('the string forms: a crontab line, and bk-sops’s written form read back', () => {
    expect(parseCronText('5 4 1 2 3')).toEqual({
      minute: '5',
      hour: '4',
      day_of_month: '1',
      month_of_year: '2',
      day_of_week: '3',
    })
    expect(parseCronText('5 4 3 1 2 (m/h/d/dM/MY)')).toEqual(parseCronText('5 4 1 2 3'))
    expect(parseCronText('5 4 1 2')).toBeNull()
  })
})
