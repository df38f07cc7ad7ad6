import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Harness, Identity } from '../../api/test/harness'

export const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'stdops.mjs')

/** CLI processes still running: a failed test must not leave a watcher behind. */
const running = new Set<ChildProcess>()

/** Ends every CLI process a test left running and removes the temporary directories (call in afterAll). */
export function cleanUp(): void {
  for (const child of running) child.kill('SIGKILL')
  running.clear()
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true })
}

/** Tracks `child`, and kills it if it outlives `timeoutMs`. */
function watchChild(child: ChildProcess, timeoutMs: number) {
  running.add(child)
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
  child.on('close', () => {
    clearTimeout(timer)
    running.delete(child)
  })
}

export interface Run {
  code: number | null
  stdout: string
  stderr: string
}

/**
 * Runs the built CLI as a user would: a fresh process with only PATH, HOME (a temp dir unless
 * given) and `env`; stdin is `input` (or empty), never a terminal. Asynchronous, so the server
 * in this process keeps answering.
 */
export function stdops(
  args: string[],
  opts: {
    env?: Record<string, string>
    input?: string
    home?: string
    onStdout?: (soFar: string) => void
  } = {},
): Promise<Run> {
  const home = opts.home ?? tempDir('stdops-home-')
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    watchChild(child, 50_000)
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d
      opts.onStdout?.(stdout)
    })
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d
    })
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
    child.stdin.end(opts.input ?? '')
  })
}

/** Runs the CLI on a pseudo-terminal (util-linux `script`): stdout and stderr arrive merged. */
export function stdopsOnTty(args: string[], env: Record<string, string>): Promise<Run> {
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`
  const command = [process.execPath, CLI, ...args].map(quote).join(' ')
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qefc', command, '/dev/null'], {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: tempDir('stdops-home-'),
        TERM: 'xterm',
        ...env,
      },
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    watchChild(child, 50_000)
    let stdout = ''
    const collect = (d: string) => {
      stdout += d
    }
    child.stdout.setEncoding('utf8').on('data', collect)
    child.stderr.setEncoding('utf8').on('data', collect)
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr: '' }))
    child.stdin.end()
  })
}

const tempDirs: string[] = []

/** A new temporary directory, removed by `cleanUp`. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  tempDirs.push(dir)
  return dir
}

/** The environment that configures the CLI for `id` on harness `h`. */
export function envFor(h: Pick<Harness, 'url'>, id: Identity): Record<string, string> {
  return {
    STDOPS_URL: h.url,
    STDOPS_APP_CODE: id.appCode,
    STDOPS_APP_SECRET: id.appSecret,
    STDOPS_TOKEN: id.token,
  }
}

/** start → set_variables → sleep_timer (`${wait}` seconds, default `wait`) → end, as a user's file would hold it. */
export function shortTree(wait = '1') {
  return {
    start_event: { id: 'n_start', name: '', type: 'EmptyStartEvent', incoming: '', outgoing: 'l1' },
    end_event: { id: 'n_end', name: '', type: 'EmptyEndEvent', incoming: ['l3'], outgoing: '' },
    activities: {
      n_set: {
        id: 'n_set',
        name: 'Set variables',
        type: 'ServiceActivity',
        incoming: ['l1'],
        outgoing: 'l2',
        component: {
          code: 'set_variables',
          data: { variables: { hook: false, value: { greeting: 'hello ${who}' } } },
        },
      },
      n_sleep: {
        id: 'n_sleep',
        name: 'Sleep',
        type: 'ServiceActivity',
        incoming: ['l2'],
        outgoing: 'l3',
        component: { code: 'sleep_timer', data: { bk_timing: { hook: true, value: '${wait}' } } },
      },
    },
    gateways: {},
    flows: {
      l1: { id: 'l1', source: 'n_start', target: 'n_set', is_default: false },
      l2: { id: 'l2', source: 'n_set', target: 'n_sleep', is_default: false },
      l3: { id: 'l3', source: 'n_sleep', target: 'n_end', is_default: false },
    },
    constants: {
      '${who}': { key: '${who}', name: 'Who', value: 'world', source_type: 'custom', show_type: 'show' },
      '${wait}': {
        key: '${wait}',
        name: 'Seconds to wait',
        value: wait,
        source_type: 'custom',
        show_type: 'show',
      },
    },
    outputs: [],
  }
}

/** start → fail (with `message`) → end. */
export function failingTree(message: string) {
  return {
    start_event: { id: 'n_start', name: '', type: 'EmptyStartEvent', incoming: '', outgoing: 'l1' },
    end_event: { id: 'n_end', name: '', type: 'EmptyEndEvent', incoming: ['l2'], outgoing: '' },
    activities: {
      n_fail: {
        id: 'n_fail',
        name: 'Break here',
        type: 'ServiceActivity',
        incoming: ['l1'],
        outgoing: 'l2',
        component: { code: 'fail', data: { message: { hook: false, value: message } } },
      },
    },
    gateways: {},
    flows: {
      l1: { id: 'l1', source: 'n_start', target: 'n_fail', is_default: false },
      l2: { id: 'l2', source: 'n_fail', target: 'n_end', is_default: false },
    },
    constants: {},
    outputs: [],
  }
}

export function writeJson(dir: string, name: string, value: unknown): string {
  const path = join(dir, name)
  writeFileSync(path, JSON.stringify(value, null, 2))
  return path
}

/** Parses stdout that should be JSON, with the output in the message when it is not. */
export function json<T = Record<string, unknown>>(run: Run): T {
  try {
    return JSON.parse(run.stdout) as T
  } catch {
    throw new Error(`stdout is not JSON (exit ${run.code}):\n${run.stdout}\nstderr:\n${run.stderr}`)
  }
}

/** The escape character that starts every colour and cursor sequence. */
export const ESC = String.fromCharCode(27)
