import { readdirSync, readFileSync } from 'node:fs'
import { builtinModules } from 'node:module'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { REPO } from './procs'

/**
 * The compiled server (apps/api/dist, built by this suite's global setup) imports at run time
 * only what apps/api declares as a dependency, at the versions the workspace packages it inlines
 * use, and never a TypeScript loader.
 */

const API = join(REPO, 'apps', 'api')
const readJson = (path: string) =>
  JSON.parse(readFileSync(path, 'utf8')) as {
    dependencies?: Record<string, string>
    devDependencies?: Record<string, string>
  }

function bundleImports(): Set<string> {
  const names = new Set<string>()
  const dist = join(API, 'dist')
  for (const file of readdirSync(dist).filter((f) => f.endsWith('.mjs'))) {
    const text = readFileSync(join(dist, file), 'utf8')
    // Static imports and re-exports start their line in esbuild's output; dynamic ones are import("…").
    const statics = text.matchAll(/^\s*(?:import|export)\b[^;\n]*?\bfrom\s*["']([^"']+)["']/gm)
    const dynamics = text.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g)
    for (const m of [...statics, ...dynamics]) {
      if (m[1]!.startsWith('.')) continue
      const spec = m[1]!
      if (spec.startsWith('node:') || builtinModules.includes(spec.split('/')[0]!)) continue
      const parts = spec.split('/')
      names.add(spec.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!)
    }
  }
  return names
}

describe('the compiled server (apps/api/dist)', () => {
  it('imports only packages apps/api declares as dependencies, never a workspace package or tsx', () => {
    const declared = readJson(join(API, 'package.json')).dependencies ?? {}
    const imported = bundleImports()
    expect(imported.size).toBeGreaterThan(5)
    for (const name of imported) {
      expect(name.startsWith('@stdops/'), `${name} should be bundled in`).toBe(false)
      expect(
        Object.hasOwn(declared, name),
        `${name} is imported by dist but not a dependency of apps/api: add it there, at the version the workspace package that uses it declares`,
      ).toBe(true)
    }
    expect(imported.has('tsx')).toBe(false)
  })

  it('declares each of them at the version the workspace packages use', () => {
    const declared = readJson(join(API, 'package.json')).dependencies ?? {}
    let compared = 0
    for (const pkg of ['core', 'db', 'engine']) {
      const deps = readJson(join(REPO, 'packages', pkg, 'package.json')).dependencies ?? {}
      for (const [name, version] of Object.entries(deps)) {
        if (version.startsWith('workspace:')) continue
        expect(declared[name], `apps/api and packages/${pkg} disagree on ${name}`).toBe(version)
        compared++
      }
    }
    expect(compared).toBeGreaterThan(5)
  })
})
