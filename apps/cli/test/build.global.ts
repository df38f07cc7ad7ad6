import { execFileSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** Builds dist/stdops.mjs with tsup so the tests run what users run. */
export default function setup() {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..')
  const tsup = join(
    dirname(createRequire(import.meta.url).resolve('tsup/package.json')),
    'dist',
    'cli-default.js',
  )
  execFileSync(process.execPath, [tsup, '--silent'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] })
}
