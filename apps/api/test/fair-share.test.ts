import { createTreeBuilder, parallelTree } from '@stdops/core/testing'
import { sql } from '@stdops/db'
import { afterEach, describe, expect, it } from 'vitest'
import { createTemplate, legacyClient, ok } from './fixtures'
import { type Harness, makeIdentity, startHarness, waitFor } from './harness'
import { type SlowServer, startSlowServer } from './procs'

/**
 * Fair sharing between projects: one project's slow nodes take at most its share of a worker's
 * slots (STDOPS_PROJECT_CONCURRENCY, by default the concurrency minus an eighth: 28 of 32), so
 * another project's task still runs at once.
 */

let h: Harness | null = null
let slow: SlowServer | null = null
afterEach(async () => {
  await slow?.close()
  slow = null
  await h?.close()
  h = null
})

const httpData = (url: string) => ({
  bk_http_request_method: { hook: false, value: 'GET' },
  bk_http_request_url: { hook: false, value: url },
  bk_http_timeout: { hook: false, value: 60 },
})

async function runningNodes(taskId: number): Promise<number> {
  const [row] = await h!.deps.db.query<{ n: number | string }>(
    sql`SELECT COUNT(*) AS n FROM node_states WHERE task_id = ${taskId} AND state = ${'RUNNING'}`,
  )
  return Number(row?.n ?? 0)
}

describe('fair sharing between projects', () => {
  it("a greedy project's 32 slow HTTP branches leave room: another project's short task finishes on time", async () => {
    h = await startHarness({ env: { STDOPS_OUTBOUND_ALLOW: '127.0.0.1' } })
    slow = await startSlowServer()
    const greedy = legacyClient(h, await makeIdentity(h.deps))
    const other = legacyClient(h, await makeIdentity(h.deps))

    // 32 branches, each a call that answers after 60 s: more than one project's share of 32 slots.
    const wide = await createTemplate(
      greedy,
      parallelTree(32, 'bk_http_request', httpData(`${slow.url}?n=greedy&ms=60000`)),
    )
    const greedyTask = ok<{ task_id: number }>(
      await greedy.post('create_and_start_task', { template_id: wide, name: 'greedy' }),
    ).task_id
    // Its share of the worker's slots is taken: 28 calls are out and held.
    await waitFor(async () => ((slow!.hits.get('greedy') ?? 0) >= 28 ? true : undefined), 20_000)

    const b = createTreeBuilder()
    const call = b.activity('bk_http_request', { data: httpData(`${slow.url}?n=quick&ms=100`) })
    b.chain(b.startId, call, b.endId)
    const short = await createTemplate(other, b.build())
    const sent = Date.now()
    const otherTask = ok<{ task_id: number }>(
      await other.post('create_and_start_task', { template_id: short, name: 'short' }),
    ).task_id
    const finished = await waitFor(async () => {
      const t = await h!.deps.db.prisma.task.findUniqueOrThrow({ where: { id: otherTask } })
      return t.state === 'FINISHED' ? t : undefined
    }, 20_000)
    // Finished while every greedy call was still out (they answer after 60 s): it did not wait for them.
    expect(Date.now() - sent).toBeLessThan(15_000)
    expect(Number(finished.finishedAt) - Number(finished.startedAt)).toBeLessThan(10_000)
    expect(slow.hits.get('quick')).toBe(1)

    // The greedy project never held more than its share, and the rest of its branches wait their turn.
    expect(slow.hits.get('greedy')).toBe(28)
    expect(await runningNodes(greedyTask)).toBe(28)
    const greedyRow = await h.deps.db.prisma.task.findUniqueOrThrow({ where: { id: greedyTask } })
    expect(greedyRow.state).toBe('RUNNING')
  }, 60_000)
})
