/**
 * SQLite group commit, in-process: 16 concurrent callers, each pausing and resuming its own task
 * (authenticate + operateTask, the legacy route's use cases without HTTP), with group commit on
 * and off, on one database file. Rounds alternate between the two (the machine's load moves);
 * the median round of each is reported, beside the raw driver's compare-and-set (the floor).
 *
 *   pnpm --filter @stdops/bench exec tsx src/group-commit.ts [seconds per round] [rounds]
 */

import { linearTree } from '@stdops/core/testing'
import { createDb, type MigratableDb, openSqlite, sql } from '@stdops/db'
import { createLogger } from '../../apps/api/src/deps'
import { createLifecycle } from '../../apps/api/src/ops/lifecycle'
import { createMetrics } from '../../apps/api/src/ops/metrics'
import { authenticate, credentialsFrom } from '../../apps/api/src/services/auth'
import type { Deps } from '../../apps/api/src/services/deps'
import { RateLimiter } from '../../apps/api/src/services/rate-limit'
import { createStreamLimits } from '../../apps/api/src/services/streams'
import { createTask, operateTask } from '../../apps/api/src/services/tasks'
import { createEngine, createSecretBox, loadComponentModules } from '../../packages/engine/src/index'
import { freshDatabase } from './lib/db'
import { COMPONENTS, SECRET_KEY } from './lib/proc'
import { fmt, table } from './lib/stats'
import { bootstrap } from './lib/stdops'

const seconds = Number(process.argv[2] ?? 1)
const rounds = Number(process.argv[3] ?? 5)
const CALLERS = 16

function depsFor(db: MigratableDb, components: Awaited<ReturnType<typeof loadComponentModules>>): Deps {
  return {
    db,
    engine: createEngine({ db, components, concurrency: 1 }),
    outbound: undefined as never,
    logger: createLogger({ LOG_LEVEL: 'silent' }),
    secretKey: SECRET_KEY,
    secrets: createSecretBox(SECRET_KEY),
    publicUrl: 'http://localhost',
    utcOffsetMinutes: () => 0,
    authFailures: new RateLimiter(),
    streams: createStreamLimits({ maxMs: 900_000, perUser: 20 }),
    now: Date.now,
    timeZone: 'UTC',
    lifecycle: createLifecycle(),
    metrics: createMetrics({ db, build: { version: 'bench' } }),
  }
}

async function main() {
  const fresh = await freshDatabase('sqlite', 'gc')
  const id = await bootstrap(fresh.url)
  const on = createDb(fresh.url)
  const off = createDb(fresh.url, { groupCommit: false })
  const floorConn = openSqlite(fresh.url)
  try {
    const creds = credentialsFrom(JSON.parse(id.header) as Record<string, unknown>)
    const ref = { bk_biz_id: id.bkBizId, scope: 'cmdb_biz' as const }
    const project = await on.prisma.project.findUniqueOrThrow({ where: { bkBizId: id.bkBizId } })
    const now = BigInt(Date.now())
    const tpl = await on.prisma.template.create({
      data: {
        projectId: project.id,
        name: 'gc',
        description: '',
        pipelineTree: JSON.stringify(linearTree(1, 'bench_noop')),
        creator: 'bench',
        editor: 'bench',
        createdAt: now,
        editedAt: now,
      },
    })
    const components = await loadComponentModules([COMPONENTS])
    const variants = [
      { name: 'group commit on', deps: depsFor(on, components), own: [] as number[], rates: [] as number[] },
      {
        name: 'group commit off',
        deps: depsFor(off, components),
        own: [] as number[],
        rates: [] as number[],
      },
    ]
    for (const v of variants) {
      const caller = await authenticate(v.deps, creds, '127.0.0.1')
      // Started, its first node's job left pending (no worker runs): pause and resume always apply.
      for (let i = 0; i < CALLERS; i++)
        v.own.push(
          (
            await createTask(
              v.deps,
              caller,
              ref,
              { template_id: tpl.id, name: 'gc' },
              { start: true, source: 'api' },
            )
          ).task_id,
        )
    }
    const floorTasks = variants[0]!.own
    const cas = floorConn.prepare(
      'UPDATE tasks SET state = ?, version = version + 1 WHERE id = ? AND version = ?',
    )
    const floorRates: number[] = []

    const round = async (fn: (tid: number, i: number) => Promise<unknown>, own: number[]) => {
      let n = 0
      const end = performance.now() + seconds * 1000
      const counts = new Map<number, number>()
      await Promise.all(
        own.map(async (tid) => {
          let i = 0
          while (performance.now() < end) {
            await fn(tid, i++)
            n++
          }
          counts.set(tid, i)
        }),
      )
      // A caller that stopped after a pause resumes, so that the next round starts with a pause.
      for (const tid of own) if ((counts.get(tid)! & 1) === 1) await fn(tid, counts.get(tid)!)
      return n / seconds
    }
    const warm = async () => {
      for (const v of variants) {
        await round(
          async (tid, i) =>
            operateTask(
              v.deps,
              await authenticate(v.deps, creds, '127.0.0.1'),
              ref,
              tid,
              i % 2 ? 'resume' : 'pause',
              'api',
            ),
          v.own,
        )
      }
    }
    await warm()
    for (let r = 0; r < rounds; r++) {
      // A B C, then C B A: the order alternates from round to round.
      const order = r % 2 === 0 ? [0, 1, 2] : [2, 1, 0]
      for (const k of order) {
        if (k === 2) {
          const versions = new Map<number, number>()
          for (const t of floorTasks)
            versions.set(
              t,
              Number(
                (await on.query<{ version: number }>(sql`SELECT version FROM tasks WHERE id = ${t}`))[0]!
                  .version,
              ),
            )
          floorRates.push(
            await round(async (tid, i) => {
              const v = versions.get(tid)!
              cas.run(i % 2 ? 'RUNNING' : 'SUSPENDED', tid, v)
              versions.set(tid, v + 1)
            }, floorTasks),
          )
          continue
        }
        const v = variants[k]!
        v.rates.push(
          await round(
            async (tid, i) =>
              operateTask(
                v.deps,
                await authenticate(v.deps, creds, '127.0.0.1'),
                ref,
                tid,
                i % 2 ? 'resume' : 'pause',
                'api',
              ),
            v.own,
          ),
        )
      }
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
    const f = median(floorRates)
    const rows = [
      ['raw CAS (the floor)', fmt(f), '', floorRates.map((x) => fmt(x)).join(' ')],
      ...variants.map((v) => [
        `authenticate + operateTask, ${v.name}`,
        fmt(median(v.rates)),
        `${(median(v.rates) / f).toFixed(2)}×`,
        v.rates.map((x) => fmt(x)).join(' '),
      ]),
    ]
    process.stdout.write(
      `${CALLERS} concurrent callers, ${rounds} rounds of ${seconds} s, median round\n${table(['path', 'calls/s', 'vs floor', 'rounds'], rows)}\n`,
    )
  } finally {
    floorConn.close()
    await on.close()
    await off.close()
    await fresh.drop()
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
    process.exit(1)
  },
)
