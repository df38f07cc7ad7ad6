/**
 * `pnpm bench`: the control path against its floor, the engine against graphile-worker, and the
 * control latencies, on SQLite and PostgreSQL, in one run. Prints tables as it goes; a full run
 * writes docs/benchmarks.md and bench/results/latest.json (a --quick run: bench/results/quick.*).
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { parseArgs } from './config'
import { CONTROL_HEAD, type ControlRow, runControl } from './control'
import { ENGINE_HEAD, type EngineRow, runEngine } from './engine'
import { PEER_HEAD, type PeerRow, runGraphile } from './graphile'
import { LATENCY_HEAD, type LatencyRow, runLatency } from './latency'
import { dropAllDatabases, type Kind, PG_BASE_URL, pgAvailable } from './lib/db'
import { machine } from './lib/machine'
import { BENCH_DIR, ensureDir, killAllChildren, REPO_DIR } from './lib/proc'
import { table } from './lib/stats'
import { probe } from './probe'
import { evaluateTargets, probeTables, type Results, renderMarkdown } from './report'

const cfg = parseArgs(process.argv.slice(2))
const out = (s: string) => process.stdout.write(`${s}\n`)
const header = (head: string[]) => table(head, []).split('\n').join('\n')

let cleaning = false
const cleanup = async (code: number) => {
  if (cleaning) return
  cleaning = true
  killAllChildren()
  await dropAllDatabases()
  process.exit(code)
}
process.on('SIGINT', () => void cleanup(130))
process.on('SIGTERM', () => void cleanup(143))

async function main() {
  if (cfg.renderOnly) {
    const saved = JSON.parse(readFileSync(resolve(BENCH_DIR, 'results', 'latest.json'), 'utf8')) as Results
    saved.targets = evaluateTargets(saved)
    writeFileSync(resolve(REPO_DIR, 'docs', 'benchmarks.md'), renderMarkdown(saved))
    out('rewrote docs/benchmarks.md from bench/results/latest.json')
    return
  }
  const began = Date.now()
  const m = machine()
  out(
    `stdops bench (${cfg.quick ? 'quick' : 'full'}): ${m.cpu}, ${m.nproc} cores, ${m.memory}, node ${m.node}, load ${m.loadavg}`,
  )
  if (cfg.profile) ensureDir(cfg.profileDir)

  const pgVersion = cfg.dbs.includes('postgresql') ? await pgAvailable() : null
  const dbs: Kind[] = cfg.dbs.filter((d) => d === 'sqlite' || pgVersion !== null)
  if (cfg.dbs.includes('postgresql') && pgVersion === null)
    out(`PostgreSQL at ${PG_BASE_URL} does not answer: its sections are skipped`)

  const results: Results = {
    mode: cfg.quick ? 'quick' : 'full',
    command: cfg.quick ? 'pnpm bench -- --quick' : 'pnpm bench',
    machine: { ...m, postgres: pgVersion },
    settings: {
      connections: cfg.connections,
      loadSeconds: cfg.loadSeconds,
      engineTasks: cfg.engineTasks,
      engineWidth: cfg.engineWidth,
      revokeTries: cfg.revokeTries,
      holdTries: cfg.holdTries,
      pauseTries: cfg.pauseTries,
    },
    control: [] as ControlRow[],
    engine: [] as EngineRow[],
    peer: [] as PeerRow[],
    latency: [] as LatencyRow[],
    probe: [],
    targets: [],
    startedAt: new Date(began).toISOString(),
    seconds: 0,
  }

  if (cfg.sections.includes('control')) {
    out(`\n## Control path: operate_task pause/resume, ${cfg.loadSeconds} s per measurement`)
    out(header(CONTROL_HEAD))
    for (const kind of dbs) results.control.push(...(await runControl(cfg, kind, out)))
  }

  if (cfg.sections.includes('engine')) {
    out(`\n## Engine: ${cfg.engineTasks} tasks × ${cfg.engineWidth} no-op nodes at once`)
    out(header(ENGINE_HEAD))
    for (const kind of dbs) results.engine.push(...(await runEngine(cfg, kind, out)))
    if (dbs.includes('postgresql')) {
      out(`\n## Peer: graphile-worker, ${cfg.engineTasks * cfg.engineWidth} no-op jobs`)
      out(header(PEER_HEAD))
      results.peer.push(...(await runGraphile(cfg, cfg.engineTasks * cfg.engineWidth, out)))
    }
  }

  if (cfg.sections.includes('latency')) {
    out('\n## Control latency')
    out(header(LATENCY_HEAD))
    for (const kind of dbs) results.latency.push(...(await runLatency(cfg, kind, out)))
  }

  if (cfg.sections.includes('probe')) {
    out('\n## Where the time goes (in-process probe)')
    for (const kind of dbs)
      results.probe.push(
        await probe(kind, { iterations: cfg.probeIterations, concurrentSeconds: cfg.quick ? 1 : 3 }),
      )
    out(probeTables(results.probe))
  }

  results.seconds = Math.round((Date.now() - began) / 1000)
  results.machine.loadavgAfter = machine().loadavg
  results.targets = evaluateTargets(results)
  out('\n## Targets')
  for (const t of results.targets)
    out(`- ${t.met === null ? 'not measured' : t.met ? 'met' : 'MISSED'}: ${t.name}: ${t.detail}`)
  out(`\ntotal ${results.seconds} s`)

  const json = `${JSON.stringify(results, null, 2)}\n`
  const md = renderMarkdown(results)
  if (cfg.publish) {
    writeFileSync(resolve(ensureDir(resolve(BENCH_DIR, 'results')), 'latest.json'), json)
    writeFileSync(resolve(ensureDir(resolve(REPO_DIR, 'docs')), 'benchmarks.md'), md)
    out('wrote docs/benchmarks.md and bench/results/latest.json')
  } else {
    writeFileSync(resolve(ensureDir(resolve(BENCH_DIR, 'results')), 'quick.json'), json)
    writeFileSync(resolve(BENCH_DIR, 'results', 'quick.md'), md)
    out(
      'wrote bench/results/quick.json and bench/results/quick.md (a full run of every section writes docs/benchmarks.md)',
    )
  }
}

main().then(
  () => cleanup(0),
  (err) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
    void cleanup(1)
  },
)
