import { statSync } from 'node:fs'
import { join } from 'node:path'
import pc from 'picocolors'
import { afterAll, describe, expect, it } from 'vitest'
import { configDir, readProfile, resolveConnection, writeProfile } from '../src/config'
import { UsageError } from '../src/errors'
import { formatDuration } from '../src/output/format'
import { layoutOf, renderStatus, type StatusTree } from '../src/output/status'
import { applyEvent, newWatchModel, renderEventLine, renderWatch, type TaskEvent } from '../src/output/watch'
import { cleanUp, failingTree, shortTree, tempDir } from './helpers'

const plain = pc.createColors(false)

afterAll(cleanUp)

describe('configuration', () => {
  const base = { STDOPS_URL: 'http://env:1', STDOPS_APP_CODE: 'env-app', STDOPS_APP_SECRET: 'env-secret' }

  it('lives in $XDG_CONFIG_HOME/stdops, else ~/.config/stdops', () => {
    expect(configDir({ XDG_CONFIG_HOME: '/x', HOME: '/h' })).toBe('/x/stdops')
    expect(configDir({ HOME: '/h' })).toBe('/h/.config/stdops')
  })

  it('takes flags over the environment over the profile', () => {
    const home = tempDir('stdops-unit-')
    const env = { HOME: home }
    writeProfile(env, 'default', {
      url: 'http://profile:1',
      app_code: 'p-app',
      app_secret: 'p-secret',
      token: 'p-token',
      project: 7,
    })
    expect(resolveConnection({}, env)).toEqual({
      url: 'http://profile:1',
      credentials: { appCode: 'p-app', appSecret: 'p-secret', token: 'p-token' },
      project: 7,
    })
    expect(resolveConnection({}, { ...env, ...base, STDOPS_PROJECT: '8' })).toMatchObject({
      url: 'http://env:1',
      credentials: { appCode: 'env-app', appSecret: 'env-secret', token: 'p-token' },
      project: 8,
    })
    expect(
      resolveConnection(
        { url: 'http://flag:1/', appCode: 'flag-app', project: 9, scope: 'project' },
        { ...env, ...base },
      ),
    ).toMatchObject({
      url: 'http://flag:1',
      credentials: { appCode: 'flag-app' },
      project: 9,
      scope: 'project',
    })
  })

  it('takes the user identity whole from one layer: a username never pairs with another layer’s token', () => {
    const home = tempDir('stdops-unit-')
    writeProfile({ HOME: home }, 'default', {
      url: 'http://p:1',
      app_code: 'a',
      app_secret: 's',
      token: 'p-token',
    })
    expect(resolveConnection({}, { HOME: home, STDOPS_USERNAME: 'alice' }).credentials).toEqual({
      appCode: 'a',
      appSecret: 's',
      username: 'alice',
    })
    expect(
      resolveConnection({ username: 'bob' }, { HOME: home, STDOPS_TOKEN: 't' }).credentials,
    ).toMatchObject({ username: 'bob' })
    expect(
      resolveConnection({ username: 'bob' }, { HOME: home, STDOPS_TOKEN: 't' }).credentials,
    ).not.toHaveProperty('token')
  })

  it('names what is missing, as a usage error', () => {
    const env = { HOME: tempDir('stdops-unit-') }
    expect(() => resolveConnection({}, env)).toThrow(UsageError)
    expect(() => resolveConnection({}, { ...env, STDOPS_URL: 'http://x' })).toThrow(/no app code/)
    expect(() => resolveConnection({}, { ...env, STDOPS_URL: 'http://x', STDOPS_APP_CODE: 'a' })).toThrow(
      /no app secret/,
    )
    expect(() => resolveConnection({}, { ...env, ...base })).toThrow(/no user/)
    expect(() =>
      resolveConnection({}, { ...env, ...base, STDOPS_TOKEN: 't', STDOPS_URL: 'ftp://x' }),
    ).toThrow(/http/)
  })

  it('writes profiles owner-only and keeps the others', () => {
    const env = { HOME: tempDir('stdops-unit-') }
    const path = writeProfile(env, 'a', { url: 'http://a' })
    writeProfile(env, 'b', { url: 'http://b' })
    expect(statSync(path).mode & 0o777).toBe(0o600)
    expect(statSync(join(env.HOME, '.config', 'stdops')).mode & 0o777).toBe(0o700)
    expect(readProfile(env, 'a')).toEqual({ url: 'http://a' })
    expect(readProfile(env, 'b')).toEqual({ url: 'http://b' })
  })
})

describe('views', () => {
  it('formats durations', () => {
    expect([0, 59, 60, 187, 3600, 7500].map(formatDuration)).toEqual([
      '0s',
      '59s',
      '1m00s',
      '3m07s',
      '1h00m',
      '2h05m',
    ])
  })

  it('orders nodes as a run meets them and labels events', () => {
    expect(layoutOf(shortTree())).toEqual({
      order: ['n_start', 'n_set', 'n_sleep', 'n_end'],
      labels: { n_start: 'start', n_end: 'end', n_set: 'Set variables', n_sleep: 'Sleep' },
      kinds: { n_start: 'event', n_end: 'event', n_set: 'activity', n_sleep: 'activity' },
    })
  })

  it('task status shows each node with its state and duration, and the failed node’s error', () => {
    const tree: StatusTree = {
      id: 4,
      name: 'broken',
      state: 'FAILED',
      elapsed_time: 75,
      start_time: '2026-01-01 10:00:00 +0800',
      finish_time: null,
      running_nodes: 0,
      children: {
        n_fail: {
          id: 'n_fail',
          name: 'Break here',
          state: 'FAILED',
          elapsed_time: 3,
          start_time: 'b',
          finish_time: 'c',
          ex_data: 'disk full',
        },
        n_start: {
          id: 'n_start',
          name: '',
          state: 'FINISHED',
          elapsed_time: 0,
          start_time: 'a',
          finish_time: 'a',
        },
      },
    }
    const text = renderStatus(plain, tree, layoutOf(failingTree('x')))
    expect(text).toContain('task      4  broken\nstate     FAILED\nelapsed   1m15s\n')
    const rows = text.split('\n').filter((l) => /^(FAILED|FINISHED) /.test(l))
    expect(rows.map((l) => l.split(/\s{2,}/).slice(0, 3))).toEqual([
      ['FINISHED', 'start', '0s'],
      ['FAILED', 'Break here', '3s'],
    ])
    expect(text).toContain('n_fail (Break here) failed: disk full')
    expect(text).toContain(
      '  to move it on:\n    stdops node retry 4 n_fail [--input key=value ...]\n    stdops node skip 4 n_fail\n',
    )
  })

  it('the live view folds events into node rows with durations; the line view is one line per event', () => {
    const ev = (
      seq: number,
      type: TaskEvent['type'],
      state: string,
      node_id: string | null,
      at: number,
      data: unknown = null,
    ): TaskEvent => ({
      seq,
      task_id: 9,
      type,
      node_id,
      state,
      data,
      created_at: at,
      time: `t${seq}`,
    })
    const layout = layoutOf(shortTree())
    const m = newWatchModel(9, 'demo')
    const events = [
      ev(1, 'task_state', 'CREATED', null, 0),
      ev(2, 'task_state', 'RUNNING', null, 1_000),
      ev(3, 'node_state', 'RUNNING', 'n_set', 1_000),
      ev(4, 'node_state', 'FINISHED', 'n_set', 3_000),
      ev(5, 'node_state', 'RUNNING', 'n_sleep', 3_000),
      ev(6, 'node_state', 'FAILED', 'n_sleep', 4_000, { error: 'boom' }),
    ]
    for (const e of events) applyEvent(m, e)
    const view = renderWatch(plain, m, layout, 10_000)
    expect(view.split('\n')[0]).toBe('task 9  demo  RUNNING  9s')
    expect(view).toMatch(/FINISHED\s+Set variables\s+2s\s+n_set/)
    expect(view).toMatch(/FAILED\s+Sleep\s+1s\s+n_sleep\s+boom/)
    expect(renderEventLine(plain, events[5]!, layout)).toBe(
      't6  #6  node n_sleep (Sleep)  FAILED  error: boom\n',
    )
    expect(renderEventLine(plain, events[1]!, layout)).toBe('t2  #2  task 9  RUNNING\n')
  })
})
