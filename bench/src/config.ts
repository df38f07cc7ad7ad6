import { resolve } from 'node:path'
import type { Kind } from './lib/db'
import { BENCH_DIR } from './lib/proc'

export type Section = 'control' | 'engine' | 'latency' | 'probe'

export interface Config {
  quick: boolean
  sections: Section[]
  dbs: Kind[]
  /** Write docs/benchmarks.md and bench/results/latest.json (full runs of every section). */
  publish: boolean
  /** Only re-render docs/benchmarks.md from bench/results/latest.json. */
  renderOnly: boolean
  profile: boolean
  profileDir: string
  // control path
  connections: number[]
  loadSeconds: number
  warmupSeconds: number
  // engine
  engineTasks: number
  engineWidth: number
  // latency
  revokeTries: number
  holdTries: number
  pauseTries: number
  // probe
  probeIterations: number
}

const USAGE = `pnpm bench [-- options]
  --quick              short smoke run (1.5 s per measurement, few tasks); writes bench/results/quick.{json,md}
  --only=a,b           sections: control, engine, latency, probe (default: all)
  --db=a,b             sqlite, postgresql (default: both)
  --profile            run stdops processes with --cpu-prof (bench/results/profiles/)
  --render             only rewrite docs/benchmarks.md from bench/results/latest.json
The full run (no options) writes docs/benchmarks.md and bench/results/latest.json.
PostgreSQL: BENCH_PG_URL (default postgresql://postgres@127.0.0.1:5432/test); a fresh database per run.`

export function parseArgs(argv: string[]): Config {
  const args = argv.filter((a) => a !== '--')
  const get = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3)
  for (const a of args) {
    if (!/^--(quick|profile|render|help|only=.+|db=.+)$/.test(a)) {
      process.stderr.write(`unknown option ${a}\n${USAGE}\n`)
      process.exit(2)
    }
  }
  if (args.includes('--help')) {
    process.stdout.write(`${USAGE}\n`)
    process.exit(0)
  }
  const quick = args.includes('--quick')
  const ALL: Section[] = ['control', 'engine', 'latency', 'probe']
  const sections = (get('only')?.split(',') ?? ALL) as Section[]
  const dbs = (get('db')?.split(',') ?? ['sqlite', 'postgresql']) as Kind[]
  for (const s of sections) if (!ALL.includes(s)) throw new Error(`unknown section ${s}`)
  for (const d of dbs) if (!['sqlite', 'postgresql'].includes(d)) throw new Error(`unknown database ${d}`)
  return {
    quick,
    sections,
    dbs,
    publish: !quick && sections.length === ALL.length && dbs.length === 2,
    renderOnly: args.includes('--render'),
    profile: args.includes('--profile'),
    profileDir: resolve(BENCH_DIR, 'results/profiles'),
    connections: [1, 16, 64],
    loadSeconds: quick ? 1.5 : 5,
    warmupSeconds: quick ? 0.5 : 1,
    engineTasks: quick ? 4 : 20,
    engineWidth: 100,
    revokeTries: quick ? 20 : 200,
    holdTries: quick ? 10 : 100,
    pauseTries: quick ? 5 : 30,
    probeIterations: quick ? 200 : 1000,
  }
}
