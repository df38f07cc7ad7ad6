/** Percentiles and tables. */

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[idx]!
}

export interface Summary {
  n: number
  p50: number
  p99: number
  max: number
  mean: number
}

export function summarize(values: readonly number[]): Summary {
  const s = [...values].sort((a, b) => a - b)
  const mean = s.length === 0 ? Number.NaN : s.reduce((a, b) => a + b, 0) / s.length
  return {
    n: s.length,
    p50: percentile(s, 50),
    p99: percentile(s, 99),
    max: s[s.length - 1] ?? Number.NaN,
    mean,
  }
}

export function fmt(v: number | null | undefined, digits = 0): string {
  if (v === null || v === undefined || Number.isNaN(v)) return 'n/a'
  return v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
}

/** Milliseconds with a precision that suits their size. */
export function ms(v: number | null | undefined): string {
  if (v === null || v === undefined || Number.isNaN(v)) return 'n/a'
  const a = Math.abs(v)
  return fmt(v, a < 10 ? 2 : a < 100 ? 1 : 0)
}

export function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  if (
    a === null ||
    a === undefined ||
    b === null ||
    b === undefined ||
    !Number.isFinite(a) ||
    !Number.isFinite(b) ||
    b === 0
  )
    return null
  return a / b
}

export function ratioText(r: number | null): string {
  return r === null ? 'n/a' : `${r.toFixed(2)}×`
}

/** A Markdown table (also readable as plain text). */
export function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`
  const sep = `|${widths.map((w, i) => (i === 0 ? `${'-'.repeat(w + 1)}-` : `-${'-'.repeat(w)}:`)).join('|')}|`
  return [line(head), sep, ...rows.map(line)].join('\n')
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

export const nowMs = () => performance.timeOrigin + performance.now()
