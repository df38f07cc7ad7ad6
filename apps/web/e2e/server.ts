import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createTestDatabaseUrl } from '@stdops/db/testing'

/**
 * A real stdops server for the browser tests, started as a user starts it (`pnpm start` at the
 * repository root) on a temporary database: a fresh SQLite file, or a fresh PostgreSQL database
 * when TEST_DATABASE_URL names a server. Its first start prints the demo credentials, which the
 * tests read exactly as a person would.
 */

export const ROOT = resolve(fileURLToPath(new URL('../../..', import.meta.url)))
const SERVER_BIN = join(ROOT, 'apps/api/bin/stdops-server.mjs')

export interface Banner {
  appCode: string
  appSecret: string
  token: string
  consoleUrl: string
}

export interface RunningServer {
  url: string
  port: number
  dbUrl: string
  banner: Banner
  /** SIGTERM, wait for the exit (the process group: pnpm and the server it runs). */
  stop(): Promise<void>
  /** Stops and starts again on the same port and database. */
  restart(): Promise<void>
  /** Runs `pnpm server admin …` against the same database; returns its stdout. */
  admin(...args: string[]): string
  close(): Promise<void>
}

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer()
    s.once('error', rej)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => res(port))
    })
  })
}

function parseBanner(out: string): Banner | null {
  const secret = /app secret:\s+(\S+)/.exec(out)?.[1]
  const code = /app code:\s+(\S+)/.exec(out)?.[1]
  const token = /bk_token:\s+(\S+)/.exec(out)?.[1]
  const consoleUrl = /Web console:\s+(\S+)/.exec(out)?.[1]
  return secret && code && token && consoleUrl
    ? { appCode: code, appSecret: secret, token, consoleUrl }
    : null
}

export async function startServer(): Promise<RunningServer> {
  const db = await createTestDatabaseUrl()
  const home = mkdtempSync(join(tmpdir(), 'stdops-e2e-'))
  const port = await freePort()
  const env = {
    ...process.env,
    DATABASE_URL: db.url,
    PORT: String(port),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    STDOPS_DEMO: '1',
    STDOPS_REVOKE_GRACE_MS: '2000',
    STDOPS_DRAIN_MS: '1000',
    HOME: home,
  }
  let child: ChildProcess | null = null
  let output = ''

  const launch = async (expectBanner: boolean) => {
    output = ''
    const c = spawn('pnpm', ['start'], { cwd: ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
    child = c
    c.stdout!.on('data', (d: Buffer) => {
      output += d.toString()
    })
    c.stderr!.on('data', (d: Buffer) => {
      output += d.toString()
    })
    const deadline = Date.now() + 180_000
    for (;;) {
      if (c.exitCode !== null) throw new Error(`the server exited (${c.exitCode}):\n${output}`)
      if (Date.now() > deadline) throw new Error(`the server did not start within 180 s:\n${output}`)
      const ready = await fetch(`http://127.0.0.1:${port}/healthz`).then(
        (r) => r.ok,
        () => false,
      )
      if (ready && (!expectBanner || parseBanner(output))) return
      await new Promise((r) => setTimeout(r, 200))
    }
  }

  const stop = async () => {
    const c = child
    if (!c || c.exitCode !== null || c.pid === undefined) return
    const exited = new Promise((r) => c.once('exit', r))
    process.kill(-c.pid, 'SIGTERM')
    const timer = setTimeout(() => c.pid !== undefined && process.kill(-c.pid, 'SIGKILL'), 15_000)
    await exited
    clearTimeout(timer)
    child = null
  }

  await launch(true)
  const banner = parseBanner(output)!
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    dbUrl: db.url,
    banner,
    stop,
    async restart() {
      await stop()
      await launch(false)
    },
    admin(...args) {
      const r = spawnSync(process.execPath, [SERVER_BIN, 'admin', ...args], { env, encoding: 'utf8' })
      if (r.status !== 0) throw new Error(`admin ${args.join(' ')} failed: ${r.stderr}`)
      return r.stdout
    },
    async close() {
      await stop()
      await db.drop()
      rmSync(home, { recursive: true, force: true })
    },
  }
}
