/**
 * The engine's decisions, as pure functions that return data (STYLE habit 1). Given the task's
 * graph, the node rows as they are in the database, the task's constants and state, each
 * `plan*` function says what happens next: node rows to write, events, history rows, jobs to
 * enqueue, constants that changed, whether the task finished. The caller performs the effects in
 * one transaction (see store.ts); nothing here touches the database or the clock.
 *
 * Non-activity nodes (events and gateways) are executed inline while the task is RUNNING: the
 * caller holds the task row, so this is ordered before or after any pause. While the task is not
 * RUNNING, every node that becomes due is only scheduled (a READY row and a job), to be started
 * after resume.
 */
import {
  type Activity,
  CONSTANT_LIMITS,
  type Constant,
  evaluateCondition,
  type NodeState,
  type PipelineGraph,
  RenderLimitError,
  renderValue,
  resolveConstants,
  selectOutgoing,
  sizeWithin,
  type TaskState,
  transitionNode,
  transitionTask,
} from '@stdops/core'
import type { ComponentModule } from './types'

/** A node may be passed through this many times; the next pass fails it. */
export const LOOP_LIMIT = 100

/** The columns of node_states the engine decides on (inputs and outputs are written, not read). */
export interface NodeRow {
  state: NodeState
  version: number
  loop: number
  retry: number
  skip: boolean
  errorIgnored: boolean
  arrivals: number
  expected: number
  attempt: number
  error: string | null
  startedAt: number | null
  finishedAt: number | null
  /** Held by the node action `pause`: when the run reaches it, it is SUSPENDED instead of started. */
  held: boolean
  /**
   * What a RUNNING node waits for: `callback` (a node callback), `retry` (its automatic retry's
   * interval); `subproc`: a node that became due inside a paused subprocess, held until its resume.
   */
  wait: 'callback' | 'retry' | 'subproc' | null
  /** The retry that made the current attempt: `manual`, `automatic`, or null. */
  retryKind: 'manual' | 'automatic' | null
  /** Automatic retries taken in the current pass. */
  autoRetries: number
  /** Inputs a manual retry replaced (JSON object text), laid over the rendered ones from then on. */
  inputOverrides: string | null
}

export interface TaskGraph {
  graph: PipelineGraph
  /** converge gateway id → the fork whose branches it joins (a fork's `expected` counts them). */
  forkOf: ReadonlyMap<string, string>
  /** The tree's `outputs`: the constants reported as task outputs. */
  outputs: readonly string[]
  /** Memo of rowsReadFrom. */
  readonly reads: Map<string, readonly string[]>
  /** Memo of stepReadsFrom. */
  readonly stepReads: Map<string, readonly string[]>
}

export function prepareGraph(graph: PipelineGraph, outputs: readonly string[]): TaskGraph {
  const forkOf = new Map<string, string>()
  for (const node of graph.nodes.values()) {
    if (node.convergeId !== undefined) forkOf.set(node.convergeId, node.id)
  }
  return { graph, forkOf, outputs, reads: new Map(), stepReads: new Map() }
}

/**
 * The node rows a decision about `nodeId` can read: the node itself and, along its outgoing flows,
 * every node an inline walk may reach (through events and gateways, whatever their conditions,
 * stopping at activities), with the fork of each converge gateway met. A transaction loads only
 * these rows, so its cost does not grow with the size of the tree.
 */
export function rowsReadFrom(g: TaskGraph, nodeId: string): readonly string[] {
  const memo = g.reads.get(nodeId)
  if (memo) return memo
  const found = new Set<string>([nodeId])
  const stack = [nodeId]
  const targets = (flowIds: readonly string[]) => flowIds.map((f) => g.graph.flows.get(f)?.target)
  for (let id = stack.pop(); id !== undefined; id = stack.pop()) {
    const node = g.graph.nodes.get(id)
    if (!node || (node.kind === 'activity' && id !== nodeId)) continue
    // A SubProcess goes on into its child tree's start; a child tree's end back to its
    // SubProcess (which finishes) and along the SubProcess's outgoing flow.
    const parent = node.kind === 'end' ? g.graph.parentOf?.get(id) : undefined
    const next =
      node.kind === 'subprocess'
        ? [g.graph.scopes?.get(id)?.startId]
        : parent !== undefined
          ? [parent, ...targets(g.graph.nodes.get(parent)?.outgoing ?? [])]
          : targets(node.outgoing)
    for (const target of next) {
      if (target === undefined || found.has(target)) continue
      found.add(target)
      const fork = g.forkOf.get(target)
      if (fork !== undefined) found.add(fork)
      // The SubProcess a child end returns to is read, not walked again.
      if (target !== parent) stack.push(target)
    }
  }
  // The SubProcesses holding each node: a paused one holds back what becomes due in it.
  for (const id of [...found]) {
    for (let p = g.graph.parentOf?.get(id); p !== undefined; p = g.graph.parentOf?.get(p)) found.add(p)
  }
  const rows = [...found]
  g.reads.set(nodeId, rows)
  return rows
}

/**
 * The node rows a step about `nodeId` reads when it may also start, in the same transaction, what
 * its decision makes due: rowsReadFrom(nodeId) and, for each node that decision can reach (an
 * activity or any node of its walk), that node's own rowsReadFrom. One read serves all of them.
 */
export function stepReadsFrom(g: TaskGraph, nodeId: string): readonly string[] {
  const memo = g.stepReads.get(nodeId)
  if (memo) return memo
  const found = new Set(rowsReadFrom(g, nodeId))
  for (const id of [...found]) if (id !== nodeId) for (const r of rowsReadFrom(g, id)) found.add(r)
  const rows = [...found]
  g.stepReads.set(nodeId, rows)
  return rows
}

export interface PlanContext {
  graph: TaskGraph
  nodes: ReadonlyMap<string, NodeRow>
  constants: Readonly<Record<string, Constant>>
  /** Each started subprocess's child constants, by SubProcess node id. */
  scopeConstants: Readonly<Record<string, Record<string, Constant>>>
  taskState: TaskState
  now: number
  worker: string
}

/** A node row to write: the decided columns, plus inputs/outputs when they were set (JSON text). */
export interface NodeWrite extends NodeRow {
  nodeId: string
  inputs?: string
  outputs?: string
}

export interface PlannedEvent {
  type: 'node_state' | 'task_state'
  state: string
  nodeId?: string
  data?: unknown
}

export interface HistoryInsert {
  nodeId: string
  loop: number
  attempt: number
  state: NodeState
  version: number
  retryKind: 'manual' | 'automatic' | null
  skip: boolean
  /** The attempt's first log lines (the engine's own). */
  log: string
  worker: string
  inputs: string | null
  outputs: string | null
  error: string | null
  startedAt: number
  finishedAt: number | null
}

/** Closes the open history row of (node, loop, attempt). */
export interface HistoryClose {
  nodeId: string
  loop: number
  attempt: number
  state: NodeState
  outputs: string | null
  error: string | null
  finishedAt: number
  /** Engine log lines appended to the attempt's log. */
  log?: string
}

export interface RunActivity {
  nodeId: string
  code: string
  /** The inputs after the component's schema (what execute receives). */
  inputs: unknown
  loop: number
  attempt: number
  /** The activity's `timeout`, in ms: execute is aborted and the node failed past it. */
  timeoutMs?: number
  /** From `timeout_config`: what happens past the limit (the older `timeout` only fails). */
  timeoutAction?: 'forced_fail' | 'forced_fail_and_skip'
}

export interface Plan {
  rows: NodeWrite[]
  events: PlannedEvent[]
  historyInserts: HistoryInsert[]
  historyCloses: HistoryClose[]
  /** Nodes to enqueue as `node` jobs, due now. */
  jobs: string[]
  /** Nodes to enqueue as `node` jobs due later (an automatic retry's interval: a durable timer). */
  laterJobs: Array<{ nodeId: string; dueAt: number }>
  /** Automatic retries this plan began (telemetry). */
  autoRetried: number
  /** Nodes left FAILED (no automatic retry left, not skipped): each a callback_url event. */
  failedNodes: Array<{ nodeId: string; version: number }>
  /** The task's constants when a node's outputs changed them. */
  constants?: Record<string, Constant>
  /** The subprocesses' constants when one started or a child node's outputs changed them. */
  scopeConstants?: Record<string, Record<string, Constant>>
  /** The end event was reached: the task moves to FINISHED with these outputs. */
  finish?: { outputs: Record<string, unknown> }
  /** An activity to execute now (planActivityStart). */
  run?: RunActivity
  /** Moves the state machine refused: bugs, logged by the caller; the move was not made. */
  bugs: string[]
}

export type ActivityOutcome =
  | { status: 'finished'; outputs: Record<string, unknown> }
  /** `timedOut`: the run was stopped by its time limit (no automatic retry; maybe skipped). */
  | { status: 'failed'; error: string; timedOut?: 'forced_fail' | 'forced_fail_and_skip' }

type ConstantValues = { ok: true; values: Record<string, unknown> } | { ok: false; message: string }

/** A node's row before anything happened to it. */
export const emptyRow = (): NodeRow => ({
  state: 'READY',
  version: 0,
  loop: 0,
  retry: 0,
  skip: false,
  errorIgnored: false,
  arrivals: 0,
  expected: 0,
  attempt: 0,
  error: null,
  startedAt: null,
  finishedAt: null,
  held: false,
  wait: null,
  retryKind: null,
  autoRetries: 0,
  inputOverrides: null,
})

/** One engine line of an attempt's log. */
export const logLine = (at: number, text: string) => `[${new Date(at).toISOString()}] ${text}\n`

/** Accumulates the effects of one transaction's decisions over a working copy of the rows. */
class Planner {
  private readonly rows = new Map<string, NodeWrite>()
  private readonly plan: Plan = {
    rows: [],
    events: [],
    historyInserts: [],
    historyCloses: [],
    jobs: [],
    laterJobs: [],
    autoRetried: 0,
    failedNodes: [],
    bugs: [],
  }
  private constants: Record<string, Constant>
  private scopeConstants: Record<string, Record<string, Constant>>
  /** Resolved values by scope ('' for the task's own constants, else the SubProcess id). */
  private readonly values = new Map<string, ConstantValues>()
  private taskState: TaskState
  private readonly queue: string[] = []

  constructor(private readonly ctx: PlanContext) {
    this.constants = { ...ctx.constants }
    this.scopeConstants = { ...ctx.scopeConstants }
    this.taskState = ctx.taskState
  }

  result(): Plan {
    this.drain()
    this.plan.rows = [...this.rows.values()]
    return this.plan
  }

  // ---- rows -------------------------------------------------------------------------------

  row(nodeId: string): NodeWrite | undefined {
    const touched = this.rows.get(nodeId)
    if (touched) return touched
    const stored = this.ctx.nodes.get(nodeId)
    return stored && { ...stored, nodeId }
  }

  /**
   * The row to change: touched from now on. Created READY when there is none, with a READY event
   * unless the node starts at once (`announce` false).
   */
  private touch(nodeId: string, announce = true): NodeWrite {
    let row = this.rows.get(nodeId)
    if (!row) {
      const stored = this.ctx.nodes.get(nodeId)
      row = stored ? { ...stored, nodeId } : { ...emptyRow(), nodeId }
      this.rows.set(nodeId, row)
      if (!stored && announce) this.event(nodeId, 'READY')
    }
    return row
  }

  private event(nodeId: string, state: string, data?: unknown) {
    this.plan.events.push(
      data === undefined
        ? { type: 'node_state', nodeId, state }
        : { type: 'node_state', nodeId, state, data },
    )
  }

  /** Moves a node through core's state machine; a refused move is recorded as a bug and not made. */
  private move(row: NodeWrite, to: NodeState, data?: unknown): boolean {
    const t = transitionNode(row.state, to)
    if (!t.ok) {
      this.plan.bugs.push(`node ${row.nodeId}: ${t.message}`)
      return false
    }
    row.state = t.next
    row.version += 1
    this.event(row.nodeId, t.next, data)
    return true
  }

  // ---- constants ----------------------------------------------------------------------------

  /** The SubProcess whose child tree holds `nodeId` ('' for the task's own tree). */
  private scopeOf(nodeId: string): string {
    return this.ctx.graph.graph.parentOf?.get(nodeId) ?? ''
  }

  private constantsOf(scope: string): Record<string, Constant> {
    return scope === '' ? this.constants : (this.scopeConstants[scope] ?? {})
  }

  /**
   * The constant values of a scope (rendered with one another), or the reason they cannot be
   * resolved. `scope`: '' for the task's own constants, a SubProcess id for its child tree's.
   */
  constantValues(scope = ''): ConstantValues {
    let values = this.values.get(scope)
    if (!values) {
      values = resolveConstants(this.constantsOf(scope))
      this.values.set(scope, values)
    }
    return values
  }

  /** Sets the `component_outputs` constants (of the node's own tree) that read `nodeId`'s outputs. */
  private applyOutputs(nodeId: string, outputs: Record<string, unknown>) {
    const scope = this.scopeOf(nodeId)
    const constants = { ...this.constantsOf(scope) }
    let changed = false
    for (const [key, constant] of Object.entries(constants)) {
      if (constant.source_type !== 'component_outputs') continue
      const wanted = constant.source_info?.[nodeId]
      if (!wanted) continue
      const outputKey = wanted.find((k) => Object.hasOwn(outputs, k))
      if (outputKey === undefined) continue
      constants[key] = { ...constant, value: outputs[outputKey] }
      changed = true
    }
    if (changed) this.setConstants(scope, constants)
  }

  private setConstants(scope: string, constants: Record<string, Constant>) {
    this.values.delete(scope)
    if (scope === '') {
      this.constants = constants
      this.plan.constants = constants
    } else {
      this.scopeConstants = { ...this.scopeConstants, [scope]: constants }
      this.plan.scopeConstants = this.scopeConstants
    }
  }

  // ---- passes -------------------------------------------------------------------------------

  /**
   * Starts a pass through a node: READY → RUNNING (first pass), FINISHED → RUNNING (a loop pass),
   * or, for a RUNNING node whose worker lost its lease, a new attempt of the same pass. Opens a
   * history row. Returns false when the node cannot run (refused move, or the loop limit: then
   * the node is FAILED).
   */
  private beginPass(nodeId: string): NodeWrite | null {
    const row = this.touch(nodeId, false)
    const { now, worker } = this.ctx
    let why = ''
    if (row.state === 'RUNNING' && row.wait === 'retry') {
      // An automatic retry's interval is over: the next attempt of the same pass.
      row.wait = null
      row.attempt += 1
      row.version += 1
      row.retry += 1
      row.autoRetries += 1
      row.retryKind = 'automatic'
      this.plan.autoRetried += 1
      this.event(nodeId, 'RUNNING', { retry: 'automatic', auto_retries: row.autoRetries })
      why = ` (automatic retry ${row.autoRetries})`
    } else if (row.state === 'RUNNING') {
      why = ' (the previous attempt lost its lease)'
      this.plan.historyCloses.push({
        nodeId,
        loop: row.loop,
        attempt: row.attempt,
        state: 'FAILED',
        outputs: null,
        error: `attempt ${row.attempt} was abandoned: its worker lost the lease`,
        finishedAt: now,
        log: logLine(now, 'abandoned: the worker lost its lease'),
      })
      row.attempt += 1
      row.version += 1
    } else {
      const loopPass = row.state === 'FINISHED'
      if (!this.move(row, 'RUNNING')) return null
      row.loop = loopPass || row.loop === 0 ? row.loop + 1 : row.loop
      row.attempt = loopPass ? 1 : row.attempt + 1
      if (loopPass) {
        row.retryKind = null
        row.autoRetries = 0
        row.skip = false
      } else if (row.retryKind === 'manual') why = ' (manual retry)'
    }
    row.wait = null
    row.startedAt = now
    row.finishedAt = null
    row.error = null
    row.errorIgnored = false
    this.plan.historyInserts.push({
      nodeId,
      loop: row.loop,
      attempt: row.attempt,
      state: 'RUNNING',
      version: row.version,
      retryKind: row.attempt > 1 ? row.retryKind : null,
      skip: false,
      log: logLine(now, `attempt ${row.attempt} of pass ${row.loop} started on ${worker}${why}`),
      worker,
      inputs: null,
      outputs: null,
      error: null,
      startedAt: now,
      finishedAt: null,
    })
    if (row.loop > LOOP_LIMIT) {
      this.fail(
        row,
        `node ${nodeId} reached the loop limit: it may be passed through at most ${LOOP_LIMIT} times`,
      )
      return null
    }
    return row
  }

  /** Ends the open history row of the node's current pass (merged into its insert when both are ours). */
  private closeHistory(
    row: NodeWrite,
    state: NodeState,
    outputs: string | null,
    error: string | null,
    log?: string,
  ) {
    const open = this.plan.historyInserts.find(
      (h) =>
        h.nodeId === row.nodeId && h.loop === row.loop && h.attempt === row.attempt && h.finishedAt === null,
    )
    if (open) {
      Object.assign(open, { state, outputs, error, finishedAt: this.ctx.now })
      if (log) open.log += log
    } else {
      this.plan.historyCloses.push({
        nodeId: row.nodeId,
        loop: row.loop,
        attempt: row.attempt,
        state,
        outputs,
        error,
        finishedAt: this.ctx.now,
        ...(log ? { log } : {}),
      })
    }
  }

  private finish(row: NodeWrite, opts: { outputs?: Record<string, unknown>; error?: string } = {}) {
    const data = opts.error === undefined ? undefined : { error: opts.error, error_ignored: true }
    if (!this.move(row, 'FINISHED', data)) return false
    row.finishedAt = this.ctx.now
    row.error = opts.error ?? null
    row.errorIgnored = opts.error !== undefined
    const outputs = opts.outputs === undefined ? null : JSON.stringify(opts.outputs)
    if (outputs !== null) row.outputs = outputs
    const isActivity = this.ctx.graph.graph.nodes.get(row.nodeId)?.kind === 'activity'
    const line = opts.error === undefined ? 'finished' : `failed, error ignored: ${opts.error}`
    this.closeHistory(
      row,
      'FINISHED',
      outputs,
      row.error,
      isActivity ? logLine(this.ctx.now, line) : undefined,
    )
    return true
  }

  private fail(row: NodeWrite, error: string, log?: string) {
    if (!this.move(row, 'FAILED', { error })) return
    row.finishedAt = this.ctx.now
    row.error = error
    row.wait = null
    this.closeHistory(row, 'FAILED', null, error, log ?? logLine(this.ctx.now, `failed: ${error}`))
    this.plan.failedNodes.push({ nodeId: row.nodeId, version: row.version })
  }

  // ---- routing ------------------------------------------------------------------------------

  private follow(flowIds: readonly string[]) {
    for (const flowId of flowIds) {
      const target = this.ctx.graph.graph.flows.get(flowId)?.target
      if (target === undefined) this.plan.bugs.push(`flow ${flowId} has no target`)
      else this.queue.push(target)
    }
  }

  private drain() {
    for (let nodeId = this.queue.shift(); nodeId !== undefined; nodeId = this.queue.shift())
      this.arrive(nodeId)
  }

  /** A flow reached `nodeId`. A fork's converge gateway waits for every branch the fork started. */
  arrive(nodeId: string) {
    const node = this.ctx.graph.graph.nodes.get(nodeId)
    if (!node) {
      this.plan.bugs.push(`node ${nodeId} is not in the tree`)
      return
    }
    const forkId = node.kind === 'converge' ? this.ctx.graph.forkOf.get(nodeId) : undefined
    if (forkId !== undefined) {
      const expected = this.row(forkId)?.expected ?? 0
      const row = this.touch(nodeId)
      row.arrivals += 1
      if (row.arrivals < expected) return
      row.arrivals = 0
    }
    this.due(nodeId)
  }

  /** The SubProcesses holding `nodeId`, innermost first. */
  ancestors(nodeId: string): string[] {
    const list: string[] = []
    const parentOf = this.ctx.graph.graph.parentOf
    for (let p = parentOf?.get(nodeId); p !== undefined; p = parentOf?.get(p)) list.push(p)
    return list
  }

  /** Whether a SubProcess holding `nodeId` is paused (pause_subproc). */
  inPausedSubprocess(nodeId: string): boolean {
    return this.ancestors(nodeId).some((p) => this.row(p)?.state === 'SUSPENDED')
  }

  /** A node due inside a paused subprocess: kept, started by the subprocess's resume. */
  holdInSubprocess(nodeId: string) {
    const row = this.touch(nodeId)
    row.wait = 'subproc'
  }

  /** All inputs of the node are met: execute it inline, or schedule it as a job. */
  due(nodeId: string) {
    if (this.inPausedSubprocess(nodeId)) {
      this.holdInSubprocess(nodeId)
      return
    }
    const node = this.ctx.graph.graph.nodes.get(nodeId)
    if (node && node.kind !== 'activity' && this.taskState === 'RUNNING') this.executeInline(nodeId)
    else this.schedule(nodeId)
  }

  private schedule(nodeId: string) {
    const row = this.touch(nodeId)
    if (row.state !== 'READY' && row.state !== 'FINISHED') {
      this.plan.bugs.push(`node ${nodeId} is due again while ${row.state}`)
      return
    }
    if (row.held && row.state === 'READY') {
      // Paused by an operator before the run got here: it waits, SUSPENDED, for the node's resume.
      this.move(row, 'SUSPENDED', { held: true })
      return
    }
    this.plan.jobs.push(nodeId)
  }

  /** Events and gateways: start and finish in this transaction, then route. */
  executeInline(nodeId: string) {
    const node = this.ctx.graph.graph.nodes.get(nodeId)
    if (!node) return
    const row = this.beginPass(nodeId)
    if (!row) return
    switch (node.kind) {
      case 'start':
      case 'converge':
        if (this.finish(row)) this.follow(node.outgoing)
        return
      case 'end': {
        if (!this.finish(row)) return
        const parent = this.scopeOf(nodeId)
        if (parent === '') this.finishTask()
        else this.leaveSubprocess(parent)
        return
      }
      case 'subprocess':
        this.enterSubprocess(row)
        return
      case 'activity':
        this.plan.bugs.push(`activity ${nodeId} cannot be executed inline`)
        return
      case 'parallel':
      case 'exclusive':
      case 'conditional_parallel': {
        const values = this.constantValues(this.scopeOf(nodeId))
        if (!values.ok) {
          this.fail(row, `constants cannot be resolved: ${values.message}`)
          return
        }
        const selected = selectOutgoing(this.ctx.graph.graph, nodeId, (expr) =>
          evaluateCondition(expr, values.values),
        )
        if (!selected.ok) {
          this.fail(row, selected.message)
          return
        }
        if (node.kind !== 'exclusive') row.expected = selected.flowIds.length
        if (this.finish(row)) this.follow(selected.flowIds)
        return
      }
    }
  }

  /**
   * A SubProcess starts (it stays RUNNING while its child tree runs): the child's constants are
   * taken from its tree, each mapped one set by the SubProcess's `constants` (a value, or with
   * `hook: true` rendered with the parent's constants), then the child's start event runs.
   */
  enterSubprocess(row: NodeWrite) {
    const nodeId = row.nodeId
    const scope = this.ctx.graph.graph.scopes?.get(nodeId)
    const sub = this.ctx.graph.graph.nodes.get(nodeId)?.subprocess
    if (!scope || !sub) {
      this.fail(row, `subprocess ${nodeId} has no child tree`)
      return
    }
    const parent = this.constantValues(this.scopeOf(nodeId))
    if (!parent.ok) {
      this.fail(row, `constants cannot be resolved: ${parent.message}`)
      return
    }
    const constants: Record<string, Constant> = {}
    const given: Record<string, unknown> = {}
    for (const [key, constant] of Object.entries(scope.tree.constants)) {
      const mapped = Object.hasOwn(sub.constants, key) ? sub.constants[key] : undefined
      if (mapped === undefined) {
        constants[key] = constant
        continue
      }
      const value = mapped.hook ? renderValue(mapped.value, parent.values) : mapped.value
      constants[key] = { ...constant, value }
      given[key] = value
    }
    this.setConstants(nodeId, constants)
    const child = this.constantValues(nodeId)
    if (!child.ok) {
      this.fail(row, `the child tree's constants cannot be resolved: ${child.message}`)
      return
    }
    row.inputs = JSON.stringify(given)
    const open = this.plan.historyInserts.find((h) => h.nodeId === nodeId && h.finishedAt === null)
    if (open) open.inputs = row.inputs
    this.queue.push(scope.startId)
  }

  /** The child tree reached its end: the SubProcess finishes with the child's outputs and routes on. */
  private leaveSubprocess(subprocessId: string) {
    const scope = this.ctx.graph.graph.scopes?.get(subprocessId)
    const node = this.ctx.graph.graph.nodes.get(subprocessId)
    const row = this.row(subprocessId)
    if (!scope || !node || row?.state !== 'RUNNING') {
      this.plan.bugs.push(`subprocess ${subprocessId} ended while ${row?.state ?? 'not started'}`)
      return
    }
    const values = this.constantValues(subprocessId)
    const outputs: Record<string, unknown> = {}
    for (const key of scope.tree.outputs) {
      outputs[key] = values.ok && Object.hasOwn(values.values, key) ? values.values[key] : null
    }
    if (!this.finish(this.touch(subprocessId), { outputs })) return
    this.applyOutputs(subprocessId, outputs)
    this.follow(node.outgoing)
  }

  private finishTask() {
    const t = transitionTask(this.taskState, 'finish')
    if (!t.ok) {
      this.plan.bugs.push(`task: ${t.message}`)
      return
    }
    this.taskState = t.next
    const values = this.constantValues()
    const outputs: Record<string, unknown> = {}
    for (const key of this.ctx.graph.outputs) {
      outputs[key] = values.ok && Object.hasOwn(values.values, key) ? values.values[key] : null
    }
    this.plan.finish = { outputs }
    this.plan.events.push({ type: 'task_state', state: t.next })
  }

  // ---- activities ---------------------------------------------------------------------------

  startActivity(nodeId: string, lookup: (code: string) => ComponentModule | undefined) {
    const node = this.ctx.graph.graph.nodes.get(nodeId)
    const activity = node?.activity
    if (!node || !activity) {
      this.plan.bugs.push(`node ${nodeId} is not an activity`)
      return
    }
    const row = this.beginPass(nodeId)
    if (!row) return
    const component = lookup(activity.component.code)
    if (!component) {
      this.activityResult(nodeId, {
        status: 'failed',
        error: `component ${activity.component.code} is not registered`,
      })
      return
    }
    const values = this.constantValues(this.scopeOf(nodeId))
    if (!values.ok) {
      this.activityResult(nodeId, {
        status: 'failed',
        error: `constants cannot be resolved: ${values.message}`,
      })
      return
    }
    let rendered: Record<string, unknown>
    try {
      rendered = renderInputs(activity.component.data, values.values)
    } catch (err) {
      if (!(err instanceof RenderLimitError)) throw err
      this.activityResult(nodeId, { status: 'failed', error: err.message })
      return
    }
    const inputs = {
      ...rendered,
      ...(row.inputOverrides === null ? {} : (JSON.parse(row.inputOverrides) as Record<string, unknown>)),
    }
    row.inputs = JSON.stringify(inputs)
    const open = this.plan.historyInserts.at(-1)
    if (open && open.nodeId === nodeId) open.inputs = row.inputs
    const parsed = component.inputs.safeParse(inputs)
    if (!parsed.success) {
      this.activityResult(nodeId, { status: 'failed', error: describeIssues('input', parsed.error.issues) })
      return
    }
    this.plan.run = {
      nodeId,
      code: component.code,
      inputs: parsed.data,
      loop: row.loop,
      attempt: row.attempt,
      ...runLimit(activity),
    }
  }

  activityResult(nodeId: string, outcome: ActivityOutcome) {
    const node = this.ctx.graph.graph.nodes.get(nodeId)
    const row = this.row(nodeId)
    if (!node?.activity || !row) {
      this.plan.bugs.push(`activity ${nodeId} has no state to complete`)
      return
    }
    const write = this.touch(nodeId)
    if (outcome.status === 'finished') {
      if (!this.finish(write, { outputs: outcome.outputs })) return
      this.applyOutputs(nodeId, outcome.outputs)
      this.follow(node.outgoing)
    } else if (node.activity.error_ignorable === true) {
      if (this.finish(write, { error: outcome.error })) this.follow(node.outgoing)
    } else if (outcome.timedOut === 'forced_fail_and_skip') {
      this.fail(write, outcome.error)
      this.skipFailed(nodeId, node.outgoing, 'timeout_config forced_fail_and_skip')
    } else if (this.autoRetryLeft(node.activity, write) && outcome.timedOut === undefined) {
      // Stays RUNNING (as bk-sops shows it) while the interval runs: a job due later, no worker held.
      const interval = Number(node.activity.auto_retry?.interval ?? 0)
      write.wait = 'retry'
      write.error = outcome.error
      write.version += 1
      this.closeHistory(
        write,
        'FAILED',
        null,
        outcome.error,
        logLine(this.ctx.now, `failed: ${outcome.error}; automatic retry in ${interval} s`),
      )
      this.plan.laterJobs.push({ nodeId, dueAt: this.ctx.now + interval * 1000 })
    } else {
      this.fail(write, outcome.error)
    }
  }

  /**
   * The node's job failed too often to go on: the node ends with `error` as if its step had failed
   * (an activity honours error_ignorable; a gateway or event is FAILED). A node that had not
   * started yet (its start kept failing) is started and failed in the same plan.
   */
  giveUp(nodeId: string, error: string) {
    const node = this.ctx.graph.graph.nodes.get(nodeId)
    if (!node) {
      this.plan.bugs.push(`node ${nodeId} is not in the tree`)
      return
    }
    let row: NodeWrite | null = this.touch(nodeId, false)
    if (row.state !== 'RUNNING') row = this.beginPass(nodeId)
    if (!row) return
    if (node.kind === 'activity') this.activityResult(nodeId, { status: 'failed', error })
    else this.fail(row, error)
  }

  private autoRetryLeft(activity: Activity, row: NodeRow) {
    const policy = activity.auto_retry
    return policy?.enable === true && row.autoRetries < Number(policy.times ?? 0)
  }

  // ---- node operations (engine.md's node actions; preconditions are core's checkNodeAction) ----

  /** The node row an operation works on (created READY, without an event, for a node not yet reached). */
  opRow(nodeId: string): NodeWrite {
    return this.touch(nodeId, false)
  }

  /** An event for an operation that moves no state (callback, pause or resume of a node not yet reached). */
  opEvent(nodeId: string, state: string, data: unknown) {
    this.event(nodeId, state, data)
  }

  /** `retry`: FAILED → READY, a new version, times cleared; due now (held back by a task pause). */
  retry(nodeId: string, inputs: Record<string, unknown> | undefined) {
    const row = this.touch(nodeId)
    if (!this.move(row, 'READY', { retry: 'manual' })) return
    row.retry += 1
    row.retryKind = 'manual'
    row.startedAt = null
    row.finishedAt = null
    row.error = null
    if (inputs !== undefined) {
      const before = row.inputOverrides === null ? {} : (JSON.parse(row.inputOverrides) as object)
      row.inputOverrides = JSON.stringify({ ...before, ...inputs })
    }
    this.plan.jobs.push(nodeId)
  }

  /** `skip`, `skip_exg`, `skip_cpg`: FAILED → FINISHED with skip, then on along `flowIds`. */
  skipFailed(nodeId: string, flowIds: readonly string[], why: string) {
    const row = this.touch(nodeId)
    if (!this.move(row, 'FINISHED', { skip: true })) return
    this.plan.failedNodes = this.plan.failedNodes.filter((f) => f.nodeId !== nodeId)
    row.skip = true
    row.finishedAt = this.ctx.now
    const node = this.ctx.graph.graph.nodes.get(nodeId)
    if (node?.kind === 'conditional_parallel' || node?.kind === 'parallel') row.expected = flowIds.length
    if (node?.kind === 'activity') {
      this.plan.historyCloses.push({
        nodeId,
        loop: row.loop,
        attempt: row.attempt,
        state: 'FAILED',
        outputs: null,
        error: row.error,
        finishedAt: this.ctx.now,
        log: logLine(this.ctx.now, `skipped: ${why}`),
      })
    }
    this.follow(flowIds)
  }

  /** `forced_fail`: RUNNING → FAILED with the operator's message (the caller drops its jobs and aborts it). */
  forcedFail(nodeId: string, message: string) {
    this.fail(this.touch(nodeId), message, logLine(this.ctx.now, `aborted: ${message}`))
  }

  /** `pause`: the node is held; reached already (`reached`: its job was dropped) → SUSPENDED. */
  hold(nodeId: string, reached: boolean) {
    const row = this.touch(nodeId, false)
    row.held = true
    row.version += 1
    if (reached) this.move(row, 'SUSPENDED', { held: true })
    else this.event(nodeId, row.state, { held: true })
  }

  /** `resume` of a held node: released; SUSPENDED (reached) → READY and due now. */
  release(nodeId: string) {
    const row = this.touch(nodeId, false)
    row.held = false
    if (row.state === 'SUSPENDED') {
      if (this.move(row, 'READY', { held: false })) this.plan.jobs.push(nodeId)
    } else {
      row.version += 1
      this.event(nodeId, row.state, { held: false })
    }
  }

  /** `callback`: the waiting node's callback is taken (the caller enqueues its delivery). */
  takeCallback(nodeId: string) {
    const row = this.touch(nodeId, false)
    row.wait = null
    row.version += 1
    this.event(nodeId, row.state, { callback: true })
  }

  /** `pause_subproc`: RUNNING → SUSPENDED; from now on nothing starts inside it. */
  pauseSubprocess(nodeId: string) {
    this.move(this.touch(nodeId), 'SUSPENDED', { subprocess: 'paused' })
  }

  /** `resume_subproc`: SUSPENDED → RUNNING; what its pause held back is scheduled (unless a paused inner one holds it). */
  resumeSubprocess(nodeId: string) {
    if (!this.move(this.touch(nodeId), 'RUNNING', { subprocess: 'resumed' })) return
    for (const [id, stored] of this.ctx.nodes) {
      if (stored.wait !== 'subproc' || !this.ancestors(id).includes(nodeId)) continue
      if (this.inPausedSubprocess(id)) continue
      const row = this.touch(id, false)
      row.wait = null
      this.schedule(id)
    }
  }

  /**
   * `retry_subprocess`: the child tree runs again from its start. Its FAILED nodes go back to
   * READY, what was held or counted in it is cleared (the caller drops its jobs), and the
   * SubProcess starts a new attempt with a new version: its child's constants are taken afresh.
   */
  retrySubprocess(nodeId: string) {
    for (const [id, stored] of this.ctx.nodes) {
      if (!this.ancestors(id).includes(nodeId)) continue
      const row = this.touch(id, false)
      if (stored.state === 'FAILED') {
        this.move(row, 'READY', { retry: 'subprocess' })
        row.error = null
      } else if (
        this.ctx.graph.graph.nodes.get(id)?.kind === 'subprocess' &&
        (stored.state === 'RUNNING' || stored.state === 'SUSPENDED')
      ) {
        // An inner subprocess that had not ended starts over too.
        if (stored.state === 'RUNNING') this.move(row, 'SUSPENDED')
        this.move(row, 'READY', { retry: 'subprocess' })
        this.plan.historyCloses.push({
          nodeId: id,
          loop: row.loop,
          attempt: row.attempt,
          state: 'FAILED',
          outputs: null,
          error: `its subprocess ${nodeId} was retried`,
          finishedAt: this.ctx.now,
        })
      }
      if (row.wait === 'subproc') row.wait = null
      row.arrivals = 0
    }
    const row = this.touch(nodeId)
    row.retry += 1
    row.retryKind = 'manual'
    if (row.state === 'FAILED') {
      if (this.move(row, 'READY', { retry: 'subprocess' })) this.due(nodeId)
      return
    }
    // RUNNING (a node in it failed): a new attempt of this pass, entered again now.
    this.closeHistory(
      row,
      'FAILED',
      null,
      'a node in the subprocess failed',
      logLine(this.ctx.now, 'retried'),
    )
    row.attempt += 1
    row.version += 1
    row.startedAt = this.ctx.now
    this.event(nodeId, 'RUNNING', { retry: 'subprocess' })
    this.plan.historyInserts.push({
      nodeId,
      loop: row.loop,
      attempt: row.attempt,
      state: 'RUNNING',
      version: row.version,
      retryKind: 'manual',
      skip: false,
      log: logLine(this.ctx.now, `attempt ${row.attempt} of pass ${row.loop} started (retry_subprocess)`),
      worker: this.ctx.worker,
      inputs: null,
      outputs: null,
      error: null,
      startedAt: this.ctx.now,
      finishedAt: null,
    })
    this.enterSubprocess(row)
  }

  revokeAll() {
    for (const [nodeId, stored] of this.ctx.nodes) {
      if (stored.state !== 'READY' && stored.state !== 'RUNNING' && stored.state !== 'SUSPENDED') continue
      const row = this.touch(nodeId)
      if (!this.move(row, 'REVOKED')) continue
      row.finishedAt = this.ctx.now
    }
  }
}

/** How long one run of the activity may take: `timeout_config` (bk-sops) or the older `timeout`. */
function runLimit(activity: {
  timeout?: number | null | undefined
  timeout_config?: { enable?: boolean; seconds?: number; action?: string } | null | undefined
}): Pick<RunActivity, 'timeoutMs' | 'timeoutAction'> {
  const tc = activity.timeout_config
  if (tc?.enable === true && tc.seconds !== undefined) {
    return {
      timeoutMs: tc.seconds * 1000,
      timeoutAction: tc.action === 'forced_fail_and_skip' ? 'forced_fail_and_skip' : 'forced_fail',
    }
  }
  return activity.timeout ? { timeoutMs: activity.timeout * 1000 } : {}
}

/** `component.data` rendered with the constants: `{hook, value}` → the value, `${x}` references resolved. */
export function renderInputs(
  data: Readonly<Record<string, { hook: boolean; value?: unknown }>>,
  values: Record<string, unknown>,
): Record<string, unknown> {
  const inputs: Record<string, unknown> = {}
  let total = 0
  for (const [key, item] of Object.entries(data)) {
    try {
      inputs[key] = renderValue(item.value, values)
    } catch (err) {
      if (err instanceof RenderLimitError) throw new RenderLimitError(`input ${key} ${err.message}`)
      throw err
    }
    total += sizeWithin(inputs[key], CONSTANT_LIMITS.inputsChars)
    if (total > CONSTANT_LIMITS.inputsChars)
      throw new RenderLimitError(
        `inputs render to more than ${CONSTANT_LIMITS.inputsChars} characters in all (the limit), passed at ${key}`,
      )
  }
  return inputs
}

/** `input bk_timing: expected number, received string` — naming each field that failed. */
export function describeIssues(
  what: 'input' | 'output',
  issues: readonly { path: readonly PropertyKey[]; message: string }[],
) {
  return issues
    .map((i) =>
      i.path.length > 0 ? `${what} ${i.path.map(String).join('.')}: ${i.message}` : `${what}s: ${i.message}`,
    )
    .join('; ')
}

// ---- the decisions --------------------------------------------------------------------------

/** The task just moved to RUNNING: run the start event and whatever follows it inline. */
export function planTaskStart(ctx: PlanContext): Plan {
  const p = new Planner(ctx)
  p.due(ctx.graph.graph.startId)
  return p.result()
}

/** A held job for an event or gateway was claimed while the task is RUNNING: execute it now. */
export function planDueNode(ctx: PlanContext, nodeId: string): Plan {
  const p = new Planner(ctx)
  p.executeInline(nodeId)
  return p.result()
}

/**
 * An activity's job was claimed while the task is RUNNING: move it to RUNNING and render and
 * validate its inputs. `plan.run` says what to execute; without it the node already ended
 * (loop limit, unknown component, invalid inputs) and the plan holds what follows.
 */
export function planActivityStart(
  ctx: PlanContext,
  nodeId: string,
  lookup: (code: string) => ComponentModule | undefined,
): Plan {
  const p = new Planner(ctx)
  p.startActivity(nodeId, lookup)
  return p.result()
}

/** A running activity finished or failed: record it, set constants from its outputs, route on. */
export function planActivityResult(ctx: PlanContext, nodeId: string, outcome: ActivityOutcome): Plan {
  const p = new Planner(ctx)
  p.activityResult(nodeId, outcome)
  return p.result()
}

/** The node's job failed too often (a poison job): the node ends with `error`, see Planner.giveUp. */
export function planGiveUp(ctx: PlanContext, nodeId: string, error: string): Plan {
  const p = new Planner(ctx)
  p.giveUp(nodeId, error)
  return p.result()
}

/** A node job claimed inside a paused subprocess: not started, held until the subprocess's resume. */
export function planHoldInSubprocess(ctx: PlanContext, nodeId: string): Plan | null {
  const p = new Planner(ctx)
  if (!p.inPausedSubprocess(nodeId)) return null
  p.holdInSubprocess(nodeId)
  return p.result()
}

/** The task was revoked: every READY, RUNNING or SUSPENDED node becomes REVOKED. */
export function planRevoke(ctx: PlanContext): Plan {
  const p = new Planner(ctx)
  p.revokeAll()
  return p.result()
}

/** What a node action takes beyond the node (validated by the caller). */
export type NodeActionInput =
  | { action: 'retry'; inputs?: Record<string, unknown> | undefined }
  | { action: 'skip' }
  | { action: 'skip_exg'; flowId: string }
  | { action: 'skip_cpg'; flowIds: readonly string[] }
  | { action: 'forced_fail'; operator: string }
  | { action: 'callback' }
  | { action: 'pause'; reached: boolean }
  | { action: 'resume' }
  | { action: 'pause_subproc' }
  | { action: 'resume_subproc' }
  | { action: 'retry_subprocess' }

/**
 * A node action whose preconditions held (core's checkNodeAction): its rows, events, history and
 * jobs. The one dispatch of node actions; the subprocess actions (pause_subproc, resume_subproc,
 * retry_subprocess) are further cases here when subprocesses come.
 */
export function planNodeAction(ctx: PlanContext, nodeId: string, input: NodeActionInput): Plan {
  const p = new Planner(ctx)
  const node = ctx.graph.graph.nodes.get(nodeId)
  switch (input.action) {
    case 'retry':
      p.retry(nodeId, input.inputs)
      break
    case 'skip':
      p.skipFailed(nodeId, node?.outgoing ?? [], 'skip')
      break
    case 'skip_exg':
      p.skipFailed(nodeId, [input.flowId], `skip_exg along ${input.flowId}`)
      break
    case 'skip_cpg':
      p.skipFailed(nodeId, input.flowIds, `skip_cpg along ${input.flowIds.join(', ')}`)
      break
    case 'forced_fail':
      p.forcedFail(nodeId, `The node has been terminated by ${input.operator}.`)
      break
    case 'callback':
      p.takeCallback(nodeId)
      break
    case 'pause':
      p.hold(nodeId, input.reached)
      break
    case 'resume':
      if (ctx.nodes.get(nodeId)?.state === 'RUNNING') p.takeCallback(nodeId)
      else p.release(nodeId)
      break
    case 'pause_subproc':
      p.pauseSubprocess(nodeId)
      break
    case 'resume_subproc':
      p.resumeSubprocess(nodeId)
      break
    case 'retry_subprocess':
      p.retrySubprocess(nodeId)
      break
  }
  return p.result()
}
