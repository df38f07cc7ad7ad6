/** Targets and docs/benchmarks.md. */
import { CONTROL_HEAD, type ControlRow, controlLines } from './control'
import { ENGINE_HEAD, type EngineRow, engineLine } from './engine'
import { PEER_HEAD, type PeerRow, peerLine } from './graphile'
import { LATENCY_HEAD, type LatencyRow, latencyLine } from './latency'
import type { Machine } from './lib/machine'
import { fmt, ms, ratio, ratioText, table } from './lib/stats'
import type { ProbeResult } from './probe'

export interface Target {
  name: string
  /** null: not measured in this run. */
  met: boolean | null
  detail: string
}

export interface Results {
  mode: 'quick' | 'full'
  command: string
  machine: Machine
  settings: Record<string, unknown>
  control: ControlRow[]
  engine: EngineRow[]
  peer: PeerRow[]
  latency: LatencyRow[]
  probe: ProbeResult[]
  targets: Target[]
  startedAt: string
  seconds: number
}

const DB_NAME = { sqlite: 'SQLite', postgresql: 'PostgreSQL' } as const

const isTxMark = (x: string) => x === 'BEGIN' || x === 'COMMIT'

/** Section 4's tables; `verbose` lists every statement of the engine's node runs by kind. */
export function probeTables(probes: ProbeResult[], verbose = false): string {
  const out: string[] = []
  for (const r of probes) {
    const db = DB_NAME[r.db]
    const { pause, resume, trpc } = r.operate
    out.push(
      `**${db}: one legacy \`operate_task\` (pause)**: ${pause.filter((x) => !isTxMark(x)).length} statements` +
        `${pause.includes('BEGIN') ? ' + BEGIN/COMMIT' : ''}` +
        `${r.db === 'postgresql' ? ` = ${pause.length} round trips` : ''} (the floor: 1). Resume: ${resume.length}` +
        `${resume.length !== pause.length ? ` (also: ${resume.filter((x) => !pause.includes(x)).join('; ')})` : ''}; through tRPC: ${trpc.length}.`,
      '',
      ...pause.map((x, i) => `${i + 1}. \`${x}${x.length >= 100 ? ' …' : ''}\``),
      '',
    )
  }
  out.push(
    table(
      [
        'db',
        'engine, one task at a time, in-process',
        'nodes/s',
        'statements per node (PostgreSQL: round trips, BEGIN/COMMIT included)',
        'transactions per node',
        'most frequent statements',
      ],
      probes.flatMap((r) =>
        r.engine.map((e) => [
          r.db,
          `${e.shape}, 100 no-op nodes`,
          fmt(e.nodesPerSec),
          ((r.db === 'postgresql' ? e.statements : e.statements - 2 * e.transactions) / 100).toFixed(1),
          (e.transactions / 100).toFixed(1),
          e.byKind
            .filter(([k]) => !isTxMark(k))
            .slice(0, verbose ? 20 : 6)
            .map(([k, n]) => `${k} ×${(n / 100).toFixed(1)}`)
            .join(', '),
        ]),
      ),
    ),
    '',
    table(
      ['db', 'step (one caller, in-process)', 'mean ms', 'p50 ms', 'p99 ms', 'per s', 'CPU ms per call'],
      probes.flatMap((r) =>
        r.timings.map((t) => [r.db, t.step, ms(t.mean), ms(t.p50), ms(t.p99), fmt(t.perSec), ms(t.cpuMs)]),
      ),
    ),
  )
  return out.join('\n')
}

export function evaluateTargets(r: Results): Target[] {
  const targets: Target[] = []
  for (const db of ['sqlite', 'postgresql'] as const) {
    const row = r.control.find((c) => c.db === db && c.connections === 16)
    const v = row?.legacyVsFloor ?? null
    targets.push({
      name: `legacy operate_task on ${DB_NAME[db]} ≥ 0.6 × floor at 16 connections`,
      met: v === null ? null : v >= 0.6,
      detail:
        v === null || !row
          ? 'not measured'
          : `${ratioText(v)} (${fmt(row.legacy.rps)} vs ${fmt(row.floor.rps)} req/s)`,
    })
  }
  for (const db of ['sqlite', 'postgresql'] as const) {
    const row = r.control.find((c) => c.db === db && c.connections === 16)
    const v = row ? ratio(row.trpcHttp.rps, row.legacy.rps) : null
    targets.push({
      name: `tRPC server side (task.operate) on ${DB_NAME[db]} ≥ 0.8 × the legacy route, 16 connections`,
      met: v === null ? null : v >= 0.8,
      detail:
        v === null || !row
          ? 'not measured'
          : `${ratioText(v)} (${fmt(row.trpcHttp.rps)} vs ${fmt(row.legacy.rps)} req/s)`,
    })
  }
  const gw32 = r.peer.find((p) => p.setting === 'concurrency 32')
  const pgEngine = (processes: number, shape: 'linear' | 'fork') =>
    r.engine.find(
      (x) => x.db === 'postgresql' && x.processes === processes && x.shape === shape && !x.backlog,
    )
  for (const shape of ['linear', 'fork'] as const) {
    const e = pgEngine(1, shape)
    const v = ratio(e?.nodesPerSec, gw32?.jobsPerSec)
    targets.push({
      name: `engine on PostgreSQL, ${shape}, 1 worker process ≥ 0.5 × graphile-worker at the same concurrency (32)`,
      met: v === null ? null : v >= 0.5,
      detail:
        v === null
          ? 'not measured'
          : `${ratioText(v)} (${fmt(e?.nodesPerSec)} nodes/s vs ${fmt(gw32?.jobsPerSec)} jobs/s)`,
    })
  }
  {
    const one = pgEngine(1, 'fork')
    const two = pgEngine(2, 'fork')
    const v = ratio(two?.nodesPerSec, one?.nodesPerSec)
    targets.push({
      name: 'engine on PostgreSQL, fork, 2 worker processes ≥ 1.3 × 1 worker process',
      met: v === null ? null : v >= 1.3,
      detail:
        v === null
          ? 'not measured'
          : `${ratioText(v)} (${fmt(two?.nodesPerSec)} vs ${fmt(one?.nodesPerSec)} nodes/s)`,
    })
  }
  for (const db of ['sqlite', 'postgresql'] as const) {
    const empty = r.engine.find((x) => x.db === db && x.processes === 1 && x.shape === 'linear' && !x.backlog)
    const full = r.engine.find((x) => x.db === db && x.processes === 1 && x.shape === 'linear' && x.backlog)
    const v = ratio(full?.nodesPerSec, empty?.nodesPerSec)
    targets.push({
      name: `fresh linear tasks with ${fmt(full?.backlog ?? 100_000)} waiting jobs (held and future) on ${DB_NAME[db]} ≥ 0.8 × an empty database`,
      met: v === null ? null : v >= 0.8,
      detail:
        v === null
          ? 'not measured'
          : `${ratioText(v)} (${fmt(full?.nodesPerSec)} vs ${fmt(empty?.nodesPerSec)} nodes/s)`,
    })
  }
  for (const db of ['sqlite', 'postgresql'] as const) {
    for (const [measure, label] of [
      ['revoke reply → sleep_timer node seen REVOKED', 'sleep_timer node REVOKED'],
      ['revoke reply → component AbortSignal', 'abort signal in a running component'],
    ] as const) {
      const l = r.latency.find((x) => x.db === db && x.measure === measure)
      targets.push({
        name: `revoke → ${label} on ${DB_NAME[db]}: p99 ≤ 100 ms`,
        met: l ? l.summary.p99 <= 100 : null,
        detail: l
          ? `p99 ${ms(l.summary.p99)} ms (p50 ${ms(l.summary.p50)} ms, ${l.tries} tries)`
          : 'not measured',
      })
    }
  }
  return targets
}

/** What the numbers of this run say, computed from them (a bullet is left out when its data is). */
export function findings(r: Results): string[] {
  const f: string[] = []
  const step = (db: string, prefix: string) =>
    r.probe.find((p) => p.db === db)?.timings.find((t) => t.step.startsWith(prefix))
  for (const db of ['sqlite', 'postgresql'] as const) {
    const c16 = r.control.find((c) => c.db === db && c.connections === 16)
    const p = r.probe.find((x) => x.db === db)
    if (c16 && p) {
      const stmts = p.operate.pause.filter((x) => !isTxMark(x)).length
      f.push(
        `**Control path, ${DB_NAME[db]}**: at 16 connections the legacy route serves ${ratioText(c16.legacyVsFloor)} of the floor. ` +
          `One call runs ${stmts} statements${p.operate.pause.includes('BEGIN') ? ' in and around one transaction' : ''}` +
          `${db === 'postgresql' ? ` (${p.operate.pause.length} round trips with BEGIN/COMMIT)` : ''} where the floor runs 1.`,
      )
    }
  }
  const sqCas = step('sqlite', 'raw driver')
  const sqOp = step('sqlite', 'authenticate + operateTask')
  const sqTx = step('sqlite', "prototype: operate's statements")
  const sqGroup = step('sqlite', 'prototype: the same, 16 per COMMIT')
  const sqFloorInj = step('sqlite', 'inject: floor')
  const sqLegInj = step('sqlite', 'inject: legacy')
  if (sqCas && sqOp && sqTx && sqGroup && sqFloorInj && sqLegInj) {
    f.push(
      `SQLite, in-process and one at a time: the raw compare-and-set takes ${ms(sqCas.p50)} ms (p50), authenticate + operateTask ${ms(sqOp.p50)} ms; ` +
        `the operate's own statements with the raw driver take ${ms(sqTx.p50)} ms in one transaction each and ${ms(sqGroup.p50)} ms each when 16 share a COMMIT ` +
        `(each COMMIT appends every page it changed to the WAL: tasks, task_events and operate_records with their indexes). ` +
        `The whole request without sockets: floor route ${ms(sqFloorInj.p50)} ms, legacy route ${ms(sqLegInj.p50)} ms (CPU ${ms(sqFloorInj.cpuMs)} vs ${ms(sqLegInj.cpuMs)} ms per call).`,
    )
  }
  const pgOp = step('postgresql', 'authenticate + operateTask')
  const pgProto = step('postgresql', 'prototype: operate in 2 round trips')
  const pgC = [
    '16 concurrent callers: raw CAS',
    '16 concurrent callers: authenticate',
    '16 concurrent callers: the 2-round-trip',
  ].map((x) => step('postgresql', x))
  if (pgOp && pgProto && pgC.every(Boolean)) {
    f.push(
      `PostgreSQL, in-process: the same pause/resume in 2 round trips (a prototype in bench/src/probe.ts) takes ${ms(pgProto.p50)} ms (p50) against ${ms(pgOp.p50)} ms today, ` +
        `and with 16 concurrent callers serves ${fmt(pgC[2]!.perSec)}/s against ${fmt(pgC[1]!.perSec)}/s today and ${fmt(pgC[0]!.perSec)}/s for the floor ` +
        `(${ratioText(ratio(pgC[2]!.perSec, pgC[0]!.perSec))} against ${ratioText(ratio(pgC[1]!.perSec, pgC[0]!.perSec))} of it): a transaction holds a pooled connection ` +
        'for all of its round trips, and 16 callers share a pool of 10.',
    )
  }
  const leg = step('sqlite', 'inject: legacy') ?? step('postgresql', 'inject: legacy')
  const trpcInj = step('sqlite', 'inject: tRPC') ?? step('postgresql', 'inject: tRPC')
  if (leg && trpcInj) {
    f.push(
      `**tRPC**: the same use case through tRPC's route costs ${ms(trpcInj.cpuMs)} ms of CPU per call against ${ms(leg.cpuMs)} ms for the legacy route (in-process, SQLite): ` +
        "tRPC 11's Fastify adapter turns every request into a Fetch API Request (undici, an AbortSignal, a body stream) and back, so the hot mutations " +
        '(`task.operate`, `task.start`) are served on the same URL and wire format by a plain Fastify route (apps/api/src/trpc/fast.ts) that calls the procedure directly. Through the client, the ' +
        "client's own fetch and tRPC work run on the same 2 cores as the server.",
    )
  }
  for (const db of ['sqlite', 'postgresql'] as const) {
    const e = r.probe.find((x) => x.db === db)?.engine
    if (e && e.length > 0) {
      f.push(
        `**Engine, ${DB_NAME[db]}**: ` +
          e
            .map(
              (x) =>
                `a ${x.shape} node costs ${((db === 'postgresql' ? x.statements : x.statements - 2 * x.transactions) / 100).toFixed(1)} statements in ${(x.transactions / 100).toFixed(1)} transactions`,
            )
            .join('; ') +
          (db === 'postgresql'
            ? ' (a node step is BEGIN, its advisory locks, one read of the task row, the lease and the node rows, one write of data-modifying ' +
              "CTEs (task row's event numbers, job, node rows, history, events, the successor's job leased to the same worker), COMMIT; a completion " +
              "starts its successor in the same transaction; a fork's nodes add a claim each). The task row is locked only from a step's write to its " +
              'COMMIT: the branches of a fork lock, read and decide at the same time and wait for each other only at their converge and for that one ' +
              'write and COMMIT (docs/engine.md, "A node\'s transaction").'
            : ' (claim; start: lock the task row, check the lease, read the node rows the decision needs, write node, history, event, task; complete: ' +
              "lock the task row, delete the job, read, write, insert the next node's job). Every node transaction of a task locks that task's row " +
              '(`lockTask`): SQLite has one writer anyway, and group commit lets queued transactions share a COMMIT.'),
      )
    }
  }
  const gw32 = r.peer.find((p) => p.setting === 'concurrency 32')
  const gwDefault = r.peer.find((p) => p.setting === 'default')
  const pgRows = r.engine.filter((e) => e.db === 'postgresql' && !e.backlog)
  if (gw32 && pgRows.length > 0) {
    f.push(
      `**Against graphile-worker at the engine's own concurrency (32)**, which ran ${fmt(gw32.jobsPerSec)} no-op jobs/s` +
        `${gwDefault ? ` (${fmt(gwDefault.jobsPerSec)}/s with its default of one job at a time)` : ''}: ` +
        pgRows
          .map(
            (e) =>
              `${e.shape} with ${e.processes} worker process${e.processes > 1 ? 'es' : ''} ${ratioText(ratio(e.nodesPerSec, gw32.jobsPerSec))}`,
          )
          .join(', ') +
        '. A graphile-worker job is one row claimed and deleted; a stdops node is a state move with its event, history and successor in the same transaction.',
    )
  }
  for (const b of r.engine.filter((e) => e.backlog)) {
    const empty = r.engine.find(
      (e) => e.db === b.db && e.processes === 1 && e.shape === 'linear' && !e.backlog,
    )
    f.push(
      `**Claims and the backlog, ${DB_NAME[b.db]}**: with ${fmt(b.backlog)} held and future jobs in the database, fresh linear tasks ran at ` +
        `${ratioText(ratio(b.nodesPerSec, empty?.nodesPerSec))} of the empty database's speed (${fmt(b.nodesPerSec)} vs ${fmt(empty?.nodesPerSec)} nodes/s): ` +
        'the claim reads the due-time index up to now, and held jobs and future timers lie past it (its plan is in section 2).',
    )
  }
  const forkWaits = r.engine.filter(
    (e) => e.db === 'postgresql' && e.shape === 'fork' && e.lockWaitShare !== undefined,
  )
  if (forkWaits.length > 0) {
    f.push(
      `During the PostgreSQL fork runs, ${forkWaits.map((e) => `${(100 * e.lockWaitShare!).toFixed(0)}% (${e.processes} process${e.processes > 1 ? 'es' : ''})`).join(' and ')} ` +
        'of the active connections sampled were waiting on a lock: every branch of the fork ends at the same converge gateway, and a ' +
        "completion holds the converge's lock for its whole step (lock, read, decide, write, COMMIT), so the 100 completions of one fork take " +
        "turns there; each also writes the task row, which numbers the task's events without gaps in commit order. A second worker process " +
        'adds contenders for the same locks, not throughput. Lifting this needs arrivals counted in the write itself (only the last arrival ' +
        "decides past the converge) and events numbered apart from the task row: a change to the event log's numbering that clients resume by.",
    )
  }
  const rec = r.latency.filter((l) => l.measure.startsWith('revoke reply → node finish time recorded'))
  if (rec.length > 0) {
    f.push(
      `**Revoke**: the running node is marked REVOKED in the revoke's own transaction (its finish time is ${rec.map((l) => `${ms(-l.summary.p50)} ms before the reply on ${DB_NAME[l.db]}`).join(', ')}, p50); ` +
        'a component holding a worker is aborted by the API process itself (one process) or through LISTEN/NOTIFY (a worker process).',
    )
  }
  return f
}

export function renderMarkdown(r: Results): string {
  const m = r.machine
  const s = r.settings as {
    loadSeconds: number
    engineTasks: number
    engineWidth: number
    revokeTries: number
    holdTries: number
    pauseTries: number
  }
  const gwDefault = r.peer.find((p) => p.setting === 'default')
  const gw32 = r.peer.find((p) => p.setting === 'concurrency 32')
  const gwTuned = r.peer.find((p) => p.setting === 'tuned')
  const backlogRows = r.engine.filter((e) => e.backlog)
  const lines: string[] = []
  const p = (...x: string[]) => lines.push(...x)

  p(
    '# Benchmarks',
    '',
    `Written by \`${r.command}\` (bench/src/run.ts) on ${m.date.slice(0, 10)}; ${r.mode === 'quick' ? 'a **quick** smoke run' : 'a full run'} that took ${r.seconds} s.`,
    'Speed is reported as ratios measured in the same run: this machine (2 cores) is shared with other sessions running their own',
    'test suites while it was measured (see the load average below), so absolute numbers move from run to run, and the run is `nice`d;',
    'each floor row runs seconds before the stdops rows divided by it; the peer runs right after the engine rows, on the same PostgreSQL server.',
    'Even so, a ratio near its target moves between runs (the SQLite control path at 16 connections has measured from about 0.3× to',
    '0.7× of its floor during development on this machine): read a met or missed close to the line with that in mind.',
    '',
    '## Machine',
    '',
    table(
      ['', ''],
      [
        ['CPU', m.cpu],
        ['cores (nproc)', String(m.nproc)],
        ['memory', m.memory],
        ['node', m.node],
        ['PostgreSQL', m.postgres ?? 'n/a'],
        ['load average (1, 5, 15 min) before / after', `${m.loadavg} / ${m.loadavgAfter ?? 'n/a'}`],
        ['commit', m.commit],
        ['date', m.date],
        ['command', `\`${r.command}\``],
      ],
    ),
    '',
    '## Targets',
    '',
    table(
      ['target', 'result', 'measured'],
      r.targets.map((t) => [
        t.name,
        t.met === null ? 'not measured' : t.met ? 'met' : '**missed**',
        t.detail,
      ]),
    ),
    '',
    '## What the numbers say',
    '',
    ...findings(r).map((x) => `- ${x}`),
    '',
    '## 1. Control path',
    '',
    `\`POST /v2/sops/operate_task/\` alternating \`pause\` and \`resume\`, one task per connection (so every request applies),`,
    `driven by autocannon 7 for ${s.loadSeconds} s per row (two halves, the four rows in the order A B C D D C B A, so that a drift in the`,
    "machine's load falls on all of them alike), after a warm-up; the same loop through the tRPC client (`task.operate`, `httpLink`,",
    'one async worker per task, timed with `performance.now()`; the client and its `fetch` run in the bench process, on the same',
    '2 cores); the same tRPC route driven by autocannon (`POST /trpc/task.operate`: the server side alone); and the **floor**: a bare Fastify 5 route that runs the same single',
    'compare-and-set `UPDATE tasks SET state = ?, version = version + 1 WHERE id = ? AND version = ?` with the raw driver',
    '(better-sqlite3 with `SQLITE_PRAGMAS` from @stdops/db; a `pg.Pool` of 10 with a named prepared statement) on the same database.',
    'stdops runs as `stdops-server serve --no-worker` (a started task stays RUNNING: no worker competes), with a non-trusted app, a',
    "`bk_token` and a project role, so each call authenticates and checks the role as a real caller's does. Server and floor are",
    'child processes; the load generator is the bench process (2 cores shared by both). Errors: replies with a non-zero `code`,',
    'HTTP errors, timeouts. Latencies are client-side, in milliseconds.',
    '',
    table(CONTROL_HEAD, r.control.flatMap(controlLines)),
    '',
    '## 2. Engine',
    '',
    `${s.engineTasks} tasks of ${s.engineWidth} no-op nodes (\`bench_noop\`, bench/components/noop.mjs, loaded with \`STDOPS_COMPONENTS\`), created,`,
    'then started at once; nodes/s = all activity nodes ÷ (last task `finished_at` − first task `started_at`, as recorded in the database).',
    '`linear`: start → 100 activities → end; `fork`: start → parallel gateway → 100 activities → converge → end. SQLite: one',
    '`serve` process (API + worker: SQLite serves one process); PostgreSQL: a `serve --no-worker` process and 1 or 2',
    '`stdops-server worker` processes (concurrency 32 each, the default; `STDOPS_PROJECT_CONCURRENCY=32`: every bench task is in one',
    "project, which may then use the worker's 32 slots, as a single-project deployment would set it).",
    '',
    table(ENGINE_HEAD, r.engine.map(engineLine)),
    '',
    `The peer: graphile-worker 0.17.3 in the bench process, its own fresh database on the same PostgreSQL server, ${gwDefault?.jobs ?? 'the same number of'}`,
    'no-op jobs committed at once to an idle running worker; jobs/s until its job table is empty.',
    '',
    table(PEER_HEAD, r.peer.map(peerLine)),
    '',
    table(
      [
        'stdops on PostgreSQL',
        'nodes/s',
        '÷ graphile-worker at concurrency 32',
        '÷ graphile-worker default (1)',
        '÷ graphile-worker tuned',
      ],
      r.engine
        .filter((e) => e.db === 'postgresql' && !e.backlog)
        .map((e) => [
          `${e.shape}, ${e.processes} worker process${e.processes > 1 ? 'es' : ''}`,
          fmt(e.nodesPerSec),
          ratioText(ratio(e.nodesPerSec, gw32?.jobsPerSec)),
          ratioText(ratio(e.nodesPerSec, gwDefault?.jobsPerSec)),
          ratioText(ratio(e.nodesPerSec, gwTuned?.jobsPerSec)),
        ]),
    ),
    '',
    '### Claims with a backlog',
    '',
    `Right after the 1-process rows above, ${fmt(backlogRows[0]?.backlog ?? 100_000)} waiting jobs are written straight into the database, as`,
    'the engine leaves them (bench/src/backlog.ts): 1,000 SUSPENDED tasks of the same project, each with 50 node jobs held by its',
    'pause (`held`, due time moved ahead) and 50 `sleep_timer` timers due in an hour. The same linear tasks then run again; the',
    'backlog is deleted before the 2-process rows. A claim reads jobs by due time up to now (`jobs_due_at_idx`): held jobs and',
    'future timers lie past that range.',
    '',
    table(
      [
        'db',
        'empty database, nodes/s',
        `with ${fmt(backlogRows[0]?.backlog ?? 100_000)} waiting jobs, nodes/s`,
        'ratio',
      ],
      backlogRows.map((b) => {
        const empty = r.engine.find(
          (e) => e.db === b.db && e.processes === 1 && e.shape === 'linear' && !e.backlog,
        )
        return [
          b.db,
          fmt(empty?.nodesPerSec),
          fmt(b.nodesPerSec),
          ratioText(ratio(b.nodesPerSec, empty?.nodesPerSec)),
        ]
      }),
    ),
    '',
    ...backlogRows.flatMap((b) => [
      `The claim a worker with 32 free slots runs, with the backlog in place, on ${DB_NAME[b.db]} (${
        b.db === 'postgresql'
          ? '`EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF)`, executed in a transaction rolled back'
          : '`EXPLAIN QUERY PLAN`'
      }):`,
      '',
      '```',
      ...(b.claimPlan ?? ['(not captured)']),
      '```',
      '',
    ]),
    '## 3. Control latency',
    '',
    `With workers running (SQLite: one \`serve\` process; PostgreSQL: an API process and a worker process, so a revoke reaches`,
    'the worker through LISTEN/NOTIFY). Times are epoch milliseconds taken in the bench process and, for the abort signal, in the',
    'worker process (same machine clock).',
    '',
    `- **revoke → sleep_timer**: ${s.revokeTries} tasks whose first node is \`sleep_timer\` (3600 s, a durable timer: no worker is held)`,
    '  are started and their node seen RUNNING; each is revoked in turn, and its `node_states` row is polled (every 1 ms, directly in',
    '  the database) until REVOKED. "finish time recorded" is the row\'s `finished_at` minus the reply time.',
    `- **revoke → component abort**: ${s.holdTries} tasks (in batches of 25) whose node holds a worker (\`bench_hold\`, 600 s); the`,
    '  component logs when its `AbortSignal` fires.',
    `- **pause → quiet**: ${s.pauseTries} tasks of a 100-wide fork of 20 ms \`bench_hold\` nodes, paused 20–80 ms after their start;`,
    '  `get_task_status` is polled every 2 ms until `running_nodes` is 0.',
    '',
    table(LATENCY_HEAD, r.latency.map(latencyLine)),
    '',
    '## 4. Where the time goes',
    '',
    'In-process, on a fresh database (bench/src/probe.ts; `pnpm --filter @stdops/bench exec tsx src/hotpath.ts postgresql`',
    'prints the same). The Db is wrapped to count every statement (BEGIN and COMMIT included: on PostgreSQL each is a round trip;',
    'on SQLite a statement is a call into the library, no round trip). "inject" is the whole Fastify request path without sockets.',
    'The PostgreSQL prototype does the same pause/resume as `operateTask` (same checks, same rows written) in two round trips: one',
    'SELECT joining the app, the token and its user, the project, the role and the task; then one statement whose data-modifying',
    'CTEs do the compare-and-set, the task event and the operate record (autocommit: no BEGIN/COMMIT).',
    '',
    r.probe.length > 0 ? probeTables(r.probe) : '(not run)',
    '',
  )
  return `${lines.join('\n')}\n`
}
