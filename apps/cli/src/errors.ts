import { TRPCClientError } from '@trpc/client'
import type { Io } from './io'

/** Legacy codes the CLI treats as "who are you" problems (exit 2). */
export const AUTH_CODES: readonly number[] = [1306000, 1306429]

/** Bad flags, missing configuration, unreadable input: exit 2. */
export class UsageError extends Error {}

/** The command ran and the outcome is a failure (a task that failed, a wait that timed out): exit 1. */
export class Failure extends Error {}

export const EXIT = { ok: 0, failure: 1, usage: 2 } as const

/** The legacy code and message of a server refusal, or null when `err` is not one. */
export function refusalOf(err: unknown): { code: number; message: string } | null {
  if (!(err instanceof TRPCClientError)) return null
  const data = (err as TRPCClientError<never>).data as { legacyCode?: unknown } | undefined
  return typeof data?.legacyCode === 'number' ? { code: data.legacyCode, message: err.message } : null
}

function causeText(err: unknown): string {
  const parts: string[] = []
  let e: unknown = err
  for (let i = 0; e instanceof Error && i < 4; i++) {
    const code = (e as { code?: unknown }).code
    parts.push(typeof code === 'string' ? `${e.message} (${code})` : e.message)
    e = e.cause
  }
  return [...new Set(parts)].join(': ') || String(err)
}

/** Prints `err` on stderr, one line, and returns the exit code. */
export function reportError(err: unknown, io: Io, url?: string): number {
  const c = io.color.err
  const say = (line: string) => io.err.write(`${c.red('error')}${line}\n`)
  const refusal = refusalOf(err)
  if (refusal) {
    say(` ${refusal.code}: ${refusal.message}`)
    return AUTH_CODES.includes(refusal.code) ? EXIT.usage : EXIT.failure
  }
  if (err instanceof UsageError) {
    say(`: ${err.message}`)
    return EXIT.usage
  }
  if (err instanceof Failure) {
    say(`: ${err.message}`)
    return EXIT.failure
  }
  if (err instanceof TRPCClientError) {
    say(`: ${url ? `request to ${url} failed: ` : ''}${causeText(err)}`)
    return EXIT.failure
  }
  say(`: ${causeText(err)}`)
  return EXIT.failure
}
