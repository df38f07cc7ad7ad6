import type { Colors } from '../io'

export interface Column<T> {
  header: string
  value: (row: T) => string
  /** colours the padded cell; width is measured on the plain text */
  paint?: (text: string, row: T) => string
}

const width = (s: string) => [...s].length

/** An aligned table with a header row; colour only through `paint`, so widths stay right. */
export function renderTable<T>(c: Colors, rows: readonly T[], columns: readonly Column<T>[]): string {
  const cells = rows.map((row) => columns.map((col) => col.value(row)))
  const widths = columns.map((col, i) => Math.max(width(col.header), ...cells.map((r) => width(r[i]!))))
  const line = (parts: string[]) => parts.join('  ').trimEnd()
  const header = line(columns.map((col, i) => c.bold(col.header.padEnd(widths[i]!))))
  const body = cells.map((r, ri) =>
    line(
      r.map((text, i) => {
        const padded = i === r.length - 1 ? text : text.padEnd(widths[i]! + text.length - width(text))
        const paint = columns[i]!.paint
        return paint ? paint(padded, rows[ri]!) : padded
      }),
    ),
  )
  return `${[header, ...body].join('\n')}\n`
}

/** `key   value` lines for one object. */
export function renderRecord(c: Colors, entries: ReadonlyArray<[string, string]>): string {
  const w = Math.max(0, ...entries.map(([k]) => width(k)))
  return `${entries.map(([k, v]) => `${c.bold(k.padEnd(w))}  ${v}`).join('\n')}\n`
}
