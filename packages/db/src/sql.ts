/**
 * Parameterised SQL as a tagged template. Values never become SQL text: each one is a bound
 * parameter, written `?` for SQLite and `$n` for PostgreSQL when the statement is compiled.
 * A `Sql` value inside another one is spliced in with its own parameters, so statements can be
 * composed from fragments without building strings.
 */
export class Sql {
  constructor(
    readonly strings: readonly string[],
    readonly values: readonly unknown[],
  ) {}

  compile(dialect: 'sqlite' | 'postgresql'): { text: string; values: unknown[] } {
    const parts: string[] = []
    const values: unknown[] = []
    const walk = (q: Sql) => {
      q.strings.forEach((s, i) => {
        parts.push(s)
        if (i >= q.values.length) return
        const v = q.values[i]
        if (v instanceof Sql) {
          walk(v)
        } else {
          values.push(dialect === 'sqlite' ? toSqliteValue(v) : v)
          parts.push(dialect === 'sqlite' ? '?' : `$${values.length}`)
        }
      })
    }
    walk(this)
    return { text: parts.join(''), values }
  }
}

function toSqliteValue(v: unknown): unknown {
  if (typeof v === 'boolean') return v ? 1 : 0
  if (v === undefined) return null
  return v
}

export function sql(strings: TemplateStringsArray, ...values: unknown[]): Sql {
  return new Sql(strings, values)
}

/** `a, b, c` from fragments or values (each value is a bound parameter). */
export function join(items: readonly unknown[], separator = ', '): Sql {
  if (items.length === 0) throw new Error('sql join of an empty list')
  const strings = ['', ...items.slice(1).map(() => separator), '']
  return new Sql(strings, items)
}

export const empty = new Sql([''], [])

/**
 * The most bound parameters one statement may carry: SQLite's SQLITE_MAX_VARIABLE_NUMBER (32766
 * since 3.32, as better-sqlite3 builds it) and PostgreSQL's protocol limit (65535).
 */
export const MAX_BOUND_PARAMETERS = { sqlite: 32766, postgresql: 65535 } as const

/** Bound parameters in `q`, its fragments' included. */
export function parameterCount(q: Sql): number {
  let n = 0
  for (const v of q.values) n += v instanceof Sql ? parameterCount(v) : 1
  return n
}

/**
 * `rows` (fragments such as `(${a}, ${b})`) split into runs that fit one statement each, with
 * `reserved` parameters left for the rest of the statement: many-row inserts run as several
 * statements rather than failing past the database's limit.
 */
export function chunkRows(provider: 'sqlite' | 'postgresql', rows: readonly Sql[], reserved = 0): Sql[][] {
  const budget = MAX_BOUND_PARAMETERS[provider] - reserved
  const chunks: Sql[][] = []
  let current: Sql[] = []
  let used = 0
  for (const row of rows) {
    const n = parameterCount(row)
    if (current.length > 0 && used + n > budget) {
      chunks.push(current)
      current = []
      used = 0
    }
    current.push(row)
    used += n
  }
  if (current.length > 0) chunks.push(current)
  return chunks
}
