/**
 * Summarises a V8 .cpuprofile (from `pnpm bench -- --profile`): self time by package / source
 * area and the top functions by self time, and the inclusive time of the functions named in
 * argv after the file.
 *
 *   pnpm --filter @stdops/bench exec tsx src/profile-summary.ts results/profiles/control-sqlite-api.cpuprofile [fn …]
 */
import { readFileSync } from 'node:fs'

interface Node {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  hitCount?: number
  children?: number[]
}
interface Profile {
  nodes: Node[]
  startTime: number
  endTime: number
  samples: number[]
  timeDeltas: number[]
}

const [file, ...wanted] = process.argv.slice(2)
if (!file) {
  process.stderr.write('usage: profile-summary <file.cpuprofile> [function names for inclusive time]\n')
  process.exit(2)
}
const prof = JSON.parse(readFileSync(file, 'utf8')) as Profile
const byId = new Map(prof.nodes.map((n) => [n.id, n]))
const self = new Map<number, number>()
prof.samples.forEach((id, i) => {
  self.set(id, (self.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0))
})
const total = [...self.values()].reduce((a, b) => a + b, 0)

function area(url: string, fn: string): string {
  if (!url) return fn.startsWith('(') ? fn : '(native)'
  const pnpm = /node_modules\/\.pnpm\/[^/]+\/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (pnpm) return pnpm[1]!
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (nm) return nm[1]!
  const ws =
    /\/work\/[^/]+\/((?:apps|packages|bench)\/[^/]+)\/src\/(.*)$/.exec(url) ??
    /\/((?:apps|packages|bench)\/[^/]+)\/src\/(.*)$/.exec(url)
  if (ws) return `${ws[1]}/${ws[2]}`
  if (url.startsWith('node:')) return url
  return url.replace(/^file:\/\//, '')
}

const pct = (us: number) => `${((100 * us) / total).toFixed(1).padStart(5)}%`
const byArea = new Map<string, number>()
const byFn = new Map<string, number>()
for (const [id, us] of self) {
  const n = byId.get(id)!
  const a = area(n.callFrame.url, n.callFrame.functionName)
  byArea.set(a, (byArea.get(a) ?? 0) + us)
  const key = `${n.callFrame.functionName || '(anonymous)'}  ${a}:${n.callFrame.lineNumber + 1}`
  byFn.set(key, (byFn.get(key) ?? 0) + us)
}

process.stdout.write(`${file}: ${(total / 1e6).toFixed(2)} s sampled\n\nself time by area\n`)
for (const [a, us] of [...byArea].sort((x, y) => y[1] - x[1]).slice(0, 30))
  process.stdout.write(`${pct(us)}  ${a}\n`)
process.stdout.write('\ntop functions by self time\n')
for (const [f, us] of [...byFn].sort((x, y) => y[1] - x[1]).slice(0, 40))
  process.stdout.write(`${pct(us)}  ${f}\n`)

if (wanted.length > 0) {
  // Inclusive time: the self time of every node under a frame with that name (counted once).
  const parent = new Map<number, number>()
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  process.stdout.write('\ninclusive time\n')
  for (const name of wanted) {
    let us = 0
    for (const [id, t] of self) {
      for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
        if (byId.get(cur)!.callFrame.functionName === name) {
          us += t
          break
        }
      }
    }
    process.stdout.write(`${pct(us)}  ${name}\n`)
  }
}
