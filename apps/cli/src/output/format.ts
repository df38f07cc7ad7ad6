import type { Colors } from '../io'

/** `45s`, `3m07s`, `2h05m`. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds))
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`
}

/** A state word, coloured by what it means. */
export function paintState(c: Colors, state: string): string {
  switch (state) {
    case 'FINISHED':
      return c.green(state)
    case 'FAILED':
    case 'REVOKED':
      return c.red(state)
    case 'RUNNING':
      return c.cyan(state)
    case 'SUSPENDED':
      return c.yellow(state)
    default:
      return c.dim(state)
  }
}

export const dash = (v: unknown) => (v === null || v === undefined || v === '' ? '-' : String(v))
