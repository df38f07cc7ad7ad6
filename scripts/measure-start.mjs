#!/usr/bin/env node
// How long `pnpm start` takes to serve, cold and warm: the numbers in docs/operations.md.
//
//   node scripts/measure-start.mjs [runs]     (default 3 runs per case; prints a Markdown table)
//
// Each run starts the command on a fresh SQLite database and a free port, times it until the
// server logs that it is listening, then stops it with SIGTERM. Cases:
//   cold   no apps/*/dist and turbo's cache bypassed (TURBO_FORCE): everything is built first
//   warm   nothing changed since the last build: turbo restores nothing and builds nothing
//   bare   `node apps/api/bin/stdops-server.mjs serve`, no build step: the floor
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const repo = join(dirname(fileURLToPath(import.meta.url)), '..')
const runs = Number(process.argv[2] ?? 3)

const freePort = () =>
  new Promise((resolve) => {
    const s = createServer()
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })

async function timeToServe(argv, extraEnv) {
  const dir = mkdtempSync(join(tmpdir(), 'stdops-start-'))
  const env = {
    ...process.env,
    ...extraEnv,
    DATABASE_URL: `file:${join(dir, 'stdops.db')}`,
    PORT: String(await freePort()),
    STDOPS_DEMO: '0',
    LOG_FORMAT: 'json',
  }
  const started = performance.now()
  const child = spawn(argv[0], argv.slice(1), {
    cwd: repo,
    env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let err = ''
  child.stderr.on('data', (d) => {
    err += d
  })
  try {
    return await new Promise((resolve, reject) => {
      let buf = ''
      child.stdout.on('data', (d) => {
        buf += d
        if (buf.includes('"msg":"stdops serving"')) resolve(performance.now() - started)
      })
      child.on('exit', (code) => reject(new Error(`${argv.join(' ')} exited ${code}:\n${err}`)))
    })
  } finally {
    process.kill(-child.pid, 'SIGTERM')
    await new Promise((r) => child.on('close', r))
    rmSync(dir, { recursive: true, force: true })
  }
}

const cases = [
  {
    name: 'cold: `pnpm start` with no build output and no build cache',
    argv: ['pnpm', 'start'],
    env: { TURBO_FORCE: 'true' },
    before: () => {
      for (const app of ['api', 'cli', 'web'])
        rmSync(join(repo, 'apps', app, 'dist'), { recursive: true, force: true })
    },
  },
  { name: 'warm: `pnpm start`, nothing changed since the last build', argv: ['pnpm', 'start'], env: {} },
  {
    name: 'floor: `node apps/api/bin/stdops-server.mjs serve` (no build step)',
    argv: [process.execPath, 'apps/api/bin/stdops-server.mjs', 'serve'],
    env: {},
  },
]

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
console.log('| case | median | runs |')
console.log('|---|---|---|')
for (const c of cases) {
  const times = []
  for (let i = 0; i < runs; i++) {
    c.before?.()
    times.push(await timeToServe(c.argv, c.env))
  }
  const fmt = (ms) => `${(ms / 1000).toFixed(2)} s`
  console.log(`| ${c.name} | ${fmt(median(times))} | ${times.map(fmt).join(', ')} |`)
}
