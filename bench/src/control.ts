/**
 * Section 1, the control path: operate_task pause/resume over HTTP (autocannon) and through the
 * tRPC client, against the floor (bare Fastify + one compare-and-set with the raw driver), at
 * 1, 16 and 64 connections, one task per connection.
 */
import { linearTree } from '@stdops/core/testing'
import type { Config } from './config'
import { type FreshDb, freshDatabase, type Kind, openReader } from './lib/db'
import { cannonFloor, cannonLegacy, cannonTrpcHttp, type LoadResult, mergeLoads, trpcLoop } from './lib/load'
import { startFloor, startStdopsApi } from './lib/proc'
import { fmt, ms, ratio, ratioText, sleep, table } from './lib/stats'
import { bootstrap, LegacyClient, mapLimit } from './lib/stdops'

export interface ControlRow {
  db: Kind
  connections: number
  legacy: LoadResult
  /** Through the tRPC client (@trpc/client + fetch in the bench process). */
  trpc: LoadResult
  /** tRPC's HTTP route driven by autocannon: the server side of the same call. */
  trpcHttp: LoadResult
  floor: LoadResult
  /** legacy req/s ÷ floor req/s */
  legacyVsFloor: number | null
  trpcVsFloor: number | null
}

export const CONTROL_HEAD = ['db', 'conns', 'path', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'vs floor']

export function controlLines(r: ControlRow): string[][] {
  const line = (path: string, x: LoadResult, vs: number | null) => [
    r.db,
    String(r.connections),
    path,
    fmt(x.rps),
    ms(x.p50),
    ms(x.p99),
    String(x.errors + x.transportErrors),
    vs === null ? '' : ratioText(vs),
  ]
  return [
    line('floor', r.floor, null),
    line('legacy HTTP', r.legacy, r.legacyVsFloor),
    line('tRPC client', r.trpc, r.trpcVsFloor),
    line('tRPC HTTP (autocannon)', r.trpcHttp, ratio(r.trpcHttp.rps, r.floor.rps)),
  ]
}

export async function runControl(cfg: Config, kind: Kind, log: (s: string) => void): Promise<ControlRow[]> {
  const db: FreshDb = await freshDatabase(kind, 'ctl')
  const rows: ControlRow[] = []
  try {
    const id = await bootstrap(db.url)
    // API only: a started task stays RUNNING (nobody claims its node job), so pause and resume
    // always apply, and no engine work competes with the control path.
    const api = await startStdopsApi(`stdops-api(${kind})`, {
      dbUrl: db.url,
      worker: false,
      ...(cfg.profile
        ? { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${cfg.profileDir}/control-${kind}-api`] }
        : {}),
    })
    const floor = await startFloor(db.url)
    const reader = await openReader(db)
    try {
      const legacy = new LegacyClient(api.base, id)
      const templateId = await legacy.createTemplate('bench control', linearTree(1, 'bench_noop'))
      let seq = 0
      const tasks = (n: number) =>
        mapLimit(Array.from({ length: n }), 8, () =>
          legacy.createTask(templateId, `control ${++seq}`, undefined, true),
        )
      const versions = async (ids: number[]) => {
        const got = await reader.query<{ id: number; version: number }>(
          `SELECT id, version FROM tasks WHERE id IN (${ids.map((_, i) => `$${i + 1}`).join(', ')})`,
          ids,
        )
        const byId = new Map(got.map((r) => [Number(r.id), Number(r.version)]))
        return ids.map((i) => ({ id: i, version: byId.get(i) ?? 0 }))
      }

      // Warm-up (JIT, connection pools, statement caches): not reported.
      const w = await tasks(16)
      await cannonFloor(floor.base, await versions(await tasks(16)), cfg.warmupSeconds)
      await cannonLegacy(api.base, id, w, cfg.warmupSeconds)
      await trpcLoop(api.base, id, await tasks(16), cfg.warmupSeconds)
      await cannonTrpcHttp(api.base, id, await tasks(16), cfg.warmupSeconds)

      for (const c of cfg.connections) {
        // Each path runs twice for half the time, in the order A B C D D C B A, so that a drift in
        // the machine's load falls on all of them alike; fresh tasks for every run (each starts
        // RUNNING, so the first action is a pause).
        const half = cfg.loadSeconds / 2
        const runs: Record<'f' | 'l' | 't' | 'th', LoadResult[]> = { f: [], l: [], t: [], th: [] }
        const once = async (k: 'f' | 'l' | 't' | 'th') => {
          if (k === 'f') runs.f.push(await cannonFloor(floor.base, await versions(await tasks(c)), half))
          else if (k === 'l') runs.l.push(await cannonLegacy(api.base, id, await tasks(c), half))
          else if (k === 't') runs.t.push(await trpcLoop(api.base, id, await tasks(c), half))
          else runs.th.push(await cannonTrpcHttp(api.base, id, await tasks(c), half))
        }
        for (const k of ['f', 'l', 't', 'th', 'th', 't', 'l', 'f'] as const) await once(k)
        const [f, l, t, th] = [
          mergeLoads(runs.f),
          mergeLoads(runs.l),
          mergeLoads(runs.t),
          mergeLoads(runs.th),
        ]
        const row: ControlRow = {
          db: kind,
          connections: c,
          legacy: l,
          trpc: t,
          trpcHttp: th,
          floor: f,
          legacyVsFloor: ratio(l.rps, f.rps),
          trpcVsFloor: ratio(t.rps, f.rps),
        }
        rows.push(row)
        for (const x of [f, l, t, th]) if (x.firstError) log(`  first error: ${x.firstError}`)
        log(table(CONTROL_HEAD, controlLines(row)).split('\n').slice(2).join('\n'))
      }
      // The server may still be answering requests of connections autocannon has closed: let it
      // finish before SIGTERM (see the report: a use case that outlives its connection can find
      // the pool closed at shutdown).
      await sleep(1000)
    } finally {
      await reader.close()
      await floor.child.stop()
      await api.child.stop()
    }
  } finally {
    await db.drop()
  }
  return rows
}
