import pc from 'picocolors'

export type Colors = ReturnType<typeof pc.createColors>

/** Where a command reads and writes: data on `out`, everything else on `err`. */
export interface Io {
  out: NodeJS.WritableStream & { isTTY?: boolean; columns?: number }
  err: NodeJS.WritableStream & { isTTY?: boolean }
  stdin: NodeJS.ReadableStream & { isTTY?: boolean }
  env: NodeJS.ProcessEnv
  /** colours for `out` and `err`: on only for a TTY, and never with NO_COLOR */
  color: { out: Colors; err: Colors }
}

/** no-color.org: NO_COLOR set to anything but the empty string turns colour off. */
export function colorEnabled(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv): boolean {
  return stream.isTTY === true && !env.NO_COLOR
}

export function processIo(): Io {
  const env = process.env
  return {
    out: process.stdout,
    err: process.stderr,
    stdin: process.stdin,
    env,
    color: {
      out: pc.createColors(colorEnabled(process.stdout, env)),
      err: pc.createColors(colorEnabled(process.stderr, env)),
    },
  }
}

/** Resolves once what was written so far has been handed to the OS (pipes are asynchronous). */
export function flush(stream: NodeJS.WritableStream): Promise<void> {
  return new Promise((resolve) => {
    if (!stream.write('', () => resolve())) stream.once('drain', () => resolve())
  })
}
