// Writes the two provider schemas from prisma/schema.base.prisma and generates a Prisma client
// for each. Prisma's CLI wants a native schema engine for `generate` although it never runs it,
// and its download host is unreachable here: naming any existing file satisfies the check.
import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const base = readFileSync(join(root, 'prisma', 'schema.base.prisma'), 'utf8')
const require = createRequire(import.meta.url)
const prismaCli = join(dirname(require.resolve('prisma/package.json')), 'build', 'index.js')
const env = { ...process.env, PRISMA_HIDE_UPDATE_MESSAGE: '1', CHECKPOINT_DISABLE: '1' }
if (!env.PRISMA_SCHEMA_ENGINE_BINARY) env.PRISMA_SCHEMA_ENGINE_BINARY = process.execPath

for (const provider of ['sqlite', 'postgresql']) {
  const dir = join(root, 'prisma', provider)
  mkdirSync(dir, { recursive: true })
  const schema = `// GENERATED from ../schema.base.prisma by scripts/generate.mjs: edit that file.\n${base.replaceAll('__PROVIDER__', provider)}`
  writeFileSync(join(dir, 'schema.prisma'), schema)
  execFileSync(
    process.execPath,
    [prismaCli, 'generate', '--schema', join(dir, 'schema.prisma'), '--no-hints'],
    {
      cwd: root,
      env,
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  )
}
console.log('prisma clients generated (sqlite, postgresql)')
