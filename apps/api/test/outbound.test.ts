import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createTreeBuilder } from '@stdops/core/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createTemplate,
  expectParamInvalid,
  legacyClient,
  ok,
  rowCounts,
  sleepTree,
  waitForState,
} from './fixtures'
import { type Harness, lib, makeIdentity, startHarness } from './harness'

/**
 * Calls made on a task's behalf (bk_http_request, callback_url) go through one client that reaches
 * public addresses only: what listens on the server's own network stays out of a task's reach.
 */

/** An "internal service" on loopback, counting the connections it accepts. */
async function internalService(
  body: string | ((res: import('node:http').ServerResponse, path: string) => void),
) {
  let connections = 0
  const server: Server = createServer((req, res) => {
    if (typeof body === 'string') res.writeHead(200, { 'content-type': 'application/json' }).end(body)
    else body(res, req.url ?? '/')
  })
  server.on('connection', () => {
    connections += 1
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return {
    port: (server.address() as AddressInfo).port,
    get connections() {
      return connections
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections()
        server.close(() => r())
      }),
  }
}

const sizeOf = (row: unknown) =>
  JSON.stringify(row, (_k, v) => (typeof v === 'bigint' ? Number(v) : v)).length

function callTree(url: string) {
  const b = createTreeBuilder()
  const call = b.activity('bk_http_request', {
    name: 'call',
    data: {
      bk_http_request_method: { hook: false, value: 'GET' },
      bk_http_request_url: { hook: false, value: url },
    },
  })
  b.chain(b.startId, call, b.endId)
  b.constant('answer', '', { source_type: 'component_outputs', source_info: { [call]: ['data'] } })
  b.output('answer')
  return { tree: b.build(), callId: call }
}

describe('with the default settings (no STDOPS_OUTBOUND_ALLOW)', () => {
  let h: Harness
  let secret: Awaited<ReturnType<typeof internalService>>
  beforeAll(async () => {
    h = await startHarness()
    secret = await internalService('{"token":"internal-secret-value"}')
  })
  afterAll(async () => {
    await secret?.close()
    await h?.close()
  })

  it('a task cannot read a loopback service: the node fails naming the refusal, and no reply shows what it holds', async () => {
    const id = await makeIdentity(h.deps)
    const c = legacyClient(h, id)
    for (const host of ['2130706433', '[::ffff:127.0.0.1]', '0.0.0.0', 'localhost', '127.0.0.1']) {
      const { tree } = callTree(`http://${host}:${secret.port}/`)
      const templateId = await createTemplate(c, tree)
      const started = ok<{ task_id: number }>(
        await c.post('create_and_start_task', { template_id: templateId, name: host }),
      )
      const status = await waitForState(c, started.task_id, 'FAILED')
      const detail = ok(await c.get('get_task_detail', { task_id: started.task_id }))
      const everything = JSON.stringify([status, detail])
      expect(everything, host).toMatch(
        /destination refused: [^"]+ (is|resolves to) a(n unspecified| loopback) address/,
      )
      expect(everything, host).not.toContain('internal-secret-value')
    }
    expect(secret.connections).toBe(0)
  })

  it('create_task refuses a callback_url on a non-public address, naming callback_url, and writes nothing', async () => {
    const id = await makeIdentity(h.deps)
    const c = legacyClient(h, id)
    const templateId = await createTemplate(c, sleepTree().tree)
    const before = await rowCounts(h)
    for (const url of [
      `http://2130706433:${secret.port}/cb`,
      `http://[::ffff:127.0.0.1]:${secret.port}/cb`,
      'http://0.0.0.0/cb',
      'http://localhost/cb',
      'http://169.254.169.254/latest',
      'http://[fd00::1]/cb',
    ]) {
      for (const api of ['create_task', 'create_and_start_task']) {
        const reply = await c.post(api, { template_id: templateId, name: 'cb', callback_url: url })
        expectParamInvalid(reply, /callback_url: destination refused: /)
      }
    }
    expect(await rowCounts(h)).toEqual(before)
    expect(secret.connections).toBe(0)
  })

  it('a malformed STDOPS_OUTBOUND_ALLOW stops the server at start, naming the entry', () => {
    expect(() => lib.readEnv({ STDOPS_OUTBOUND_ALLOW: '127.0.0.1, 10.0.0.0/33' })).toThrow(
      /STDOPS_OUTBOUND_ALLOW: outbound allow list: "10\.0\.0\.0\/33" is not a valid CIDR range/,
    )
    expect(
      lib.readEnv({ STDOPS_OUTBOUND_ALLOW: ' 127.0.0.1 , ::1,intranet.example ' }).STDOPS_OUTBOUND_ALLOW,
    ).toEqual(['127.0.0.1', '::1', 'intranet.example'])
  })
})

describe('with STDOPS_OUTBOUND_ALLOW=127.0.0.1 (as the tests and the demo run)', () => {
  let h: Harness
  let big: Awaited<ReturnType<typeof internalService>>
  let sent = 0
  beforeAll(async () => {
    h = await startHarness({ env: { STDOPS_OUTBOUND_ALLOW: '127.0.0.1' } })
    const chunk = Buffer.alloc(64 * 1024, 'y')
    big = await internalService((res) => {
      res.writeHead(200, { 'content-type': 'text/plain' })
      let left = 512 // 32 MiB
      const pump = () => {
        while (left > 0) {
          left -= 1
          sent += chunk.length
          if (!res.write(chunk)) return void res.once('drain', pump)
        }
        res.end()
      }
      res.on('close', () => res.removeAllListeners('drain'))
      pump()
    })
  })
  afterAll(async () => {
    await big?.close()
    await h?.close()
  })

  it('a 32 MiB response fails the node with a clear message and nothing of it is stored or shown', async () => {
    const id = await makeIdentity(h.deps)
    const c = legacyClient(h, id)
    const { tree } = callTree(`http://127.0.0.1:${big.port}/big`)
    const templateId = await createTemplate(c, tree)
    const started = ok<{ task_id: number }>(
      await c.post('create_and_start_task', { template_id: templateId, name: 'big' }),
    )
    const status = await waitForState(c, started.task_id, 'FAILED')
    expect(JSON.stringify(status)).toMatch(
      /request failed: the response from http:\/\/127\.0\.0\.1:\d+ is larger than 1048576 bytes \(STDOPS_OUTBOUND_MAX_BYTES\); nothing of it was kept/,
    )
    const detail = ok(await c.get('get_task_detail', { task_id: started.task_id }))
    expect(JSON.stringify([status, detail])).not.toContain('yyyyyyyy')
    // nothing the task wrote holds the body: every stored row of the task is small
    const p = h.deps.db.prisma
    const taskRow = await p.task.findUniqueOrThrow({ where: { id: started.task_id } })
    expect(taskRow.outputs.length + taskRow.constants.length).toBeLessThan(10_000)
    const nodeRows = await p.nodeState.findMany({ where: { taskId: started.task_id } })
    const events = await p.taskEvent.findMany({ where: { taskId: started.task_id } })
    for (const row of [...nodeRows, ...events]) expect(sizeOf(row)).toBeLessThan(10_000)
    expect(sent).toBeLessThan(16 * 1024 * 1024)
  })
})
