import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import pino from 'pino'
import { createComponentRegistry } from './components'
import { countRunningNodes, GraphCache } from './store'
import { revokeRun, startRun, type TransitionEnv } from './transitions'
import type { Engine, EngineDeps, TaskAction } from './types'
import { createWorker, REVOKE_CHANNEL } from './worker'

/**
 * The engine: a worker (worker.ts) that claims and runs due work, and transitions
 * (transitions.ts) that write what each step leads to, called by the worker and, inside the
 * API's transactions, by the hooks below. This file only wires them together.
 */
export function createEngine(deps: EngineDeps): Engine {
  const { db } = deps
  const logger = deps.logger ?? pino({ level: 'silent' })
  const now = deps.now ?? Date.now
  const env: TransitionEnv = {
    registry: createComponentRegistry(deps.components ?? []),
    graphs: new GraphCache(),
    workerId: deps.workerId ?? `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`,
    logger,
  }
  const worker = createWorker({
    db,
    env,
    logger,
    leaseMs: deps.leaseMs ?? 30_000,
    pollMs: deps.pollMs ?? 200,
    revokeGraceMs: deps.revokeGraceMs ?? 10_000,
    concurrency: Math.max(1, deps.concurrency ?? 32),
    fetch: deps.fetch ?? globalThis.fetch.bind(globalThis),
    callbackRetryMs: deps.callbackRetryMs ?? 1000,
    callbackTimeoutMs: deps.callbackTimeoutMs ?? 10_000,
    now,
  })

  const afterCommit = (taskId: number, action: TaskAction) => {
    switch (action) {
      case 'start':
      case 'resume':
        worker.notifyWork(taskId)
        return
      case 'pause':
        return
      case 'revoke':
        worker.abortTask(taskId, `task ${taskId} was revoked`)
        db.notify(REVOKE_CHANNEL, String(taskId)).catch((err) => logger.warn({ err }, 'notify failed'))
        worker.notifyWork(taskId)
        return
    }
  }

  return {
    components: env.registry,
    get mode() {
      return worker.mode
    },
    workerId: env.workerId,
    onStarted: (tx, taskId, at) => startRun(env, tx, taskId, at),
    writesInTransaction: (action) => action === 'start' || action === 'revoke',
    onPaused: async () => {
      // Nothing to write: node starts check the task's state under its row lock, and the claim
      // filter leaves the task's node jobs alone until it is RUNNING again.
    },
    onResumed: async () => {
      // The held jobs are rows already; afterCommit wakes the workers.
    },
    onRevoked: (tx, taskId, at) => revokeRun(env, tx, taskId, at),
    afterCommit,
    runningNodes: countRunningNodes,
    startWorker: worker.start,
    stop: worker.stop,
  }
}
