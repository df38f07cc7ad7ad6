import { createTestDatabaseUrl } from '@stdops/db/testing'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { killAll, runServerCli, serverEnv, startProcess, stopProcess } from './procs'

/**
 * Without STDOPS_SECRET_KEY the server key lives in the database beside what it protects: the
 * server says so at start, and a production deployment does not start at all.
 */

const drops: Array<() => Promise<void>> = []
afterEach(async () => {
  await killAll()
  for (const drop of drops.splice(0)) await drop()
})
afterAll(killAll)

async function envWithoutKey(extra: Record<string, string> = {}) {
  const { url, drop } = await createTestDatabaseUrl()
  drops.push(drop)
  const env = serverEnv(url, extra)
  delete env.STDOPS_SECRET_KEY
  return env
}

describe('STDOPS_SECRET_KEY', () => {
  it('unset: the server starts and warns, once, naming the setting', async () => {
    const server = await startProcess('serve', await envWithoutKey())
    const warnings = server.lines
      .map((l) => {
        try {
          return JSON.parse(l) as { level: number; msg: string }
        } catch {
          return null
        }
      })
      .filter((l) => l !== null && l.level === 40 && l.msg.startsWith('STDOPS_SECRET_KEY is not set'))
    expect(warnings).toHaveLength(1)
    expect(warnings[0]!.msg).toMatch(/set it in production/)
    await stopProcess(server)
  })

  it('set: no warning', async () => {
    const { url, drop } = await createTestDatabaseUrl()
    drops.push(drop)
    const server = await startProcess('serve', serverEnv(url))
    expect(server.lines.join('\n')).not.toContain('STDOPS_SECRET_KEY is not set')
    await stopProcess(server)
  })

  it('unset with NODE_ENV=production: serve, worker and the admin commands refuse to start, naming it', async () => {
    const env = await envWithoutKey({ NODE_ENV: 'production' })
    for (const args of [['serve'], ['worker'], ['admin', 'user', 'add', 'someone']]) {
      const run = await runServerCli(args, env)
      expect(run.code, `${args.join(' ')}: ${run.stderr}`).toBe(1)
      expect(run.stderr).toMatch(
        /^error: STDOPS_SECRET_KEY is not set: with NODE_ENV=production stdops does not start without it/m,
      )
    }
  })
})
