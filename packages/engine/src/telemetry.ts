import type { NodeState } from '@stdops/core'
import type { Executor } from '@stdops/db'
import type { Plan, PlanContext } from './plan'
import type { LockedTask } from './store'
import type { ComponentRegistry } from './types'

/**
 * What the engine reports for metrics. The engine only calls it; the host implements it (the
 * server, with Prometheus counters and histograms), so the engine imports no metrics library.
 * Every report about a state change is made once that change committed. Label-like fields come
 * from small fixed sets: states, node types, registered component codes (`other` for any code
 * outside the registry), causes.
 */
export interface EngineTelemetry {
  /**
   * A node moved from `from` (null: the node had no row yet) to `to`. `durationMs` is set when it
   * ended (FINISHED, FAILED, REVOKED) after having started.
   */
  nodeTransition(e: {
    from: NodeState | null
    to: NodeState
    nodeType: string
    component: string
    durationMs: number | null
  }): void
  /** The task ended: `durationMs` from its start, null when it never started. */
  taskEnded(e: { state: 'FINISHED' | 'REVOKED'; durationMs: number | null }): void
  /** The worker claimed jobs; each latency is the claim's time minus the job's due time. */
  claimed(latenciesMs: number[]): void
  /** A task operation was decided: `ok` (applied), `refused` (invalid in the task's state), or `error`. */
  operation(e: { action: string; result: 'ok' | 'refused' | 'error'; durationMs: number }): void
  /** Something went wrong in the engine, by cause (claim, job, lease_renewal, notify, fenced, bug, loop). */
  error(cause: EngineErrorCause): void
  /** A failed node was retried: by an operator (`manual`) or by its retry policy (`automatic`). */
  nodeRetried(kind: 'manual' | 'automatic'): void
}

export type EngineErrorCause = 'claim' | 'job' | 'lease_renewal' | 'notify' | 'fenced' | 'bug' | 'loop'

export const NO_TELEMETRY: EngineTelemetry = {
  nodeTransition: () => {},
  taskEnded: () => {},
  claimed: () => {},
  operation: () => {},
  error: () => {},
  nodeRetried: () => {},
}

const ENDED: ReadonlySet<string> = new Set(['FINISHED', 'FAILED', 'REVOKED'])

/**
 * Reports what an applied plan did, after `tx` commits: each node state event as a transition
 * (from the row as the plan read it, then from the previous event of the same node), a node's
 * duration when it ended, and the task's end when the plan finished it.
 */
export function reportPlan(
  telemetry: EngineTelemetry,
  registry: Pick<ComponentRegistry, 'has'>,
  tx: Executor,
  ctx: Pick<PlanContext, 'graph' | 'nodes'>,
  plan: Plan,
  task: Pick<LockedTask, 'startedAt'>,
  at: number,
): void {
  if (telemetry === NO_TELEMETRY) return
  const last = new Map<string, NodeState | null>()
  const rows = new Map(plan.rows.map((r) => [r.nodeId, r]))
  const reports: Array<Parameters<EngineTelemetry['nodeTransition']>[0]> = []
  for (const e of plan.events) {
    if (e.type !== 'node_state' || !e.nodeId) continue
    const to = e.state as NodeState
    const from = last.has(e.nodeId) ? last.get(e.nodeId)! : (ctx.nodes.get(e.nodeId)?.state ?? null)
    last.set(e.nodeId, to)
    const node = ctx.graph.graph.nodes.get(e.nodeId)
    const code = node?.activity?.component.code
    const row = rows.get(e.nodeId)
    const startedAt = row?.startedAt ?? ctx.nodes.get(e.nodeId)?.startedAt ?? null
    reports.push({
      from,
      to,
      nodeType: node?.kind ?? 'unknown',
      component: code === undefined ? 'none' : registry.has(code) ? code : 'other',
      durationMs:
        ENDED.has(to) && startedAt !== null ? Math.max(0, (row?.finishedAt ?? at) - startedAt) : null,
    })
  }
  const finished = plan.finish !== undefined
  if (reports.length === 0 && !finished) return
  tx.afterCommit(() => {
    for (const r of reports) telemetry.nodeTransition(r)
    if (finished)
      telemetry.taskEnded({
        state: 'FINISHED',
        durationMs: task.startedAt === null ? null : at - task.startedAt,
      })
  })
}
