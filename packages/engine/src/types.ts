import type { Db, Executor } from '@stdops/db'
import type { Logger } from 'pino'
import type { z } from 'zod'
import type { OutboundClient } from './outbound'
import type {
  Effect,
  NodeOperationRequest,
  NodeOperationResult,
  OperationResult,
  TaskOperationRequest,
} from './protocol'
import type { StartScheduledTask } from './schedules'
import type { SecretBox } from './secrets'
import type { EngineTelemetry } from './telemetry'

/** What a component's `execute` or `schedule` step comes back with. */
export type ComponentResult<Out = Record<string, unknown>> =
  | { status: 'finished'; outputs: Out }
  | { status: 'failed'; error: string }
  /** Wait until `until` (epoch ms): a durable timer row; no worker is held meanwhile. */
  | { status: 'wait'; until: number }
  /** Wait for a node callback (operate_node `callback`, a later release). */
  | { status: 'callback' }

export interface ComponentContext {
  /** Aborted when the task is revoked or the worker stops: stop promptly (within 1 s). */
  signal: AbortSignal
  taskId: number
  nodeId: string
  now(): number
  logger: Logger
  /**
   * A line for this attempt's log (get_task_node_log). Kept per attempt, bounded: past
   * LOG_LIMITS (lines or characters) further lines are counted and dropped, and the log ends
   * with one line saying how many. Written when the step ends and every few seconds meanwhile.
   */
  log(line: string): void
  /**
   * The outbound HTTP client for calls made on the task's behalf: it refuses non-public addresses,
   * caps the response and the timeout (see outbound.ts). Use it rather than fetch.
   */
  http: OutboundClient
  /** For `schedule` after a node callback: the `callback_data` it was delivered with. */
  callbackData?: unknown
}

/**
 * A component: the code an activity runs, found by `component.code`. `inputs` validates (and may
 * coerce) the rendered `component.data` values before `execute`; `outputs` validates what a
 * finished step returns. `schedule` is the step run when a `wait` timer is due or a callback
 * arrives; without it a due timer finishes the node with no outputs.
 */
export interface ComponentModule<In extends z.ZodType = z.ZodType, Out extends z.ZodType = z.ZodType> {
  code: string
  name?: string
  version?: string
  inputs: In
  outputs: Out
  execute(inputs: z.output<In>, ctx: ComponentContext): Promise<ComponentResult<z.input<Out>>>
  schedule?(inputs: z.output<In>, ctx: ComponentContext): Promise<ComponentResult<z.input<Out>>>
}

export interface ComponentRegistry {
  has(code: string): boolean
  get(code: string): ComponentModule | undefined
  list(): ComponentModule[]
}

export interface EngineDeps {
  db: Db
  logger?: Logger
  /** Extra components, registered beside the built-ins (a code may not be registered twice). */
  components?: ComponentModule[]
  /** Default `${hostname}:${pid}:${random}`. */
  workerId?: string
  /** Lease on claimed work, renewed while a node runs. Default 30000. */
  leaseMs?: number
  /** Idle poll interval; notifications wake the worker early. Default 200. */
  pollMs?: number
  /** A component that ignores abort is abandoned this long after revoke. Default 10000. */
  revokeGraceMs?: number
  /** Nodes executed at once by this process's worker. Default 32. */
  concurrency?: number
  /**
   * At most this many of this worker's slots run one project's jobs at once, and claims take turns
   * between projects (the least served first). Default: concurrency minus an eighth (28 of 32).
   */
  projectConcurrency?: number
  /**
   * The client for bk_http_request and callback_url (the caller closes it). Default: one with the
   * default limits that reaches public addresses only, closed when the engine stops.
   */
  outbound?: OutboundClient
  /**
   * Opens secret constants (sealed with the server key) for the component step that uses them, and
   * scrubs them from what the step returns. Without it sealed values stay sealed.
   */
  secrets?: SecretBox
  /** callback_url retry backoff: base × 2^(attempt−1) ms, capped at 60 s. Default 1000. */
  callbackRetryMs?: number
  /** callback_url request timeout. Default 10000. */
  callbackTimeoutMs?: number
  /**
   * A job whose transaction failed is tried again after base × 2^(failures − 1) ms (at most a
   * minute); after 8 failures (about 2 minutes at the default) its node ends with the error. Default 1000.
   */
  jobRetryMs?: number
  /** The clock (epoch ms). Default Date.now. */
  now?: () => number
  /**
   * Creates and starts a periodic or clocked task's task inside the firing's transaction (the API's
   * createTask use case). Without it the worker fires no schedules.
   */
  startScheduledTask?: StartScheduledTask
  /** IANA time zone of cron schedules and of periodic tasks' task names. Default: the process's (`TZ`). */
  timeZone?: string
  /** Tests only (a fault-injection hook): called at named points of a firing. Never set in production. */
  fault?: (point: string) => void
  /** Where metrics are reported (node transitions, claims, operations, errors). Default: nowhere. */
  telemetry?: EngineTelemetry
}

export type WorkerMode = 'idle' | 'starting' | 'running' | 'draining' | 'stopped'

export interface Engine {
  components: ComponentRegistry
  /** The worker's mode: idle before startWorker, then starting → running → draining → stopped. */
  readonly mode: WorkerMode
  readonly workerId: string
  /** When the worker's claim loop last went round (epoch ms); null before it started. */
  readonly loopAt: number | null
  /**
   * A task operation (start, pause, resume, revoke) through the operation protocol, in its own
   * transaction; its effects (wake-ups, aborts) are performed after the commit.
   */
  operateTask(req: TaskOperationRequest): Promise<OperationResult>
  /**
   * A node action (retry, skip, skip_exg, skip_cpg, forced_fail, callback, pause, resume) through
   * the same protocol, in its own transaction; a refusal is a typed error carrying its code, and
   * writes nothing.
   */
  operateNode(req: NodeOperationRequest): Promise<NodeOperationResult>
  /**
   * The same inside the caller's transaction (creating and starting a task at once). The caller
   * passes `result.effects` to afterCommit once its transaction committed.
   */
  operateTaskInTx(tx: Executor, req: TaskOperationRequest): Promise<OperationResult>
  /** Wakes workers here and in other processes; aborts running components of a revoked task. */
  afterCommit(effects: readonly Effect[]): void
  runningNodes(exec: Executor, taskId: number): Promise<number>
  startWorker(): Promise<void>
  stop(opts?: { drainMs?: number }): Promise<void>
}
