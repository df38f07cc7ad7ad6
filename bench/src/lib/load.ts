/**
 * Load drivers for the control path: autocannon with one task per connection (each connection
 * alternates pause and resume on its own task, so every request should succeed), and the same
 * loop through the tRPC client.
 */
import type { AppRouter } from '@stdops/api'
import { createTRPCClient, httpLink } from '@trpc/client'
import autocannon, { type AutocannonRequest } from 'autocannon'
import { summarize } from './stats'

export interface LoadResult {
  connections: number
  seconds: number
  requests: number
  rps: number
  p50: number
  p99: number
  /** Replies that were not a success (non-zero `code`, HTTP status ≠ 200, or a thrown tRPC error). */
  errors: number
  /** Connection errors and timeouts. */
  transportErrors: number
  firstError?: string
  /** Raw latencies (ms), for merging halves; not written to the results. */
  latencies?: number[]
}

/** One result from several runs of the same measurement (their requests and time added up). */
export function mergeLoads(parts: LoadResult[]): LoadResult {
  const latencies = parts.flatMap((p) => p.latencies ?? [])
  const seconds = parts.reduce((a, p) => a + p.seconds, 0)
  const s = summarize(latencies)
  const firstError = parts.find((p) => p.firstError)?.firstError
  return {
    connections: parts[0]!.connections,
    seconds,
    requests: latencies.length,
    rps: latencies.length / seconds,
    p50: s.p50,
    p99: s.p99,
    errors: parts.reduce((a, p) => a + p.errors, 0),
    transportErrors: parts.reduce((a, p) => a + p.transportErrors, 0),
    ...(firstError === undefined ? {} : { firstError }),
  }
}

const CODE = /"code":(-?\d+)/

/**
 * Drives `connections` connections for `seconds`; `requestsFor(i)` gives connection i its own
 * request sequence (autocannon loops over it). Latencies are taken from the client's `response`
 * events (float milliseconds: autocannon's own histogram has 1 ms resolution).
 */
async function cannon(
  base: string,
  connections: number,
  seconds: number,
  requestsFor: (i: number, fail: (why: string) => void) => AutocannonRequest[],
): Promise<LoadResult> {
  const latencies: number[] = []
  let errors = 0
  let firstError: string | undefined
  const fail = (why: string) => {
    errors++
    firstError ??= why
  }
  let next = 0
  const instance = autocannon({
    url: base,
    connections,
    duration: seconds,
    pipelining: 1,
    timeout: 10,
    setupClient(client) {
      client.setRequests(requestsFor(next++, fail))
      client.on('response', (_status: number, _bytes: number, duration: number) => {
        latencies.push(duration)
      })
    },
  })
  const result = await instance
  const s = summarize(latencies)
  return {
    connections,
    seconds: result.duration,
    requests: latencies.length,
    rps: latencies.length / result.duration,
    p50: s.p50,
    p99: s.p99,
    errors,
    transportErrors: result.errors + result.timeouts,
    ...(firstError === undefined ? {} : { firstError }),
    latencies,
  }
}

/** POSTs `{bk_biz_id, task_id, action}` to `path`, alternating pause and resume, one task per connection. */
function cannonOperate(
  base: string,
  path: string,
  succeeded: (status: number, body: string) => boolean,
  auth: { header: string; bkBizId: number },
  taskIds: readonly number[],
  seconds: number,
): Promise<LoadResult> {
  return cannon(base, taskIds.length, seconds, (i, fail) => {
    const taskId = taskIds[i]
    if (taskId === undefined) throw new Error(`no task for connection ${i}`)
    const req = (action: string): AutocannonRequest => ({
      method: 'POST',
      path,
      headers: { 'content-type': 'application/json', 'x-bkapi-authorization': auth.header },
      body: JSON.stringify({ bk_biz_id: auth.bkBizId, task_id: taskId, action }),
      onResponse: (status, body) => {
        if (!succeeded(status, body)) fail(`${action} task ${taskId}: HTTP ${status} ${body.slice(0, 200)}`)
      },
    })
    return [req('pause'), req('resume')]
  })
}

/** POST /v2/sops/operate_task/: a success is HTTP 200 with code 0. */
export function cannonLegacy(
  base: string,
  auth: { header: string; bkBizId: number },
  taskIds: readonly number[],
  seconds: number,
): Promise<LoadResult> {
  const ok = (status: number, body: string) => status === 200 && CODE.exec(body)?.[1] === '0'
  return cannonOperate(base, '/v2/sops/operate_task/', ok, auth, taskIds, seconds)
}

/**
 * POST /trpc/task.operate driven by autocannon (the tRPC wire format of a mutation without a
 * transformer: the input as the JSON body): the server's tRPC cost without the client's.
 */
export function cannonTrpcHttp(
  base: string,
  auth: { header: string; bkBizId: number },
  taskIds: readonly number[],
  seconds: number,
): Promise<LoadResult> {
  const ok = (status: number, body: string) => status === 200 && body.startsWith('{"result"')
  return cannonOperate(base, '/trpc/task.operate', ok, auth, taskIds, seconds)
}

/** The floor's route: the same alternation; the client carries the version it expects. */
export function cannonFloor(
  base: string,
  tasks: ReadonlyArray<{ id: number; version: number }>,
  seconds: number,
): Promise<LoadResult> {
  return cannon(base, tasks.length, seconds, (i, fail) => {
    const task = tasks[i]
    if (!task) throw new Error(`no task for connection ${i}`)
    const st = { version: task.version }
    const req = (action: string): AutocannonRequest => ({
      method: 'POST',
      path: '/floor/operate',
      headers: { 'content-type': 'application/json' },
      setupRequest: (r) => ({
        ...r,
        body: JSON.stringify({ task_id: task.id, action, version: st.version }),
      }),
      onResponse: (status, body) => {
        if (status === 200 && CODE.exec(body)?.[1] === '0') st.version++
        else fail(`${action} task ${task.id}: HTTP ${status} ${body.slice(0, 200)}`)
      },
    })
    return [req('pause'), req('resume')]
  })
}

/** `task.operate` through the tRPC client: `taskIds.length` async workers, one task each. */
export async function trpcLoop(
  base: string,
  auth: { header: string; bkBizId: number },
  taskIds: readonly number[],
  seconds: number,
): Promise<LoadResult> {
  const client = createTRPCClient<AppRouter>({
    links: [httpLink({ url: `${base}/trpc`, headers: () => ({ 'x-bkapi-authorization': auth.header }) })],
  })
  const latencies: number[] = []
  let errors = 0
  let firstError: string | undefined
  const started = performance.now()
  const deadline = started + seconds * 1000
  await Promise.all(
    taskIds.map(async (taskId) => {
      let action: 'pause' | 'resume' = 'pause'
      while (performance.now() < deadline) {
        const t0 = performance.now()
        try {
          await client.task.operate.mutate({ bk_biz_id: auth.bkBizId, task_id: taskId, action })
          latencies.push(performance.now() - t0)
        } catch (err) {
          latencies.push(performance.now() - t0)
          errors++
          firstError ??= `${action} task ${taskId}: ${err instanceof Error ? err.message : String(err)}`
        }
        action = action === 'pause' ? 'resume' : 'pause'
      }
    }),
  )
  const elapsed = (performance.now() - started) / 1000
  const s = summarize(latencies)
  return {
    connections: taskIds.length,
    seconds: elapsed,
    requests: latencies.length,
    rps: latencies.length / elapsed,
    p50: s.p50,
    p99: s.p99,
    errors,
    transportErrors: 0,
    ...(firstError === undefined ? {} : { firstError }),
    latencies,
  }
}
