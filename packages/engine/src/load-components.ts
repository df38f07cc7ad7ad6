import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { ComponentModule } from './types'

const isFunction = (v: unknown): v is (...args: unknown[]) => unknown => typeof v === 'function'
const isSchema = (v: unknown) =>
  typeof v === 'object' && v !== null && isFunction((v as { safeParse?: unknown }).safeParse)

/** What is wrong with `m` as a component module, or null. */
function problemWith(m: unknown): string | null {
  if (typeof m !== 'object' || m === null) return 'is not an object'
  const c = m as Record<string, unknown>
  if (typeof c.code !== 'string' || c.code.length === 0) return 'has no `code` (a non-empty string)'
  if (!isSchema(c.inputs)) return `(${c.code}) has no \`inputs\` zod schema`
  if (!isSchema(c.outputs)) return `(${c.code}) has no \`outputs\` zod schema`
  if (!isFunction(c.execute)) return `(${c.code}) has no \`execute\` function`
  if (c.schedule !== undefined && !isFunction(c.schedule))
    return `(${c.code}) has a \`schedule\` that is not a function`
  for (const key of ['name', 'version'] as const) {
    if (c[key] !== undefined && typeof c[key] !== 'string')
      return `(${c.code}) has a \`${key}\` that is not a string`
  }
  return null
}

/**
 * Imports a deployment's component modules. Each file's default export is a component module or
 * an array of them; anything else is refused with an error naming the file.
 */
export async function loadComponentModules(paths: string[]): Promise<ComponentModule[]> {
  const modules: ComponentModule[] = []
  for (const path of paths) {
    const url = pathToFileURL(resolve(path)).href
    let imported: { default?: unknown }
    try {
      imported = (await import(url)) as { default?: unknown }
    } catch (err) {
      throw new Error(
        `component module ${path} cannot be imported: ${err instanceof Error ? err.message : String(err)}`,
      )
    }
    if (imported.default === undefined) throw new Error(`component module ${path} has no default export`)
    const list = Array.isArray(imported.default) ? imported.default : [imported.default]
    if (list.length === 0) throw new Error(`component module ${path} exports an empty list`)
    list.forEach((m, i) => {
      const problem = problemWith(m)
      const which = Array.isArray(imported.default) ? `default export [${i}]` : 'default export'
      if (problem) throw new Error(`component module ${path}: ${which} ${problem}`)
      modules.push(m as ComponentModule)
    })
  }
  return modules
}
