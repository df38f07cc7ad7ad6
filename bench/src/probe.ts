/**
 * Section 4, where the time goes: in-process, on a fresh database, with the API's use cases and
 * the engine imported directly and the Db wrapped to count statements.
 * - the statements one legacy operate_task call runs (authenticate + operateTask), and the same
 *   call through tRPC (Fastify inject);
 * - the statements and transactions per node of the engine (one task of 100 no-op nodes at a time);
 * - the sequential cost of each step next to the raw driver's compare-and-set, and the HTTP stack
 *   without sockets (Fastify inject): floor route, legacy route, tRPC route;
 * - PostgreSQL: a prototype of pause/resume in two round trips, sequential and with 16 concurrent
 *   callers beside the floor and the current code.
 */
import { linearTree, parallelTree } from '@stdops/core/testing'
import { createDb, type Executor, type MigratableDb, openSqlite, type Sql, sql } from '@stdops/db'
import Fastify from 'fastify'
import pg from 'pg'
import { hashSecret, sameDigest } from '../../apps/api/src/crypto'
import { createLogger } from '../../apps/api/src/deps'
import { createLifecycle } from '../../apps/api/src/ops/lifecycle'
import { createMetrics } from '../../apps/api/src/ops/metrics'
import { createServer } from '../../apps/api/src/server'
import { authenticate, credentialsFrom } from '../../apps/api/src/services/auth'
import type { Deps } from '../../apps/api/src/services/deps'
import { RateLimiter } from '../../apps/api/src/services/rate-limit'
import { createStreamLimits } from '../../apps/api/src/services/streams'
import { createTask, operateTask } from '../../apps/api/src/services/tasks'
import {
  createEngine,
  createOutboundClient,
  createSecretBox,
  loadComponentModules,
} from '../../packages/engine/src/index'
import { freshDatabase, type Kind } from './lib/db'
import { COMPONENTS, SECRET_KEY } from './lib/proc'
import { sleep, summarize } from './lib/stats'
import { bootstrap } from './lib/stdops'

export interface StepTiming {
  step: string
  /** Sequential: mean, p50, p99 ms per call, calls/s, CPU ms per call of this process. Concurrent: perSec only. */
  mean?: number
  p50?: number
  p99?: number
  perSec: number
  cpuMs?: number
}

export interface EngineCount {
  shape: 'linear' | 'fork'
  ms: number
  nodesPerSec: number
  statements: number
  transactions: number
  byKind: Array<[string, number]>
}

export interface ProbeResult {
  db: Kind
  operate: { pause: string[]; resume: string[]; trpc: string[] }
  engine: EngineCount[]
  timings: StepTiming[]
}

/** Every statement through the Db, by text; BEGIN/COMMIT for each transaction. */
class Counter {
  on = false
  texts: string[] = []
  rec(t: string) {
    if (this.on) this.texts.push(t)
  }
  take(): string[] {
    const t = this.texts
    this.texts = []
    return t
  }
}

const short = (q: Sql) => q.compile('postgresql').text.replace(/\s+/g, ' ').trim().slice(0, 100)

function counted(db: MigratableDb, c: Counter): MigratableDb {
  const wrap = (e: Executor): Executor => ({
    provider: e.provider,
    query: (q) => {
      c.rec(short(q))
      return e.query(q)
    },
    execute: (q) => {
      c.rec(short(q))
      return e.execute(q)
    },
    afterCommit: (fn) => e.afterCommit(fn),
    publish: (channel, key) => e.publish(channel, key),
  })
  const base = wrap(db)
  return {
    ...db,
    query: base.query,
    execute: base.execute,
    tx: async (fn) => {
      c.rec('BEGIN')
      try {
        return await db.tx((tx) => fn(wrap(tx)))
      } finally {
        c.rec('COMMIT')
      }
    },
    notify: (ch, p) => {
      c.rec(`NOTIFY ${ch}`)
      return db.notify(ch, p)
    },
  }
}

interface Step {
  step: string
  n: number
  fn: (i: number) => Promise<unknown>
  /** Operations per call (a batch): the timing is divided by it. */
  per: number
}

/**
 * Runs the steps interleaved (call i of every step, then call i + 1 …), so that the load of this
 * shared machine falls on all of them alike; a warm-up of 100 calls each first.
 */
async function runInterleaved(steps: Step[]): Promise<StepTiming[]> {
  for (let i = 0; i < 100; i++) for (const s of steps) if (i < s.n) await s.fn(i)
  const lat = steps.map(() => [] as number[])
  const cpu = steps.map(() => 0)
  const wall = steps.map(() => 0)
  const max = Math.max(...steps.map((s) => s.n))
  for (let i = 0; i < max; i++) {
    for (const [k, s] of steps.entries()) {
      if (i >= s.n) continue
      const c0 = process.cpuUsage()
      const t0 = performance.now()
      await s.fn(100 + i)
      const d = performance.now() - t0
      const c = process.cpuUsage(c0)
      lat[k]!.push(d / s.per)
      wall[k]! += d
      cpu[k]! += (c.user + c.system) / 1000
    }
  }
  return steps.map((s, k) => {
    const sum = summarize(lat[k]!)
    const ops = s.n * s.per
    return {
      step: s.step,
      mean: wall[k]! / ops,
      p50: sum.p50,
      p99: sum.p99,
      perSec: (ops * 1000) / wall[k]!,
      cpuMs: cpu[k]! / ops,
    }
  })
}

export async function probe(
  kind: Kind,
  opts: { iterations: number; concurrentSeconds: number },
): Promise<ProbeResult> {
  const N = opts.iterations
  const fresh = await freshDatabase(kind, 'probe')
  const counter = new Counter()
  const raw = createDb(fresh.url)
  const db = counted(raw, counter)
  const result: ProbeResult = {
    db: kind,
    operate: { pause: [], resume: [], trpc: [] },
    engine: [],
    timings: [],
  }
  const closers: Array<() => Promise<void>> = []
  try {
    const id = await bootstrap(fresh.url)
    const components = await loadComponentModules([COMPONENTS])
    const outbound = createOutboundClient()
    closers.push(() => outbound.close())
    const engine = createEngine({ db, components, concurrency: 32, outbound })
    const deps: Deps = {
      db,
      engine,
      outbound,
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
    const plain: Deps = { ...deps, db: raw }
    const creds = credentialsFrom(JSON.parse(id.header) as Record<string, unknown>)
    const caller = await authenticate(deps, creds, '127.0.0.1')
    const ref = { bk_biz_id: id.bkBizId, scope: 'cmdb_biz' as const }
    const project = await raw.prisma.project.findUniqueOrThrow({ where: { bkBizId: id.bkBizId } })
    const now = BigInt(Date.now())
    const tpl = await raw.prisma.template.create({
      data: {
        projectId: project.id,
        name: 'probe',
        description: '',
        pipelineTree: JSON.stringify(linearTree(1, 'bench_noop')),
        creator: 'bench',
        editor: 'bench',
        createdAt: now,
        editedAt: now,
      },
    })
    const newTask = async (tree?: unknown, start = true) =>
      (
        await createTask(
          plain,
          caller,
          ref,
          {
            template_id: tpl.id,
            name: 'probe',
            ...(tree ? { pipeline_tree: tree as Record<string, unknown> } : {}),
          },
          {
            start,
            source: 'api',
          },
        )
      ).task_id
    const headers = { 'content-type': 'application/json', 'x-bkapi-authorization': id.header }
    const server = createServer(deps)
    await server.app.ready()
    closers.push(() => server.app.close())
    const plainServer = createServer(plain)
    await plainServer.app.ready()
    closers.push(() => plainServer.app.close())

    // ---- statements per operate call ------------------------------------------------------------
    {
      const taskId = await newTask()
      await sleep(5) // the start's coalesced NOTIFY
      const legacyOperate = async (action: string) =>
        operateTask(deps, await authenticate(deps, creds, '127.0.0.1'), ref, taskId, action, 'api')
      counter.on = true
      await legacyOperate('pause')
      await sleep(5)
      result.operate.pause = counter.take()
      await legacyOperate('resume')
      await sleep(5) // the coalesced NOTIFY after a resume
      result.operate.resume = counter.take()
      await server.app.inject({
        method: 'POST',
        url: '/trpc/task.operate',
        headers,
        payload: JSON.stringify({ bk_biz_id: id.bkBizId, task_id: taskId, action: 'pause' }),
      })
      await sleep(5)
      result.operate.trpc = counter.take()
      counter.on = false
    }

    // ---- sequential cost of each step -------------------------------------------------------------
    const tasks = await Promise.all(Array.from({ length: 8 }, () => newTask()))
    let rawCas: (id: number, v: number, state: string) => Promise<number>
    if (kind === 'sqlite') {
      const conn = openSqlite(fresh.url)
      const st = conn.prepare(
        'UPDATE tasks SET state = ?, version = version + 1 WHERE id = ? AND version = ?',
      )
      rawCas = async (i, v, s) => st.run(s, i, v).changes
      closers.push(async () => {
        conn.close()
      })
    } else {
      const pool = new pg.Pool({ connectionString: fresh.url, max: 10 })
      // An idle connection cut by the server (a restart, another session's cleanup) is replaced, not fatal.
      pool.on('error', () => undefined)
      rawCas = async (i, v, s) =>
        (
          await pool.query({
            name: 'cas',
            text: 'UPDATE tasks SET state = $1, version = version + 1 WHERE id = $2 AND version = $3',
            values: [s, i, v],
          })
        ).rowCount ?? 0
      closers.push(() => pool.end())
    }
    const versionOf = async (t: number) =>
      Number(
        (await raw.query<{ version: number }>(sql`SELECT version FROM tasks WHERE id = ${t}`))[0]!.version,
      )
    const stateOf = async (t: number) =>
      (await raw.query<{ state: string }>(sql`SELECT state FROM tasks WHERE id = ${t}`))[0]!.state
    const T = result.timings
    const steps: Step[] = []
    const add = (step: string, n: number, fn: (i: number) => Promise<unknown>, per = 1) =>
      steps.push({ step, n, fn, per })
    {
      const t = tasks[0]!
      let v = await versionOf(t)
      add('raw driver compare-and-set (the floor)', N, async (i) => {
        if ((await rawCas(t, v++, i % 2 ? 'RUNNING' : 'SUSPENDED')) !== 1) throw new Error('floor CAS missed')
      })
      const t4 = tasks[4]!
      let v4 = await versionOf(t4)
      add('the same CAS through Db.execute (sql`` + executor)', N, (i) =>
        raw.execute(
          sql`UPDATE tasks SET state = ${i % 2 ? 'RUNNING' : 'SUSPENDED'}, version = version + 1 WHERE id = ${t4} AND version = ${v4++}`,
        ),
      )
      const t5 = tasks[5]!
      let v5 = await versionOf(t5)
      add('the same CAS inside Db.tx (BEGIN … COMMIT)', N, (i) =>
        raw.tx((tx) =>
          tx.execute(
            sql`UPDATE tasks SET state = ${i % 2 ? 'RUNNING' : 'SUSPENDED'}, version = version + 1 WHERE id = ${t5} AND version = ${v5++}`,
          ),
        ),
      )
    }
    add('authenticate (1 SELECT, 2 HMACs)', N, () => authenticate(plain, creds, '127.0.0.1'))
    {
      const t = tasks[1]!
      let pause = (await stateOf(t)) === 'RUNNING'
      add('authenticate + operateTask (pause/resume)', N, async () => {
        const action = pause ? 'pause' : 'resume'
        pause = !pause
        return operateTask(plain, await authenticate(plain, creds, '127.0.0.1'), ref, t, action, 'api')
      })
    }
    {
      const floorApp = Fastify({ logger: false })
      closers.push(() => floorApp.close())
      const t = tasks[2]!
      let fv = await versionOf(t)
      floorApp.post('/floor/operate', async (req) => {
        const b = req.body as { action: string; version: number }
        return (await rawCas(t, b.version, b.action === 'pause' ? 'SUSPENDED' : 'RUNNING')) === 1
          ? { code: 0 }
          : { code: 1 }
      })
      await floorApp.ready()
      add('inject: floor route (Fastify + raw CAS)', N, async (i) => {
        const r = await floorApp.inject({
          method: 'POST',
          url: '/floor/operate',
          headers: { 'content-type': 'application/json' },
          payload: JSON.stringify({ action: i % 2 ? 'resume' : 'pause', version: fv }),
        })
        if (r.json<{ code: number }>().code !== 0) throw new Error(`floor: ${r.body}`)
        fv++
      })
      const t3 = tasks[3]!
      let pause = (await stateOf(t3)) === 'RUNNING'
      const flip = () => {
        const a = pause ? 'pause' : 'resume'
        pause = !pause
        return a
      }
      add('inject: legacy POST /v2/sops/operate_task/', N, async () => {
        const r = await plainServer.app.inject({
          method: 'POST',
          url: '/v2/sops/operate_task/',
          headers,
          payload: JSON.stringify({ bk_biz_id: id.bkBizId, task_id: t3, action: flip() }),
        })
        if (r.json<{ code: number }>().code !== 0) throw new Error(`legacy: ${r.body}`)
      })
      add('inject: tRPC POST /trpc/task.operate', N, async () => {
        const r = await plainServer.app.inject({
          method: 'POST',
          url: '/trpc/task.operate',
          headers,
          payload: JSON.stringify({ bk_biz_id: id.bkBizId, task_id: t3, action: flip() }),
        })
        if (r.statusCode !== 200) throw new Error(`trpc: ${r.body}`)
      })
    }

    // ---- SQLite: what the operate's transaction costs, and group commit ---------------------------
    // The statements operateTask's transaction runs (read, compare-and-set, event, record), with the
    // raw driver: one transaction per operation (STDOPS_SQLITE_GROUP_COMMIT=0), and 16 operations per
    // COMMIT, a SAVEPOINT each so that one can still roll back alone (what group commit does with
    // the transactions queued together). WAL with synchronous=NORMAL: a COMMIT appends every page
    // it changed to the WAL.
    if (kind === 'sqlite') {
      const c = openSqlite(fresh.url)
      closers.push(async () => {
        c.close()
      })
      const own = await Promise.all(Array.from({ length: 16 }, () => newTask()))
      const sel = c.prepare('SELECT id, state, version FROM tasks WHERE id = ?')
      const upd = c.prepare(
        'UPDATE tasks SET state = ?, version = version + 1, event_seq = event_seq + 1 WHERE id = ? AND version = ? RETURNING event_seq',
      )
      const ev = c.prepare(
        `INSERT INTO task_events (task_id, seq, type, node_id, state, data, created_at) VALUES (?, ?, 'task_state', NULL, ?, NULL, ?)`,
      )
      const rec = c.prepare(
        `INSERT INTO operate_records (task_id, project_id, node_id, operator, operate_type, operate_source, created_at) VALUES (?, ?, '', 'bench', ?, 'api', ?)`,
      )
      const begin = c.prepare('BEGIN IMMEDIATE')
      const commit = c.prepare('COMMIT')
      const savepoint = c.prepare('SAVEPOINT op')
      const release = c.prepare('RELEASE op')
      const op = (taskId: number) => {
        const row = sel.get(taskId) as { state: string; version: number }
        const next = row.state === 'RUNNING' ? 'SUSPENDED' : 'RUNNING'
        const [r] = upd.all(next, taskId, row.version) as Array<{ event_seq: number }>
        const at = Date.now()
        ev.run(taskId, r!.event_seq, next, at)
        rec.run(taskId, project.id, next === 'SUSPENDED' ? 'pause' : 'resume', at)
      }
      add("prototype: operate's statements, raw driver, 1 transaction each", N, async (i) => {
        begin.run()
        op(own[i % 16]!)
        commit.run()
      })
      add(
        'prototype: the same, 16 per COMMIT (SAVEPOINT each)',
        Math.ceil(N / 16),
        async (i) => {
          begin.run()
          for (let k = 0; k < 16; k++) {
            savepoint.run()
            op(own[(i + k) % 16]!)
            release.run()
          }
          commit.run()
        },
        16,
      )
    }

    // ---- PostgreSQL: the same pause/resume in two round trips ---------------------------------------
    let proto: ((taskId: number) => Promise<void>) | null = null
    if (kind === 'postgresql') {
      const pool = new pg.Pool({ connectionString: fresh.url, max: 10 })
      pool.on('error', () => undefined)
      closers.push(() => pool.end())
      // Authentication and scope in one SELECT (the app, the token and its user, the project, the
      // caller's role in it, the task) …
      const AUTH_SCOPE = `SELECT a.secret_hash, a.trusted, tk.token_hash, tk.user_id, u.username, tk.expires_at, tk.revoked_at,
          p.id AS project_id, m.role, t.id AS task_id, t.state, t.version
        FROM apps a
        LEFT JOIN tokens tk ON tk.token_hash = $2
        LEFT JOIN users u ON u.id = tk.user_id
        LEFT JOIN projects p ON p.bk_biz_id = $3
        LEFT JOIN memberships m ON m.project_id = p.id AND m.user_id = tk.user_id
        LEFT JOIN tasks t ON t.id = $4 AND t.project_id = p.id
        WHERE a.code = $1`
      // … then the compare-and-set, its task event and its operate record in one autocommit
      // statement (data-modifying CTEs see the UPDATE's RETURNING; all or nothing).
      const CAS_EVENT_RECORD = `WITH u AS (
          UPDATE tasks SET state = $1, version = version + 1, event_seq = event_seq + 1
          WHERE id = $2 AND version = $3 RETURNING id, project_id, event_seq),
        e AS (INSERT INTO task_events (task_id, seq, type, node_id, state, data, created_at)
              SELECT id, event_seq, 'task_state', NULL, $1, NULL, $4 FROM u),
        r AS (INSERT INTO operate_records (task_id, project_id, node_id, operator, operate_type, operate_source, created_at)
              SELECT id, project_id, '', $5, $6, 'api', $4 FROM u)
        SELECT event_seq FROM u`
      proto = async (taskId: number) => {
        const tokenHash = hashSecret(SECRET_KEY, creds.token!)
        const appHash = hashSecret(SECRET_KEY, creds.appSecret!)
        const {
          rows: [row],
        } = await pool.query({
          name: 'proto_auth_scope',
          text: AUTH_SCOPE,
          values: [creds.appCode, tokenHash, id.bkBizId, taskId],
        })
        if (
          !row ||
          !sameDigest(appHash, row.secret_hash) ||
          row.revoked_at !== null ||
          row.role === null ||
          row.task_id === null
        ) {
          throw new Error('prototype: refused')
        }
        const action = row.state === 'RUNNING' ? 'pause' : 'resume'
        const r = await pool.query({
          name: 'proto_cas',
          text: CAS_EVENT_RECORD,
          values: [
            action === 'pause' ? 'SUSPENDED' : 'RUNNING',
            taskId,
            row.version,
            Date.now(),
            row.username,
            action,
          ],
        })
        if (r.rowCount !== 1) throw new Error('prototype: lost the race')
      }
      const p = proto
      add('prototype: operate in 2 round trips (1 SELECT, 1 CTE)', N, () => p(tasks[6]!))
    }
    T.push(...(await runInterleaved(steps)))

    if (proto) {
      // 16 concurrent callers, each on its own task, without HTTP: three rounds of the three
      // variants in turn (the load of this machine moves), the median round of each reported.
      const p = proto
      const versions = new Map<number, number>()
      const variants: Array<{
        step: string
        fn: (taskId: number, i: number) => Promise<unknown>
        own: number[]
        rates: number[]
      }> = [
        {
          step: '16 concurrent callers: raw CAS (the floor)',
          fn: async (tid, i) => {
            const v = versions.get(tid) ?? (await versionOf(tid))
            await rawCas(tid, v, i % 2 ? 'RUNNING' : 'SUSPENDED')
            versions.set(tid, v + 1)
          },
          own: [],
          rates: [],
        },
        {
          step: '16 concurrent callers: authenticate + operateTask',
          fn: async (tid, i) =>
            operateTask(
              plain,
              await authenticate(plain, creds, '127.0.0.1'),
              ref,
              tid,
              i % 2 ? 'resume' : 'pause',
              'api',
            ),
          own: [],
          rates: [],
        },
        {
          step: '16 concurrent callers: the 2-round-trip prototype',
          fn: (tid) => p(tid),
          own: [],
          rates: [],
        },
      ]
      for (const v of variants) v.own = await Promise.all(Array.from({ length: 16 }, () => newTask()))
      const seconds = opts.concurrentSeconds / 3
      for (let round = 0; round < 3; round++) {
        for (const v of variants) {
          // Every caller keeps its own alternation: call numbers continue across rounds.
          const counts = new Map<number, number>()
          let n = 0
          const end = performance.now() + seconds * 1000
          await Promise.all(
            v.own.map(async (tid) => {
              let i = 0
              while (performance.now() < end) {
                await v.fn(tid, i++)
                n++
              }
              counts.set(tid, i)
            }),
          )
          // A caller that stopped after a pause resumes its task, so the next round starts again
          // from RUNNING with a pause.
          for (const tid of v.own) {
            const made = counts.get(tid)!
            if (made % 2 === 1) await v.fn(tid, made)
          }
          v.rates.push(n / seconds)
        }
      }
      for (const v of variants)
        T.push({ step: `${v.step} (median of 3 rounds)`, perSec: [...v.rates].sort((a, b) => a - b)[1]! })
    }

    // ---- statements per engine node ------------------------------------------------------------------
    // The tasks above stay RUNNING with their first node's job pending: drop those jobs, so that the
    // worker runs only the measured task.
    await raw.execute(sql`DELETE FROM jobs`)
    await engine.startWorker()
    closers.push(() => engine.stop({ drainMs: 1000 }))
    for (const [shape, tree] of [
      ['linear', linearTree(100, 'bench_noop')],
      ['fork', parallelTree(100, 'bench_noop')],
    ] as const) {
      const t = await newTask(tree, false)
      counter.take()
      counter.on = true
      const t0 = performance.now()
      await operateTask(deps, caller, ref, t, 'start', 'api')
      for (;;) {
        if ((await stateOf(t)) === 'FINISHED') break
        if (performance.now() - t0 > 120_000) throw new Error(`probe: ${shape} task not FINISHED after 120 s`)
        await sleep(2)
      }
      const elapsed = performance.now() - t0
      await sleep(5)
      counter.on = false
      const stmts = counter.take()
      const byKind = new Map<string, number>()
      for (const s of stmts) {
        const k = s.split(' ').slice(0, 3).join(' ')
        byKind.set(k, (byKind.get(k) ?? 0) + 1)
      }
      result.engine.push({
        shape,
        ms: elapsed,
        nodesPerSec: 100_000 / elapsed,
        statements: stmts.length,
        transactions: stmts.filter((s) => s === 'BEGIN').length,
        byKind: [...byKind].sort((a, b) => b[1] - a[1]),
      })
    }
  } finally {
    for (const c of closers.reverse()) await c().catch(() => undefined)
    await raw.close()
    await fresh.drop()
  }
  return result
}
