import type { Io } from '../io'

/** `--json`: the object the human view renders, indented, on stdout. */
export function printJson(io: Io, value: unknown): void {
  io.out.write(`${JSON.stringify(value, null, 2)}\n`)
}

/** One event per line (`watch --json`). */
export function printJsonLine(io: Io, value: unknown): void {
  io.out.write(`${JSON.stringify(value)}\n`)
}
