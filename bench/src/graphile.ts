/**
 * The peer: graphile-worker 0.17 executing the same number of no-op jobs on the same PostgreSQL
 * server (its own fresh database): with its defaults (one job at a time), at the engine's own
 * concurrency of 32, and tuned (concurrency 32, a local queue of 500, completeJobBatchDelay 0). Jobs/s from the moment the jobs are committed (to an idle, running
 * worker) until its queue table is empty.
 */
import { type Logger, run, runMigrations } from 'graphile-worker'
import pg from 'pg'
import type { Config } from './config'
import { freshDatabase } from './lib/db'
import { fmt, nowMs, sleep } from './lib/stats'

export interface PeerRow {
  setting: 'default' | 'concurrency 32' | 'tuned'
  options: string
  jobs: number
  seconds: number | null
  jobsPerSec: number | null
  note?: string
}

export const PEER_HEAD = ['graphile-worker 0.17', 'options', 'jobs', 'seconds', 'jobs/s']

export function peerLine(r: PeerRow): string[] {
  return [
    r.setting,
    r.options,
    String(r.jobs),
    r.seconds === null ? 'n/a' : r.seconds.toFixed(2),
    r.jobsPerSec === null ? `n/a (${r.note ?? ''})` : fmt(r.jobsPerSec),
  ]
}

const SETTINGS = [
  {
    setting: 'default' as const,
    options: 'defaults (concurrentJobs 1, no local queue, no batching)',
    preset: {},
  },
  {
    // The engine's own concurrency (a worker process runs 32 nodes at once): the peer a user
    // would set up to compare, a worker of the same width.
    setting: 'concurrency 32' as const,
    options: "concurrentJobs 32 (the engine's concurrency), no local queue, no batching",
    preset: { worker: { concurrentJobs: 32 } },
  },
  {
    setting: 'tuned' as const,
    options: 'concurrentJobs 32, localQueue.size 500, completeJobBatchDelay 0',
    preset: { worker: { concurrentJobs: 32, localQueue: { size: 500 }, completeJobBatchDelay: 0 } },
  },
]

// graphile-worker's Logger: a factory of log functions. Quiet, but errors are shown.
const quiet = {
  scope: () => quiet,
  error: (message: string) => process.stderr.write(`  [graphile-worker] ${message}\n`),
  warn: () => undefined,
  info: () => undefined,
  debug: () => undefined,
} as unknown as Logger

export async function runGraphile(cfg: Config, jobs: number, log: (s: string) => void): Promise<PeerRow[]> {
  const db = await freshDatabase('postgresql', 'gw')
  const rows: PeerRow[] = []
  const client = new pg.Client({ connectionString: db.url })
  try {
    await runMigrations({ connectionString: db.url, logger: quiet })
    await client.connect()
    const enqueue = (n: number) =>
      client.query(
        `SELECT graphile_worker.add_job('bench_noop', '{}'::json) FROM generate_series(1, $1::int)`,
        [n],
      )
    const remaining = async () =>
      Number(
        (await client.query<{ n: string }>('SELECT COUNT(*) AS n FROM graphile_worker._private_jobs')).rows[0]
          ?.n,
      )
    const measure = async (n: number, timeoutMs: number) => {
      await enqueue(n)
      const t0 = nowMs()
      for (;;) {
        if ((await remaining()) === 0) return (nowMs() - t0) / 1000
        if (nowMs() - t0 > timeoutMs) return null
        await sleep(5)
      }
    }
    for (const s of SETTINGS) {
      const runner = await run({
        connectionString: db.url,
        taskList: { bench_noop: async () => undefined },
        crontab: '',
        noHandleSignals: true,
        logger: quiet,
        preset: s.preset,
      })
      try {
        await sleep(300) // its LISTEN connection
        await measure(Math.min(500, jobs), 60_000) // warm-up, not reported
        const seconds = await measure(jobs, cfg.quick ? 60_000 : 180_000)
        const row: PeerRow = {
          setting: s.setting,
          options: s.options,
          jobs,
          seconds,
          jobsPerSec: seconds === null ? null : jobs / seconds,
          ...(seconds === null ? { note: 'timeout' } : {}),
        }
        rows.push(row)
        log(`| ${peerLine(row).join(' | ')} |`)
      } finally {
        await runner.stop()
      }
    }
  } finally {
    await client.end().catch(() => undefined)
    await db.drop()
  }
  return rows
}
