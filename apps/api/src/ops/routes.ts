import type { FastifyInstance } from 'fastify'
import type { Readiness } from './health'

export interface OpsEndpoints {
  readiness: () => Promise<Readiness>
  metrics: () => Promise<{ contentType: string; body: string }>
}

/**
 * The operations endpoints, unauthenticated and cheap: /healthz (the process is up and its event
 * loop answers), /readyz (send it work: 200, or 503 naming what is wrong) and /metrics
 * (Prometheus).
 */
export function registerOpsRoutes(app: FastifyInstance, ops: OpsEndpoints) {
  app.get('/healthz', async () => ({ status: 'ok' }))
  app.get('/readyz', async (_req, reply) => {
    const r = await ops.readiness()
    return reply
      .status(r.ready ? 200 : 503)
      .send({ status: r.ready ? 'ready' : 'not ready', checks: r.checks })
  })
  app.get('/metrics', async (_req, reply) => {
    const m = await ops.metrics()
    return reply.header('content-type', m.contentType).send(m.body)
  })
}
