// Test-only preload for server processes: `node --import <this file> apps/api/bin/stdops-server.mjs …`.
// The server never imports it; it reads the hooks this module leaves on globalThis (deps.ts,
// testHooksFromPreload), so no environment variable alone can change a production server's clock
// or make it kill itself.
//
//   STDOPS_TEST_CLOCK_FILE  a file holding a number of milliseconds added to the real clock (the
//                           test rewrites it to move simulated time; read at most every 20 ms)
//   STDOPS_TEST_FAULT       a fault point name (e.g. schedule:task-created): reaching it SIGKILLs
//                           the process there and then
import { readFileSync } from 'node:fs'

const hooks = {}

const clockFile = process.env.STDOPS_TEST_CLOCK_FILE
if (clockFile) {
  let offset = 0
  let readAt = 0
  const read = () => {
    try {
      const n = Number(readFileSync(clockFile, 'utf8').trim())
      if (Number.isFinite(n)) offset = n
    } catch {}
  }
  read()
  hooks.now = () => {
    const real = Date.now()
    if (real - readAt >= 20) {
      readAt = real
      read()
    }
    return real + offset
  }
}

const fault = process.env.STDOPS_TEST_FAULT
if (fault) {
  hooks.fault = (point) => {
    if (point !== fault) return
    process.stderr.write(`test fault ${point}: killing myself\n`)
    process.kill(process.pid, 'SIGKILL')
    // SIGKILL is not delivered synchronously everywhere: run nothing more meanwhile
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10_000)
  }
}

globalThis[Symbol.for('stdops.testHooks')] = hooks
