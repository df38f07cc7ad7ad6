import { resolveName } from './expr'
import type { Constant } from './pipeline/schema'

/**
 * What rendering may produce. A constant's value can reference others (`"${a}${a}"`), so a small
 * tree can describe a huge value: each rendered value, and all of them together, are measured as
 * they are built and refused past these sizes (in characters of their JSON form); the chain of
 * constants one renders through is bounded too, so that rendering never runs out of stack.
 */
export const CONSTANT_LIMITS = {
  /** One rendered value (a constant, or one input of an activity). */
  valueChars: 2 * 1024 * 1024,
  /** The task's constants rendered, all together. */
  totalChars: 16 * 1024 * 1024,
  /** An activity's inputs rendered, all together (they are stored with the node). */
  inputsChars: 4 * 1024 * 1024,
  /** Constants rendered through one another (`${a}` → `${b}` → …). */
  referenceDepth: 100,
} as const

/** A rendered value would pass a limit of CONSTANT_LIMITS. */
export class RenderLimitError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'RenderLimitError'
  }
}

/**
 * The size of `value` as JSON (near enough: characters of strings, numbers and keys, plus
 * punctuation), or Infinity as soon as it passes `limit`. Iterative, and it stops early, so a value
 * whose arrays share one another (a few objects describing 2^40 leaves) costs at most `limit` steps.
 */
export function sizeWithin(value: unknown, limit: number): number {
  let size = 0
  const stack: unknown[] = [value]
  while (stack.length > 0) {
    const v = stack.pop()
    if (typeof v === 'string') size += v.length + 2
    else if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint')
      size += String(v).length
    else if (v === null || v === undefined) size += 4
    else if (Array.isArray(v)) {
      size += 2 + v.length
      for (const item of v) stack.push(item)
    } else if (typeof v === 'object') {
      for (const [k, item] of Object.entries(v)) {
        size += k.length + 4
        stack.push(item)
        if (size > limit) return Number.POSITIVE_INFINITY
      }
      size += 2
    }
    if (size > limit) return Number.POSITIVE_INFINITY
  }
  return size
}

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
export function renderValue(
  value: unknown,
  values: Record<string, unknown>,
  limit: number = CONSTANT_LIMITS.valueChars,
): unknown {
  const rendered = renderWithin(value, values, limit)
  if (sizeWithin(rendered, limit) > limit) throw tooLarge(limit)
  return rendered
}

const tooLarge = (limit: number) =>
  new RenderLimitError(`renders to more than ${limit} characters (the limit of one rendered value)`)

function renderWithin(value: unknown, values: Record<string, unknown>, limit: number): unknown {
  if (typeof value === 'string') {
    const whole = WHOLE_REFERENCE.exec(value)
    if (whole) {
      const resolved = lookupReference(whole[1]!, values)
      return resolved === undefined ? value : resolved
    }
    // measured piece by piece: the string is never built past the limit
    let length = value.length
    return value.replace(REFERENCE, (text, name: string) => {
      const resolved = lookupReference(name, values)
      if (resolved === undefined) return text
      const piece =
        typeof resolved === 'string'
          ? resolved
          : sizeWithin(resolved, limit - length) > limit - length
            ? null
            : JSON.stringify(resolved)
      if (piece === null) throw tooLarge(limit)
      length += piece.length - text.length
      if (length > limit) throw tooLarge(limit)
      return piece
    })
  }
  if (Array.isArray(value)) return value.map((item) => renderWithin(item, values, limit))
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, renderWithin(v, values, limit)]))
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
  let total = 0
  const render = (key: string): string | null => {
    if (Object.hasOwn(values, key)) return null
    const at = rendering.indexOf(key)
    if (at >= 0) return `constants ${[...rendering.slice(at), key].join(' -> ')} form a reference cycle`
    if (rendering.length >= CONSTANT_LIMITS.referenceDepth)
      return `constants reference one another more than ${CONSTANT_LIMITS.referenceDepth} deep (the limit): ${rendering[0]} -> ${rendering[1]} -> … -> ${key}`
    rendering.push(key)
    const value = raw.get(key)
    for (const reference of referencesIn(value)) {
      const dependency = constantForReference(reference, (k) => raw.has(k))
      const problem = dependency === undefined ? null : render(dependency)
      if (problem) return problem
    }
    rendering.pop()
    try {
      values[key] = renderValue(value, values)
    } catch (err) {
      if (err instanceof RenderLimitError) return `constant ${key} ${err.message}`
      throw err
    }
    total += sizeWithin(values[key], CONSTANT_LIMITS.valueChars)
    if (total > CONSTANT_LIMITS.totalChars)
      return `constants render to more than ${CONSTANT_LIMITS.totalChars} characters in all (the limit), passed at ${key}`
    return null
  }
  for (const key of raw.keys()) {
    const problem = render(key)
    if (problem) return { ok: false, message: problem }
  }
  return { ok: true, values }
}
