import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const api = join(dirname(fileURLToPath(import.meta.url)), '..')
const repo = join(api, '..', '..')

/** What the bundle is built from: this package's sources and config, and the workspace packages it inlines. */
const SOURCES = [
  join(api, 'src'),
  join(api, 'tsup.config.ts'),
  join(api, 'package.json'),
  ...['core', 'db', 'engine'].flatMap((p) => [
    join(repo, 'packages', p, 'src'),
    join(repo, 'packages', p, 'package.json'),
  ]),
  join(repo, 'packages', 'db', 'prisma'),
]

function newest(path: string): number {
  if (!existsSync(path)) return 0
  const st = statSync(path)
  if (!st.isDirectory()) return st.mtimeMs
  let max = 0
  for (const entry of readdirSync(path)) max = Math.max(max, newest(join(path, entry)))
  return max
}

/**
 * The tests spawn the compiled server (bin/stdops-server.mjs runs dist/), and with TEST_SERVER=dist
 * build their in-process servers from it too: rebuild dist before any file runs when a source is
 * newer than it (a `vitest run` of one file after an edit; `pnpm test` has built it already).
 */
export default function setup() {
  const built = join(api, 'dist', 'cli.mjs')
  const builtAt = existsSync(built) ? statSync(built).mtimeMs : 0
  if (builtAt > Math.max(...SOURCES.map(newest))) return
  const tsup = join(
    dirname(createRequire(import.meta.url).resolve('tsup/package.json')),
    'dist',
    'cli-default.js',
  )
  execFileSync(process.execPath, [tsup, '--silent'], { cwd: api, stdio: ['ignore', 'ignore', 'inherit'] })
}
