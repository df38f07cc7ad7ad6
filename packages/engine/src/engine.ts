import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import pino from 'pino'
import { createComponentRegistry } from './components'
import { localTimeZone } from './cron'
import { createOutboundClient } from './outbound'
import { createProtocol, type Effect } from './protocol'
import { createScheduler } from './schedules'
import { countRunningNodes, GraphCache } from './store'
import { NO_TELEMETRY } from './telemetry'
import type { TransitionEnv } from './transitions'
import type { Engine, EngineDeps } from './types'
import { createWorker, REVOKE_CHANNEL } from './worker'

/**
 * A project's share of a worker's slots unless set: seven eighths of them (28 of 32), so that one
 * project's slow nodes always leave room for the others' (at least 1).
 */
export const defaultProjectConcurrency = (concurrency: number) =>
  Math.max(1, concurrency - Math.ceil(concurrency / 8))

/**
 * The engine: a worker (worker.ts) that claims and runs due work, transitions (transitions.ts)
 * that write what each step leads to, and the operation protocol (protocol.ts) through which
 * callers change a task. This file only wires them together.
 */
export function createEngine(deps: EngineDeps): Engine {
  const { db } = deps
  const logger = deps.logger ?? pino({ level: 'silent' })
  const now = deps.now ?? Date.now
  const concurrency = Math.max(1, deps.concurrency ?? 32)
  const env: TransitionEnv = {
    registry: createComponentRegistry(deps.components ?? []),
    graphs: new GraphCache(),
    workerId: deps.workerId ?? `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`,
    logger,
    telemetry: deps.telemetry ?? NO_TELEMETRY,
    now,
  }
  const ownHttp = deps.outbound ? null : createOutboundClient()
  const http = deps.outbound ?? ownHttp!
  const worker = createWorker({
    db,
    env,
    logger,
    leaseMs: deps.leaseMs ?? 30_000,
    pollMs: deps.pollMs ?? 200,
    revokeGraceMs: deps.revokeGraceMs ?? 10_000,
    concurrency,
    projectConcurrency: deps.projectConcurrency ?? defaultProjectConcurrency(concurrency),
    http,
    secrets: deps.secrets,
    callbackRetryMs: deps.callbackRetryMs ?? 1000,
    callbackTimeoutMs: deps.callbackTimeoutMs ?? 10_000,
    jobRetryMs: deps.jobRetryMs ?? 1000,
    now,
    fireDueSchedules: () => scheduler?.fireDue() ?? Promise.resolve(0),
  })

  /** After an operation committed: wake workers here and elsewhere; abort what a revoke stopped. */
  const afterCommit = (effects: readonly Effect[]) => {
    for (const effect of effects) {
      switch (effect.kind) {
        case 'wake':
          worker.notifyWork(effect.taskId)
          break
        case 'abort':
          worker.abortTask(effect.taskId, effect.reason)
          db.notify(REVOKE_CHANNEL, String(effect.taskId)).catch((err) => {
            logger.warn({ err }, 'notify failed')
            env.telemetry.error('notify')
          })
          break
        case 'abortNode':
          worker.abortNode(effect.taskId, effect.nodeId, effect.reason)
          db.notify(REVOKE_CHANNEL, `${effect.taskId} ${effect.nodeId}`).catch((err) => {
            logger.warn({ err }, 'notify failed')
            env.telemetry.error('notify')
          })
          break
      }
    }
  }

  const protocol = createProtocol({ db, env, now, afterCommit })

  // Periodic and clocked tasks: fired by the worker's loop through the API's hook (none without it).
  const scheduler = deps.startScheduledTask
    ? createScheduler({
        db,
        worker: env.workerId,
        timeZone: deps.timeZone ?? localTimeZone(),
        now,
        logger,
        start: deps.startScheduledTask,
        afterCommit,
        fault: deps.fault,
      })
    : null

  return {
    components: env.registry,
    get mode() {
      return worker.mode
    },
    get loopAt() {
      return worker.loopAt
    },
    workerId: env.workerId,
    operateTask: protocol.operateTask,
    operateTaskInTx: protocol.operateTaskInTx,
    operateNode: protocol.operateNode,
    afterCommit,
    runningNodes: countRunningNodes,
    startWorker: worker.start,
    stop: async (opts) => {
      await worker.stop(opts)
      await ownHttp?.close()
    },
  }
}
