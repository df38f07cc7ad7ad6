import { resolveName } from './expr'
import type { Constant } from './pipeline/schema'

const REFERENCE = /\$\{([^${}]+)\}/g
const WHOLE_REFERENCE = /^\$\{([^${}]+)\}$/

/** Every `${key}` in the strings of `value`, looked for deep in arrays and objects, once each. */
export function referencesIn(value: unknown): string[] {
  const found = new Set<string>()
  const visit = (v: unknown): void => {
    if (typeof v === 'string') for (const match of v.matchAll(REFERENCE)) found.add(match[0])
    else if (Array.isArray(v)) v.forEach(visit)
    else if (typeof v === 'object' && v !== null) Object.values(v).forEach(visit)
  }
  visit(value)
  return [...found]
}

/** The value of `${name}` in `values` (keyed by `${key}`), following dotted paths; undefined if none. */
function lookupReference(name: string, values: Record<string, unknown>): unknown {
  return resolveName(name, (n) => {
    const key = `\${${n}}`
    return Object.hasOwn(values, key) ? values[key] : undefined
  })
}

/**
 * Renders `${key}` references in `value` with `values` (keyed by `${key}`). A string that is one
 * whole reference becomes the referenced value itself, keeping its type; references inside a longer
 * string are substituted as text (objects and arrays as JSON). Arrays and objects are rendered
 * deeply. References that resolve to nothing stay as written.
 */
export function renderValue(value: unknown, values: Record<string, unknown>): unknown {
  if (typeof value === 'string') {
    const whole = WHOLE_REFERENCE.exec(value)
    if (whole) {
      const resolved = lookupReference(whole[1]!, values)
      return resolved === undefined ? value : resolved
    }
    return value.replace(REFERENCE, (text, name: string) => {
      const resolved = lookupReference(name, values)
      if (resolved === undefined) return text
      return typeof resolved === 'string' ? resolved : JSON.stringify(resolved)
    })
  }
  if (Array.isArray(value)) return value.map((item) => renderValue(item, values))
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, renderValue(v, values)]))
  }
  return value
}

/**
 * The constant that a reference reads: `${a.b}` reads `${a.b}` if it exists, else `${a}`
 * (whose value is then followed along `.b`).
 */
export function constantForReference(reference: string, has: (key: string) => boolean): string | undefined {
  const parts = reference.slice(2, -1).split('.')
  for (let i = parts.length; i > 0; i--) {
    const key = `\${${parts.slice(0, i).join('.')}}`
    if (has(key)) return key
  }
  return undefined
}

/**
 * The values of a tree's constants keyed by `${key}`, each rendered with the others (transitively).
 * `overrides`, keyed by `${key}` or `key`, replace the values given in the tree; overrides for
 * constants the tree does not declare are ignored. A reference cycle is refused.
 */
export function resolveConstants(
  constants: Record<string, Constant>,
  overrides: Record<string, unknown> = {},
): { ok: true; values: Record<string, unknown> } | { ok: false; message: string } {
  const raw = new Map<string, unknown>()
  for (const [key, constant] of Object.entries(constants)) {
    const bare = key.slice(2, -1)
    const value = Object.hasOwn(overrides, key)
      ? overrides[key]
      : Object.hasOwn(overrides, bare)
        ? overrides[bare]
        : constant.value
    raw.set(key, value)
  }

  const values: Record<string, unknown> = {}
  const rendering: string[] = []
  const render = (key: string): string | null => {
    if (Object.hasOwn(values, key)) return null
    const at = rendering.indexOf(key)
    if (at >= 0) return `constants ${[...rendering.slice(at), key].join(' -> ')} form a reference cycle`
    rendering.push(key)
    const value = raw.get(key)
    for (const reference of referencesIn(value)) {
      const dependency = constantForReference(reference, (k) => raw.has(k))
      const cycle = dependency === undefined ? null : render(dependency)
      if (cycle) return cycle
    }
    rendering.pop()
    values[key] = renderValue(value, values)
    return null
  }
  for (const key of raw.keys()) {
    const cycle = render(key)
    if (cycle) return { ok: false, message: cycle }
  }
  return { ok: true, values }
}
