import { createInterface } from 'node:readline'
import type { Io } from './io'

/** Asks on the terminal (the question on stderr); `hidden` echoes nothing, for secrets. */
export async function ask(io: Io, question: string, hidden = false): Promise<string> {
  const rl = createInterface({ input: io.stdin, output: io.err, terminal: true })
  const r = rl as unknown as { _writeToOutput?: (s: string) => void }
  if (hidden) {
    // Let the question through, then swallow the echo of what is typed.
    let asked = false
    r._writeToOutput = (s: string) => {
      if (!asked) io.err.write(s)
    }
    const answer = new Promise<string>((resolve) => rl.question(question, resolve))
    asked = true
    const value = await answer
    rl.close()
    io.err.write('\n')
    return value.trim()
  }
  const value = await new Promise<string>((resolve) => rl.question(question, resolve))
  rl.close()
  return value.trim()
}

/** All of stdin as lines, for secrets piped in (`printf '%s\n' "$SECRET" "$TOKEN" | stdops login`). */
export async function readStdinLines(io: Io): Promise<string[]> {
  const chunks: Buffer[] = []
  for await (const chunk of io.stdin)
    chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer))
  return Buffer.concat(chunks)
    .toString('utf8')
    .split(/\r?\n/)
    .map((l) => l.trim())
}
