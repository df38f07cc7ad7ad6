import { TASK_STATES } from '@stdops/core'
import { type Db, sql } from '@stdops/db'
import type { EngineTelemetry } from '@stdops/engine'
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'

/**
 * The Prometheus metrics of one process (GET /metrics), all prefixed `stdops_`, with prom-client's
 * default process metrics. Labels never hold a task, node or user id: their values come from small
 * fixed sets (states, actions, node types, registered component codes, route templates).
 *
 * Counters and histograms count what this process did; the gauges read from the database
 * (tasks by state, nodes waiting, due jobs) describe the whole deployment, read at scrape time
 * and cached for `snapshotTtlMs`, so any process's /metrics answers for all of them.
 */

/** Seconds: 5 ms … 10 min, for node and task durations (nodes range from instant gateways to long timers). */
const DURATION_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600,
]
/** Seconds: 1 ms … 10 s, for requests, operations and claim latency. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

export const WAIT_REASONS = ['callback', 'timer', 'held', 'failed'] as const
export type WaitReason = (typeof WAIT_REASONS)[number]

export interface BuildInfo {
  version: string
}

export interface DbSnapshot {
  tasksByState: Map<string, number>
  waiting: Record<WaitReason, number>
  dueJobs: number
  /** Seconds since the oldest due, unclaimed job fell due; 0 when none. */
  oldestDueAgeSeconds: number
}

/**
 * One statement over the whole database (one round trip): what the database-backed gauges show.
 * Each part reads an index only: tasks by state, the RUNNING and FAILED node rows (partial
 * indexes), jobs by kind and due time.
 */
export async function readSnapshot(db: Db, now: number): Promise<DbSnapshot> {
  const rows = await db.query<{ k: string; n: number | string | null }>(sql`
    SELECT 'task:' || state AS k, COUNT(*) AS n FROM tasks GROUP BY state
    UNION ALL SELECT 'timer', COUNT(*) FROM jobs WHERE kind = 'timer'
    UNION ALL SELECT 'held', COUNT(*) FROM jobs j JOIN tasks t ON t.id = j.task_id
      WHERE j.kind = 'node' AND t.state = 'SUSPENDED'
    UNION ALL SELECT 'callback', COUNT(*) FROM node_states n WHERE n.state = 'RUNNING'
      AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.task_id = n.task_id AND j.node_id = n.node_id)
    UNION ALL SELECT 'failed', COUNT(*) FROM node_states n JOIN tasks t ON t.id = n.task_id
      WHERE n.state = 'FAILED' AND t.state IN ('RUNNING', 'SUSPENDED')
    UNION ALL SELECT 'due', COUNT(*) FROM jobs j JOIN tasks t ON t.id = j.task_id
      WHERE ${dueAndClaimable(now)}
    UNION ALL SELECT 'oldest', MIN(j.due_at) FROM jobs j JOIN tasks t ON t.id = j.task_id
      WHERE ${dueAndClaimable(now)}`)
  const got = new Map(rows.map((r) => [r.k, r.n === null ? null : Number(r.n)]))
  const count = (k: string) => got.get(k) ?? 0
  const oldest = got.get('oldest') ?? null
  return {
    tasksByState: new Map(
      [...got].filter(([k]) => k.startsWith('task:')).map(([k, n]) => [k.slice(5), n ?? 0]),
    ),
    waiting: {
      callback: count('callback'),
      timer: count('timer'),
      held: count('held'),
      failed: count('failed'),
    },
    dueJobs: count('due'),
    oldestDueAgeSeconds: oldest === null ? 0 : Math.max(0, (now - oldest) / 1000),
  }
}

/** Due and claimable, exactly as a claim sees it: nobody holds a live lease, and the task's state lets it run. */
const dueAndClaimable = (now: number) =>
  sql`j.due_at <= ${now} AND (j.lease_until IS NULL OR j.lease_until < ${now})
      AND (j.kind = 'callback' OR t.state = 'RUNNING' OR (j.kind = 'timer' AND t.state = 'SUSPENDED'))`

export interface Metrics {
  registry: Registry
  /** What the engine reports through (its EngineTelemetry). */
  telemetry: EngineTelemetry
  taskCreated(): void
  streamOpened(resumed: boolean): void
  streamClosed(): void
  httpRequest(e: { method: string; route: string; status: number; seconds: number }): void
  /** The exposition text, and its content type. */
  render(): Promise<{ contentType: string; body: string }>
}

/**
 * The process's metrics. `db` feeds the database-backed gauges at scrape time (one snapshot per
 * `snapshotTtlMs`, however many gauges and scrapers read it).
 */
export function createMetrics(opts: {
  db: Db
  build: BuildInfo
  now?: () => number
  snapshotTtlMs?: number
  onSnapshotError?: (err: unknown) => void
}): Metrics {
  const now = opts.now ?? Date.now
  const ttl = opts.snapshotTtlMs ?? 2000
  const registry = new Registry()
  const registers = [registry]
  collectDefaultMetrics({ register: registry, prefix: 'stdops_' })

  // One read serves every gauge of a scrape (they collect at once) and, for `ttl`, later scrapes.
  let cached: { at: number; settled: boolean; snapshot: Promise<DbSnapshot | null> } | null = null
  const snapshot = (): Promise<DbSnapshot | null> => {
    const t = now()
    if (cached && (!cached.settled || t - cached.at < ttl)) return cached.snapshot
    const entry = {
      at: t,
      settled: false,
      snapshot: readSnapshot(opts.db, t).then(
        (s) => s,
        (err: unknown) => {
          opts.onSnapshotError?.(err)
          return null
        },
      ),
    }
    cached = entry
    void entry.snapshot.then((s) => {
      entry.settled = true
      if (s === null && cached === entry) cached = null // try again at the next scrape
    })
    return entry.snapshot
  }

  new Gauge({
    name: 'stdops_build_info',
    help: 'The running build: always 1, its labels say which',
    labelNames: ['version', 'node'],
    registers,
  }).set({ version: opts.build.version, node: process.version }, 1)

  const tasksCreated = new Counter({ name: 'stdops_tasks_created_total', help: 'Tasks created', registers })
  const tasksFinished = new Counter({
    name: 'stdops_tasks_finished_total',
    help: 'Tasks that reached a final state, by that state (FINISHED, REVOKED)',
    labelNames: ['state'],
    registers,
  })
  new Gauge({
    name: 'stdops_tasks',
    help: 'Tasks in the database by state (read at scrape time, cached briefly)',
    labelNames: ['state'],
    registers,
    async collect() {
      const s = await snapshot()
      if (!s) return
      for (const state of TASK_STATES) this.set({ state }, s.tasksByState.get(state) ?? 0)
    },
  })
  const taskDuration = new Histogram({
    name: 'stdops_task_duration_seconds',
    help: "From a task's start to its final state, by outcome (finished, revoked)",
    labelNames: ['outcome'],
    buckets: DURATION_BUCKETS,
    registers,
  })
  const nodeDuration = new Histogram({
    name: 'stdops_node_duration_seconds',
    help: "From a node's start to its end, by node type, component and outcome (finished, failed, revoked)",
    labelNames: ['node_type', 'component', 'outcome'],
    buckets: DURATION_BUCKETS,
    registers,
  })
  const transitions = new Counter({
    name: 'stdops_node_transitions_total',
    help: 'Node state changes, by the state left (NONE for a new node) and the state entered',
    labelNames: ['from', 'to'],
    registers,
  })
  new Gauge({
    name: 'stdops_nodes_waiting',
    help: 'Nodes waiting, by reason: callback, timer, held (by a pause), failed (for an operator)',
    labelNames: ['reason'],
    registers,
    async collect() {
      const s = await snapshot()
      if (!s) return
      for (const reason of WAIT_REASONS) this.set({ reason }, s.waiting[reason])
    },
  })
  new Gauge({
    name: 'stdops_jobs_due',
    help: 'Jobs due and not claimed: work a worker could start now',
    registers,
    async collect() {
      const s = await snapshot()
      if (s) this.set(s.dueJobs)
    },
  })
  new Gauge({
    name: 'stdops_jobs_due_oldest_age_seconds',
    help: 'How long the oldest due, unclaimed job has waited (0 when none)',
    registers,
    async collect() {
      const s = await snapshot()
      if (s) this.set(s.oldestDueAgeSeconds)
    },
  })
  const claimLatency = new Histogram({
    name: 'stdops_claim_latency_seconds',
    help: 'From a job falling due to a worker claiming it',
    buckets: LATENCY_BUCKETS,
    registers,
  })
  const operations = new Counter({
    name: 'stdops_operations_total',
    help: 'Task and node operations, by action (node actions prefixed node_) and result (ok, refused, error)',
    labelNames: ['action', 'result'],
    registers,
  })
  const operationDuration = new Histogram({
    name: 'stdops_operation_duration_seconds',
    help: "Task operations' latency, by action",
    labelNames: ['action'],
    buckets: LATENCY_BUCKETS,
    registers,
  })
  const streamsOpen = new Gauge({
    name: 'stdops_event_streams_open',
    help: 'Task event streams open on this process',
    registers,
  })
  const streamResumes = new Counter({
    name: 'stdops_event_stream_resumes_total',
    help: 'Task event streams opened after a last event id (a client resuming)',
    registers,
  })
  const http = new Histogram({
    name: 'stdops_http_request_duration_seconds',
    help: "HTTP requests' duration, by method, route template and status class",
    labelNames: ['method', 'route', 'status_class'],
    buckets: LATENCY_BUCKETS,
    registers,
  })
  const engineErrors = new Counter({
    name: 'stdops_engine_errors_total',
    help: 'Engine errors by cause: claim, job, lease_renewal, notify, fenced (a late result refused), bug, loop',
    labelNames: ['cause'],
    registers,
  })
  const retries = new Counter({
    name: 'stdops_node_retries_total',
    help: "Node retries, by kind: manual (an operator) or automatic (the node's retry policy)",
    labelNames: ['kind'],
    registers,
  })
  for (const kind of ['manual', 'automatic']) retries.inc({ kind }, 0)

  const telemetry: EngineTelemetry = {
    nodeTransition(e) {
      transitions.inc({ from: e.from ?? 'NONE', to: e.to })
      if (e.durationMs !== null)
        nodeDuration.observe(
          { node_type: e.nodeType, component: e.component, outcome: e.to.toLowerCase() },
          e.durationMs / 1000,
        )
    },
    taskEnded(e) {
      tasksFinished.inc({ state: e.state })
      if (e.durationMs !== null) taskDuration.observe({ outcome: e.state.toLowerCase() }, e.durationMs / 1000)
    },
    claimed(latencies) {
      for (const ms of latencies) claimLatency.observe(ms / 1000)
    },
    operation(e) {
      operations.inc({ action: e.action, result: e.result })
      operationDuration.observe({ action: e.action }, e.durationMs / 1000)
    },
    error(cause) {
      engineErrors.inc({ cause })
    },
    nodeRetried(kind) {
      retries.inc({ kind })
    },
  }

  return {
    registry,
    telemetry,
    taskCreated: () => tasksCreated.inc(),
    streamOpened(resumed) {
      streamsOpen.inc()
      if (resumed) streamResumes.inc()
    },
    streamClosed: () => streamsOpen.dec(),
    httpRequest(e) {
      http.observe(
        { method: e.method, route: e.route, status_class: `${Math.floor(e.status / 100)}xx` },
        e.seconds,
      )
    },
    async render() {
      return { contentType: registry.contentType, body: await registry.metrics() }
    },
  }
}
