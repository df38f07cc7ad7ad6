/**
 * Section 3, control latency, with workers running:
 * - revoke → abort of a running `sleep_timer` node: from the revoke reply until the node's row is
 *   seen REVOKED (polled directly in the database), and the node's recorded finish time relative
 *   to the reply (negative: recorded before the reply, in the revoke's own transaction);
 * - revoke → abort signal inside a component that holds a worker (`bench_hold`): from the reply
 *   until the component's AbortSignal fired, as the component logged it;
 * - pause → quiet: from the pause reply until get_task_status reports `running_nodes` = 0, for a
 *   wide fork of short nodes.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { linearTree, parallelTree } from '@stdops/core/testing'
import type { Config } from './config'
import { freshDatabase, type Kind, openReader, type Reader } from './lib/db'
import { type Child, startStdopsApi, startStdopsWorker } from './lib/proc'
import { ms, nowMs, type Summary, sleep, summarize } from './lib/stats'
import { bootstrap, LegacyClient, mapLimit } from './lib/stdops'

export interface LatencyRow {
  db: Kind
  setup: string
  measure: string
  tries: number
  /** Milliseconds. */
  summary: Summary
  note?: string
}

export const LATENCY_HEAD = ['db', 'setup', 'measure', 'tries', 'p50 ms', 'p99 ms', 'max ms']

export function latencyLine(r: LatencyRow): string[] {
  return [
    r.db,
    r.setup,
    r.measure + (r.note ? ` (${r.note})` : ''),
    String(r.tries),
    ms(r.summary.p50),
    ms(r.summary.p99),
    ms(r.summary.max),
  ]
}

const firstActivity = (tree: { activities?: Record<string, unknown> }) =>
  Object.keys(tree.activities ?? {})[0]!

async function waitRunning(reader: Reader, ids: number[], nodeId: string, timeoutMs = 60_000) {
  const deadline = nowMs() + timeoutMs
  for (;;) {
    const [r] = await reader.query<{ n: number }>(
      `SELECT COUNT(*) AS n FROM node_states WHERE task_id IN (${ids.join(', ')}) AND node_id = $1 AND state = 'RUNNING'`,
      [nodeId],
    )
    if (Number(r?.n) === ids.length) return
    if (nowMs() > deadline)
      throw new Error(`only ${Number(r?.n)}/${ids.length} nodes RUNNING after ${timeoutMs} ms`)
    await sleep(10)
  }
}

export async function runLatency(cfg: Config, kind: Kind, log: (s: string) => void): Promise<LatencyRow[]> {
  const db = await freshDatabase(kind, 'lat')
  const dir = mkdtempSync(join(tmpdir(), 'stdops-bench-abort-'))
  const abortLog = join(dir, 'aborts.log')
  const rows: LatencyRow[] = []
  const setup = kind === 'sqlite' ? 'API + worker, 1 process' : 'API process + 1 worker process'
  const env = { BENCH_ABORT_LOG: abortLog }
  const emit = (row: LatencyRow) => {
    rows.push(row)
    log(`| ${latencyLine(row).join(' | ')} |`)
  }
  try {
    const id = await bootstrap(db.url)
    const api = await startStdopsApi(`stdops(${kind})`, { dbUrl: db.url, worker: kind === 'sqlite', env })
    const workers: Child[] =
      kind === 'postgresql' ? [await startStdopsWorker(`stdops-worker(${kind})`, { dbUrl: db.url, env })] : []
    const reader = await openReader(db)
    try {
      const legacy = new LegacyClient(api.base, id)
      const templateId = await legacy.createTemplate('bench latency', linearTree(1, 'bench_noop'))
      let seq = 0
      const createStarted = (n: number, tree: unknown) =>
        mapLimit(Array.from({ length: n }), 8, async () => {
          const taskId = await legacy.createTask(templateId, `latency ${++seq}`, tree)
          await legacy.start(taskId)
          return taskId
        })

      // 1. revoke → sleep_timer node REVOKED
      {
        const tree = linearTree(1, 'sleep_timer', { bk_timing: { hook: false, value: 3600 } })
        const nodeId = firstActivity(tree as never)
        const ids = await createStarted(cfg.revokeTries, tree)
        await waitRunning(reader, ids, nodeId)
        const observed: number[] = []
        const recorded: number[] = []
        const roundTrip: number[] = []
        for (const taskId of ids) {
          const sent = nowMs()
          await legacy.operate(taskId, 'revoke')
          const replied = nowMs()
          for (;;) {
            const [r] = await reader.query<{ state: string; finished_at: number | null }>(
              'SELECT state, finished_at FROM node_states WHERE task_id = $1 AND node_id = $2',
              [taskId, nodeId],
            )
            if (r?.state === 'REVOKED') {
              observed.push(nowMs() - replied)
              if (r.finished_at !== null) recorded.push(Number(r.finished_at) - replied)
              break
            }
            if (nowMs() - replied > 30_000)
              throw new Error(
                `task ${taskId}: node not REVOKED 30 s after the revoke reply (state ${r?.state})`,
              )
            await sleep(1)
          }
          roundTrip.push(replied - sent)
        }
        emit({
          db: kind,
          setup,
          measure: 'revoke reply → sleep_timer node seen REVOKED',
          tries: ids.length,
          summary: summarize(observed),
        })
        emit({
          db: kind,
          setup,
          measure: 'revoke reply → node finish time recorded',
          tries: recorded.length,
          summary: summarize(recorded),
          note: 'negative: before the reply',
        })
        emit({
          db: kind,
          setup,
          measure: 'revoke request → reply',
          tries: ids.length,
          summary: summarize(roundTrip),
        })
      }

      // 2. revoke → AbortSignal inside a component holding a worker
      {
        const tree = linearTree(1, 'bench_hold', { ms: { hook: false, value: 600_000 } })
        const nodeId = firstActivity(tree as never)
        const latencies: number[] = []
        const batch = 25 // below the worker's concurrency (32), so every node runs at once
        for (let done = 0; done < cfg.holdTries; done += batch) {
          const ids = await createStarted(Math.min(batch, cfg.holdTries - done), tree)
          await waitRunning(reader, ids, nodeId)
          await sleep(20) // the node row turns RUNNING in the start transaction; execute() follows its commit
          for (const taskId of ids) {
            await legacy.operate(taskId, 'revoke')
            const replied = nowMs()
            let at: number | undefined
            while (at === undefined) {
              if (existsSync(abortLog)) {
                const line = readFileSync(abortLog, 'utf8')
                  .split('\n')
                  .find((l) => l.startsWith(`${taskId} `))
                if (line) at = Number(line.split(' ')[2])
              }
              if (at === undefined) {
                if (nowMs() - replied > 30_000)
                  throw new Error(`task ${taskId}: the component was not aborted 30 s after the revoke reply`)
                await sleep(1)
              }
            }
            latencies.push(at - replied)
          }
        }
        emit({
          db: kind,
          setup,
          measure: 'revoke reply → component AbortSignal',
          tries: latencies.length,
          summary: summarize(latencies),
          note: 'negative: before the reply',
        })
      }

      // 3. pause → running_nodes = 0, a 100-wide fork of 20 ms nodes
      {
        const tree = parallelTree(100, 'bench_hold', { ms: { hook: false, value: 20 } })
        const latencies: number[] = []
        const runningAtPause: number[] = []
        let skipped = 0
        while (latencies.length < cfg.pauseTries && skipped < cfg.pauseTries) {
          const [taskId] = await createStarted(1, tree)
          await sleep(20 + Math.random() * 60)
          try {
            await legacy.operate(taskId!, 'pause')
          } catch {
            skipped++ // finished before the pause: try again
            continue
          }
          const replied = nowMs()
          let first = true
          for (;;) {
            const s = await legacy.status(taskId!)
            const running =
              s.running_nodes ?? Object.values(s.children ?? {}).filter((c) => c.state === 'RUNNING').length
            if (first) runningAtPause.push(running)
            first = false
            if (running === 0) {
              latencies.push(nowMs() - replied)
              break
            }
            if (nowMs() - replied > 30_000)
              throw new Error(`task ${taskId}: ${running} nodes still RUNNING 30 s after the pause`)
            await sleep(2)
          }
          await legacy.operate(taskId!, 'revoke')
        }
        const avg = runningAtPause.reduce((a, b) => a + b, 0) / Math.max(1, runningAtPause.length)
        emit({
          db: kind,
          setup,
          measure: 'pause reply → running_nodes = 0 (fork of 100 × 20 ms nodes)',
          tries: latencies.length,
          summary: summarize(latencies),
          note: `${avg.toFixed(1)} running at the first poll on average`,
        })
      }
    } finally {
      await reader.close()
      for (const w of workers) await w.stop()
      await api.child.stop()
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
    await db.drop()
  }
  return rows
}
