import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createTreeBuilder } from '@stdops/core/testing'
import type { MigratableDb } from '@stdops/db'
import { createTestDatabaseUrl } from '@stdops/db/testing'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { authHeader, esb, type Identity, waitFor } from './harness'
import {
  type Child,
  freePort,
  isPostgres,
  killAll,
  openAndBootstrap,
  REPO,
  type ServerCommand,
  startCommand,
  stopProcess,
  TEST_SECRET_KEY,
} from './procs'

/**
 * The deployment recipe, run as written: the systemd units and the shared environment file in
 * deploy/ start the compiled server (no TypeScript at run time) with NODE_ENV=production. The test
 * reads each unit's ExecStart, WorkingDirectory, EnvironmentFile and Environment lines and runs
 * that command with that environment and nothing else, the install path /opt/stdops standing for
 * this checkout. On PostgreSQL: two API processes and a worker process over one database; on
 * SQLite: the single-process unit.
 */

const DEPLOY = join(REPO, 'deploy')
const INSTALL_DIR = '/opt/stdops'

interface Unit {
  execStart: string[]
  workingDirectory: string
  environmentFile: string
  environment: Record<string, string>
}

/** The [Service] lines the recipe relies on, with `%i` replaced by the instance name. */
function readUnit(name: string, instance = ''): Unit {
  const text = readFileSync(join(DEPLOY, 'systemd', name), 'utf8').replaceAll('%i', instance)
  const values = (key: string) =>
    text
      .split('\n')
      .filter((l) => l.startsWith(`${key}=`))
      .map((l) => l.slice(key.length + 1).trim())
  const one = (key: string) => {
    const [v, ...more] = values(key)
    if (v === undefined || more.length > 0) throw new Error(`${name}: expected one ${key}= line`)
    return v
  }
  return {
    execStart: one('ExecStart').split(/\s+/),
    workingDirectory: one('WorkingDirectory'),
    environmentFile: one('EnvironmentFile'),
    environment: Object.fromEntries(
      values('Environment').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
    ),
  }
}

/** KEY=VALUE lines of an environment file, as systemd's EnvironmentFile reads them (no quoting used). */
function readEnvFile(path: string): Record<string, string> {
  const env: Record<string, string> = {}
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const t = line.trim()
    if (t === '' || t.startsWith('#')) continue
    const eq = t.indexOf('=')
    env[t.slice(0, eq)] = t.slice(eq + 1)
  }
  return env
}

const here = (p: string) => p.replace(INSTALL_DIR, REPO)

/** Starts a unit as systemd would: its command, its working directory, the shared file then its own lines. */
async function startUnit(
  command: ServerCommand,
  unit: Unit,
  shared: Record<string, string>,
  name: string,
): Promise<Child> {
  expect(unit.environmentFile).toBe('/etc/stdops/stdops.env')
  expect(unit.workingDirectory).toBe(INSTALL_DIR)
  const [node, bin, ...args] = unit.execStart
  expect(node).toBe('/usr/bin/node')
  expect(bin).toBe(`${INSTALL_DIR}/apps/api/bin/stdops-server.mjs`)
  // systemd starts services with a minimal environment: PATH and what the unit gives.
  const env = { PATH: '/usr/local/bin:/usr/bin:/bin', ...shared, ...unit.environment }
  return startCommand(command, [process.execPath, here(bin!), ...args], env, {
    name,
    cwd: here(unit.workingDirectory),
  })
}

let dropDb: (() => Promise<void>) | null = null
let db: MigratableDb | null = null

afterEach(async () => {
  await killAll()
  await db?.close()
  db = null
  await dropDb?.()
  dropDb = null
})
afterAll(killAll)

/** The example environment file with this test's database, key and addresses in place of the placeholders. */
async function sharedEnv(): Promise<{ env: Record<string, string>; id: Identity }> {
  const example = readEnvFile(join(DEPLOY, 'stdops.env.example'))
  expect(example.NODE_ENV).toBe('production')
  const { url, drop } = await createTestDatabaseUrl()
  dropDb = drop
  const opened = await openAndBootstrap(url)
  db = opened.db
  return {
    env: {
      ...example,
      DATABASE_URL: url,
      STDOPS_SECRET_KEY: TEST_SECRET_KEY,
      STDOPS_PUBLIC_URL: 'http://stdops.test',
      HOST: '127.0.0.1',
    },
    id: opened.id,
  }
}

function tree() {
  const b = createTreeBuilder()
  const vars = b.activity('set_variables', { data: { variables: { hook: false, value: { who: 'ops' } } } })
  const wait = b.activity('sleep_timer', { data: { bk_timing: { hook: false, value: '0.2' } } })
  b.chain(b.startId, vars, wait, b.endId)
  return b.build()
}

/** Creates and starts a task through `via`, then waits for FINISHED as `watch` reports it. */
async function runTask(via: Child, watch: Child, id: Identity) {
  const body = (extra: Record<string, unknown>) => ({ bk_biz_id: id.bkBizId, ...extra })
  const t = await esb(via.url!, 'create_template', {
    body: body({ name: 'deploy', pipeline_tree: tree() }),
    headers: authHeader(id),
  })
  expect(t.body.result, t.body.message).toBe(true)
  const templateId = (t.body.data as { template_id: number }).template_id
  const c = await esb(via.url!, 'create_and_start_task', {
    body: body({ template_id: templateId, name: 'deployed' }),
    headers: authHeader(id),
  })
  expect(c.body.result, c.body.message).toBe(true)
  const taskId = (c.body.data as { task_id: number }).task_id
  expect((c.body.data as { task_url: string }).task_url.startsWith('http://stdops.test/')).toBe(true)
  await waitFor(async () => {
    const s = await esb(watch.url!, 'get_task_status', {
      query: { bk_biz_id: id.bkBizId, task_id: taskId },
      headers: authHeader(id),
    })
    return (s.body.data as { state?: string } | null)?.state === 'FINISHED' ? true : undefined
  }, 30_000)
}

describe('the deployment recipe (deploy/systemd, deploy/stdops.env.example)', () => {
  it.runIf(isPostgres())(
    'two API units and a worker unit over PostgreSQL run a task and stop cleanly on SIGTERM',
    async () => {
      const { env, id } = await sharedEnv()
      const [p1, p2] = [await freePort(), await freePort()]
      const api1 = await startUnit('api', readUnit('stdops-api@.service', String(p1)), env, 'api1')
      const api2 = await startUnit('api', readUnit('stdops-api@.service', String(p2)), env, 'api2')
      const opsPort = await freePort()
      const worker = await startUnit(
        'worker',
        readUnit('stdops-worker@.service', String(opsPort)),
        env,
        'worker1',
      )
      // The worker is probed on its operations port: ready once its loop runs.
      const ready = await waitFor(async () => {
        const r = await fetch(`http://127.0.0.1:${opsPort}/readyz`).catch(() => null)
        return r?.status === 200 ? r.json() : undefined
      })
      expect(ready).toMatchObject({ status: 'ready', checks: { worker: 'ok' } })
      expect(api1.url).toBe(`http://127.0.0.1:${p1}`)
      expect(api2.url).toBe(`http://127.0.0.1:${p2}`)
      // Created through one API process, run by the worker process, watched through the other.
      await runTask(api1, api2, id)
      for (const child of [api1, api2, worker]) {
        const exit = await stopProcess(child)
        expect(exit.code, child.lines.slice(-20).join('\n')).toBe(0)
      }
      // Production logs are JSON lines (no terminal here, and LOG_FORMAT=json in the file).
      for (const line of api1.lines.filter((l) => l.trim() !== ''))
        expect(() => JSON.parse(line)).not.toThrow()
    },
  )

  it.skipIf(isPostgres())(
    'the single-process unit over SQLite runs a task and stops cleanly on SIGTERM',
    async () => {
      const { env, id } = await sharedEnv()
      const unit = readUnit('stdops.service')
      const port = await freePort()
      const one = await startUnit(
        'serve',
        { ...unit, environment: { ...unit.environment, PORT: String(port) } },
        env,
        'stdops',
      )
      expect(one.url).toBe(`http://127.0.0.1:${port}`)
      await runTask(one, one, id)
      const exit = await stopProcess(one)
      expect(exit.code, one.lines.slice(-20).join('\n')).toBe(0)
    },
  )
})
