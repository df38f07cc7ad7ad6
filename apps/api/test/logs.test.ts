import { Writable } from 'node:stream'
import { createTreeBuilder } from '@stdops/core/testing'
import { createTestDatabaseUrl } from '@stdops/db/testing'
import { afterEach, describe, expect, it } from 'vitest'
import { createTemplate, legacyClient, ok } from './fixtures'
import { type Harness, lib, makeIdentity, startHarness, waitFor } from './harness'
import { runServerCli, type SlowServer, startSlowServer } from './procs'

/**
 * Logs: JSON lines off a terminal, human-readable on one (or as LOG_FORMAT says); every line a
 * request causes carries its request_id, whoever writes it; engine lines name their task and node.
 */

let h: Harness | null = null
let slow: SlowServer | null = null
afterEach(async () => {
  await h?.close()
  h = null
  await slow?.close()
  slow = null
})

describe('log format', () => {
  it('is LOG_FORMAT when set, else pretty on a terminal and JSON elsewhere', () => {
    expect(lib.logFormatFor({}, true)).toBe('pretty')
    expect(lib.logFormatFor({}, false)).toBe('json')
    expect(lib.logFormatFor({ LOG_FORMAT: 'json' }, true)).toBe('json')
    expect(lib.logFormatFor({ LOG_FORMAT: 'pretty' }, false)).toBe('pretty')
  })

  it('LOG_FORMAT=pretty prints readable lines, not JSON (the server command line, off a terminal)', async () => {
    const { url, drop } = await createTestDatabaseUrl()
    try {
      const run = await runServerCli(['migrate'], {
        DATABASE_URL: url,
        LOG_LEVEL: 'debug',
        LOG_FORMAT: 'pretty',
      })
      expect(run.code, run.stderr).toBe(0)
      const line = run.stdout.split('\n').find((l) => l.includes('migrations applied'))
      expect(line).toBeDefined()
      expect(line!.trimStart().startsWith('{')).toBe(false)
      expect(line).toMatch(/INFO/)
    } finally {
      await drop()
    }
  })
})

describe('request and engine log fields', () => {
  it("lines written while a request is handled carry its request_id (the envelope's), engine lines their task and node", async () => {
    const lines: Array<Record<string, unknown>> = []
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString('utf8').split('\n')) if (l.trim()) lines.push(JSON.parse(l))
        done()
      },
    })
    // the task calls the test's own HTTP server on 127.0.0.1
    h = await startHarness({ logTo: sink, env: { STDOPS_OUTBOUND_ALLOW: '127.0.0.1' } })
    slow = await startSlowServer()
    const id = await makeIdentity(h.deps)
    const c = legacyClient(h, id)
    const b = createTreeBuilder()
    const call = b.activity('bk_http_request', {
      data: {
        bk_http_request_method: { hook: false, value: 'GET' },
        bk_http_request_url: { hook: false, value: `${slow.url}?n=logs&ms=30000` },
      },
    })
    b.chain(b.startId, call, b.endId)
    const templateId = await createTemplate(c, b.build())
    const started = ok<{ task_id: number }>(
      await c.post('create_and_start_task', { template_id: templateId, name: 'logs' }),
    )
    await waitFor(async () => (slow!.hits.get('logs') ? true : undefined))

    // The revoke aborts the running component from inside the request: the engine logs it there.
    const reply = await c.post(
      'operate_task',
      { task_id: started.task_id, action: 'revoke' },
      { 'X-Request-Id': 'req-logs-1' },
    )
    ok(reply)
    expect(reply.body.request_id).toBe('req-logs-1')
    expect(reply.headers.get('x-request-id')).toBe('req-logs-1')
    const ofRequest = lines.filter((l) => l.request_id === 'req-logs-1')
    const abort = ofRequest.find((l) => l.msg === 'aborting a running component')
    expect(abort, JSON.stringify(lines.slice(-10))).toMatchObject({ taskId: started.task_id, nodeId: call })
    // Nothing logged outside a request carries a request id.
    expect(lines.filter((l) => l.msg === 'worker running').every((l) => l.request_id === undefined)).toBe(
      true,
    )

    // Every response names its request id; a caller's well-formed X-Request-Id is kept.
    const trpc = await fetch(`${h.url}/trpc/template.list?input=${encodeURIComponent('{}')}`)
    expect(trpc.headers.get('x-request-id')).toMatch(/^[0-9a-f]{32}$/)
  })
})
