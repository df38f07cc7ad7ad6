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
