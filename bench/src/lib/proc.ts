/**
 * Child processes: stdops servers and workers (the real `apps/api/bin/stdops-server.mjs`), and
 * the floor server. Every child is tracked, so that a failing or interrupted bench leaves none
 * behind.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { createServer } from 'node:net'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

export const BENCH_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
export const REPO_DIR = resolve(BENCH_DIR, '..')
export const SERVER_BIN = resolve(REPO_DIR, 'apps/api/bin/stdops-server.mjs')
export const COMPONENTS = resolve(BENCH_DIR, 'components/noop.mjs')
export const SECRET_KEY = 'stdops-bench-secret-key-0123456789abcdef'

export interface Child {
  name: string
  proc: ChildProcess
  /** The last lines of its output, for error messages. */
  tail(): string
  /** Resolves when a line of output matches. */
  waitForLine(re: RegExp, timeoutMs?: number): Promise<string>
  exited: Promise<number | null>
  stop(): Promise<void>
}

const children = new Set<Child>()

export async function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const srv = createServer()
    srv.once('error', fail)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      const port = typeof addr === 'object' && addr ? addr.port : 0
      srv.close(() => ok(port))
    })
  })
}

export function startChild(
  name: string,
  args: string[],
  env: Record<string, string>,
  opts: { cwd?: string } = {},
): Child {
  const proc = spawn(process.execPath, args, {
    cwd: opts.cwd ?? REPO_DIR,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const lines: string[] = []
  const waiters: Array<{ re: RegExp; ok: (l: string) => void }> = []
  const onData = (buf: Buffer) => {
    for (const line of buf.toString('utf8').split('\n')) {
      if (!line) continue
      lines.push(line)
      if (lines.length > 60) lines.shift()
      for (const w of [...waiters]) {
        if (w.re.test(line)) {
          waiters.splice(waiters.indexOf(w), 1)
          w.ok(line)
        }
      }
      // Errors of a child are worth seeing at once; the rest stays in the tail.
      if (/"level":(50|60)/.test(line) || /^(Error|TypeError|error:)/.test(line))
        process.stderr.write(`  [${name}] ${line.slice(0, 400)}\n`)
    }
  }
  proc.stdout?.on('data', onData)
  proc.stderr?.on('data', onData)
  const exited = new Promise<number | null>((ok) => proc.once('exit', (code) => ok(code)))
  let stopped = false
  const child: Child = {
    name,
    proc,
    tail: () => lines.slice(-25).join('\n'),
    waitForLine: (re, timeoutMs = 30_000) =>
      new Promise((ok, fail) => {
        const found = lines.find((l) => re.test(l))
        if (found) return ok(found)
        const timer = setTimeout(
          () => fail(new Error(`${name}: no line matching ${re} within ${timeoutMs} ms\n${child.tail()}`)),
          timeoutMs,
        )
        waiters.push({
          re,
          ok: (l) => {
            clearTimeout(timer)
            ok(l)
          },
        })
        void exited.then((code) => {
          clearTimeout(timer)
          fail(new Error(`${name} exited (${code}) before printing ${re}\n${child.tail()}`))
        })
      }),
    exited,
    stop: async () => {
      if (stopped) return exited.then(() => undefined)
      stopped = true
      children.delete(child)
      if (proc.exitCode !== null || proc.signalCode !== null) return
      proc.kill('SIGTERM')
      const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000)
      await exited
      clearTimeout(timer)
    },
  }
  children.add(child)
  void exited.then((code) => {
    if (!stopped && children.has(child)) {
      children.delete(child)
      process.stderr.write(`  [${name}] exited unexpectedly (${code})\n${child.tail()}\n`)
    }
  })
  return child
}

export function killAllChildren(): void {
  for (const c of children) {
    try {
      c.proc.kill('SIGKILL')
    } catch {
      // already gone
    }
  }
  children.clear()
}

export async function waitHttp(url: string, child: Child, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (child.proc.exitCode !== null)
      throw new Error(`${child.name} exited (${child.proc.exitCode})\n${child.tail()}`)
    try {
      const r = await fetch(url)
      if (r.ok) return
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline)
      throw new Error(`${child.name}: ${url} did not answer within ${timeoutMs} ms\n${child.tail()}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

export interface StdopsOpts {
  dbUrl: string
  /** Extra node flags (e.g. --cpu-prof). */
  nodeArgs?: string[]
  env?: Record<string, string>
}

function stdopsEnv(dbUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    DATABASE_URL: dbUrl,
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
    STDOPS_DEMO: '0',
    STDOPS_SECRET_KEY: SECRET_KEY,
    STDOPS_COMPONENTS: COMPONENTS,
    STDOPS_DRAIN_MS: '2000',
    // Every bench task is in one project: its share is the whole worker (32, as a deployment with
    // one project would set it), so the engine runs at the concurrency its peer is given.
    STDOPS_PROJECT_CONCURRENCY: '32',
    ...extra,
  }
}

/** `stdops-server serve [--no-worker]` on a free port; resolves when /healthz answers. */
export async function startStdopsApi(
  name: string,
  o: StdopsOpts & { worker: boolean },
): Promise<{ child: Child; base: string }> {
  const port = await freePort()
  const args = [...(o.nodeArgs ?? []), SERVER_BIN, 'serve', ...(o.worker ? [] : ['--no-worker'])]
  const child = startChild(name, args, stdopsEnv(o.dbUrl, { PORT: String(port), ...o.env }))
  const base = `http://127.0.0.1:${port}`
  await waitHttp(`${base}/healthz`, child)
  if (o.worker) await child.waitForLine(/worker running/)
  return { child, base }
}

/** `stdops-server worker`; resolves when its worker loop runs. */
export async function startStdopsWorker(name: string, o: StdopsOpts): Promise<Child> {
  const child = startChild(name, [...(o.nodeArgs ?? []), SERVER_BIN, 'worker'], stdopsEnv(o.dbUrl, o.env))
  await child.waitForLine(/worker running/, 60_000)
  return child
}

/** The floor: a bare Fastify route doing the compare-and-set with the raw driver. */
export async function startFloor(
  dbUrl: string,
  nodeArgs: string[] = [],
): Promise<{ child: Child; base: string }> {
  const port = await freePort()
  const child = startChild(
    'floor',
    [...nodeArgs, '--import', 'tsx', resolve(BENCH_DIR, 'src/floor-server.ts')],
    { DATABASE_URL: dbUrl, PORT: String(port) },
    { cwd: BENCH_DIR },
  )
  const base = `http://127.0.0.1:${port}`
  await waitHttp(`${base}/healthz`, child)
  return { child, base }
}

export function ensureDir(path: string): string {
  mkdirSync(path, { recursive: true })
  return path
}
