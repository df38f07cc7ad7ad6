import { createTreeBuilder } from '@stdops/core/testing'
import type { MigratableDb } from '@stdops/db'
import { createTestDatabaseUrl } from '@stdops/db/testing'
import { afterEach, describe, expect, it } from 'vitest'
import { authHeader, esb, type Identity, waitFor } from './harness'
import { type Child, killAll, openAndBootstrap, serverEnv, sleep, startProcess, stopProcess } from './procs'

/**
 * A graceful stop: SIGTERM while requests and an event stream are in flight. Every request that
 * reached the server gets its whole answer (or a 503 once it is closing), the event stream ends
 * cleanly instead of being cut, nothing touches the database after its pool closed, and the
 * process exits 0.
 */

let cleanup: Array<() => Promise<void>> = []
afterEach(async () => {
  await killAll()
  for (const c of cleanup.reverse()) await c()
  cleanup = []
})

function sleepTree(seconds: number) {
  const b = createTreeBuilder()
  const vars = b.activity('set_variables', { data: { variables: { hook: false, value: { x: '1' } } } })
  const wait = b.activity('sleep_timer', { data: { bk_timing: { hook: false, value: String(seconds) } } })
  b.chain(b.startId, vars, wait, b.endId)
  return b.build()
}

async function setUp(): Promise<{ db: MigratableDb; id: Identity; server: Child }> {
  const { url, drop } = await createTestDatabaseUrl()
  const { db, id } = await openAndBootstrap(url)
  cleanup.push(async () => {
    await db.close()
    await drop()
  })
  const server = await startProcess('serve', serverEnv(url))
  return { db, id, server }
}

interface Outcome {
  api: string
  startedAt: number
  endedAt: number
  status?: number
  result?: boolean
  code?: number
  message?: string
  error?: string
}

/** Keeps calling the legacy API until `until()` says stop; records every outcome. */
async function load(base: string, id: Identity, templateId: number, until: () => boolean, out: Outcome[]) {
  let n = 0
  while (!until()) {
    n++
    const api = n % 2 === 0 ? 'create_and_start_task' : 'get_task_list'
    const startedAt = Date.now()
    try {
      const r =
        api === 'create_and_start_task'
          ? await esb(base, api, {
              body: { bk_biz_id: id.bkBizId, template_id: templateId, name: `load ${n}` },
              headers: authHeader(id),
            })
          : await esb(base, api, { query: { bk_biz_id: id.bkBizId, limit: 5 }, headers: authHeader(id) })
      out.push({
        api,
        startedAt,
        endedAt: Date.now(),
        status: r.status,
        result: r.body.result,
        code: r.body.code,
        message: r.body.message,
      })
    } catch (err) {
      // Refused or reset before an answer: the server had stopped accepting.
      out.push({ api, startedAt, endedAt: Date.now(), error: String((err as Error).cause ?? err) })
      await sleep(20)
    }
  }
}

/** Opens task.events (SSE) and reads it to its end; resolves how it ended. */
async function openStream(base: string, id: Identity, taskId: number) {
  const input = encodeURIComponent(JSON.stringify({ bk_biz_id: id.bkBizId, task_id: taskId }))
  const res = await fetch(`${base}/trpc/task.events?input=${input}`, {
    headers: {
      'x-bk-app-code': id.appCode,
      'x-bk-app-secret': id.appSecret,
      authorization: `Bearer ${id.token}`,
      accept: 'text/event-stream',
    },
  })
  expect(res.status).toBe(200)
  const reader = res.body!.getReader()
  const decoder = new TextDecoder()
  let text = ''
  let firstData: () => void = () => {}
  const opened = new Promise<void>((r) => {
    firstData = r
  })
  const ended = (async () => {
    try {
      for (;;) {
        const { done, value } = await reader.read()
        if (done) return { clean: true, text }
        text += decoder.decode(value, { stream: true })
        if (text.includes('data:')) firstData()
      }
    } catch (err) {
      return { clean: false, text, error: String(err) }
    }
  })()
  await opened
  return ended
}

describe('graceful stop', () => {
  it('SIGTERM with requests and an event stream in flight: every answer is whole, no pool is used after it closed, exit 0', async () => {
    const { id, server } = await setUp()
    const base = server.url!
    const t = await esb(base, 'create_template', {
      body: { bk_biz_id: id.bkBizId, name: 'stop', pipeline_tree: sleepTree(60) },
      headers: authHeader(id),
    })
    expect(t.body.result, t.body.message).toBe(true)
    const templateId = (t.body.data as { template_id: number }).template_id
    const long = await esb(base, 'create_and_start_task', {
      body: { bk_biz_id: id.bkBizId, template_id: templateId, name: 'long' },
      headers: authHeader(id),
    })
    expect(long.body.result, long.body.message).toBe(true)
    const stream = openStream(base, id, (long.body.data as { task_id: number }).task_id)
    await sleep(300)

    const outcomes: Outcome[] = []
    let exited = false
    const loops = Array.from({ length: 8 }, () => load(base, id, templateId, () => exited, outcomes))
    // Under way: answers arriving (however slow the machine), requests in flight.
    await waitFor(
      async () => (outcomes.filter((o) => o.status !== undefined).length >= 10 ? true : undefined),
      60_000,
    )
    const sigterm = Date.now()
    const exit = await stopProcess(server)
    exited = true
    await Promise.all(loops)
    const streamEnd = await stream

    const log = server.lines.join('\n')
    expect(exit.code, log.slice(-3000)).toBe(0)
    expect(log).not.toMatch(/Cannot use a pool|pool after calling end|connection is not open|not open/i)
    const errors = server.lines.filter(
      (l) => l.startsWith('{') && (JSON.parse(l) as { level: number }).level >= 50,
    )
    expect(errors).toEqual([])

    const answered = outcomes.filter((o) => o.status !== undefined)
    expect(answered.length).toBeGreaterThan(8)
    for (const o of answered) {
      // A whole answer: success, or the 503 a closing server gives a request on a kept-alive connection.
      if (o.status === 503) continue
      expect({ api: o.api, status: o.status, result: o.result, message: o.message }).toMatchObject({
        status: 200,
        result: true,
      })
    }
    // Requests that were in flight when SIGTERM came finished with their answer.
    expect(
      answered.filter((o) => o.status === 200 && o.startedAt < sigterm && o.endedAt > sigterm).length,
    ).toBeGreaterThan(0)
    // The event stream was ended by the server, not cut.
    expect(streamEnd, JSON.stringify(streamEnd).slice(0, 500)).toMatchObject({ clean: true })
  })
})
