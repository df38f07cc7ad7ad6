import { createServer as createNetServer } from 'node:net'
import { createTreeBuilder } from '@stdops/core/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createOutboundClient,
  type Engine,
  type OutboundClient,
  OutboundError,
  parseAllowList,
} from '../src/index'
import { createHarness, type Harness, httpServer, insertTask, nodes, operate, task, waitFor } from './helpers'

/**
 * The engine here may reach 127.0.0.2 (allowed, as an operator would allow an internal service)
 * and nothing else that is not public: 127.0.0.1, where a "secret" service listens, is refused.
 */
const ALLOWED = '127.0.0.2'

let h: Harness
let engine: Engine
let client: OutboundClient
let secret: Awaited<ReturnType<typeof httpServer>>

beforeAll(async () => {
  h = await createHarness()
  client = createOutboundClient({ allow: [ALLOWED] })
  engine = await h.engine({ outbound: client, callbackRetryMs: 20 })
  secret = await httpServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"internal":"do not leak"}')
  })
})
afterAll(async () => {
  await secret?.close()
  await h?.close()
  await client?.close()
})

const v = (value: unknown) => ({ hook: false, value })

async function callOnce(url: string, extra: Record<string, unknown> = {}) {
  const b = createTreeBuilder()
  const node = b.activity('bk_http_request', {
    data: { bk_http_request_url: v(url), bk_http_timeout: v(10), ...extra },
  })
  b.chain(b.startId, node, b.endId)
  const id = await insertTask(h.db, b.build())
  await operate(engine, id, 'start')
  const row = await waitFor(`the call to ${url} to end`, async () => {
    const n = (await nodes(h.db, id)).get(node)
    return n && (n.state === 'FINISHED' || n.state === 'FAILED') ? n : null
  })
  return { id, row }
}

describe('bk_http_request reaches public addresses only', () => {
  it('refuses loopback, private, link-local, unique-local, multicast and reserved addresses in every spelling, connecting to none', async () => {
    const p = secret.port
    const forms = [
      `http://127.0.0.1:${p}/`,
      `http://2130706433:${p}/`, // decimal
      `http://0x7f000001:${p}/`, // hexadecimal
      `http://0177.0.0.1:${p}/`, // octal
      `http://127.1:${p}/`, // short form
      `http://[::ffff:127.0.0.1]:${p}/`, // IPv4-mapped IPv6
      `http://[::ffff:7f00:1]:${p}/`,
      `http://[64:ff9b::7f00:1]:${p}/`, // NAT64 of loopback
      `http://0.0.0.0:${p}/`,
      `http://localhost:${p}/`, // a name that resolves to loopback
      `http://[::1]:${p}/`,
      'http://10.1.2.3/',
      'http://172.16.0.1/',
      'http://192.168.1.1/',
      'http://169.254.169.254/latest/meta-data/',
      'http://100.64.0.1/',
      'http://[fe80::1]/',
      'http://[fd00::1]/',
      'http://224.0.0.1/',
      'http://255.255.255.255/',
      'http://240.0.0.1/',
      'http://198.18.0.1/',
    ]
    for (const url of forms) {
      const { row, id } = await callOnce(url)
      expect(row.state, url).toBe('FAILED')
      expect(row.error, url).toMatch(/^request failed: destination refused: .+ (is|resolves to) (a|an|the) /)
      expect(row.error, url).toMatch(/STDOPS_OUTBOUND_ALLOW/)
      expect(row.outputs, url).toBeNull()
      // a failed node holds its task RUNNING (failed, awaiting retry or skip), its outputs empty
      expect(JSON.parse(String((await task(h.db, id)).outputs))).toEqual({})
    }
    expect(secret.connections).toBe(0)
  })

  it('a redirect to loopback is refused at the hop, and its target receives nothing', async () => {
    const redirector = await httpServer((req, res) => {
      const to =
        req.url === '/to-name' ? `http://localhost:${secret.port}/x` : `http://127.0.0.1:${secret.port}/x`
      res.writeHead(302, { location: to }).end()
    }, ALLOWED)
    try {
      for (const path of ['/to-ip', '/to-name']) {
        const { row } = await callOnce(`${redirector.url}${path}`)
        expect(row.state).toBe('FAILED')
        expect(row.error).toMatch(
          /destination refused: (127\.0\.0\.1 is|localhost resolves to) a loopback address/,
        )
      }
      expect(redirector.calls.map((c) => c.url)).toEqual(['/to-ip', '/to-name'])
      expect(secret.connections).toBe(0)
    } finally {
      await redirector.close()
    }
  })

  it('follows redirects between reachable hosts, checking each hop; credentials stay with their origin; 303 turns a POST into a GET', async () => {
    const end = await httpServer((req, res, body) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ method: req.method, auth: req.headers.authorization ?? null, body }))
    }, ALLOWED)
    const start = await httpServer((req, res) => {
      if (req.url === '/same') res.writeHead(307, { location: '/here' }).end()
      else if (req.url === '/here') res.writeHead(200).end(req.headers.authorization ?? 'none')
      else res.writeHead(303, { location: `${end.url}/end` }).end()
    }, ALLOWED)
    try {
      const same = await callOnce(`${start.url}/same`, {
        bk_http_request_header: v([{ name: 'Authorization', value: 'Bearer t' }]),
      })
      expect(same.row.outputs).toEqual({ status_code: 200, data: 'Bearer t' })
      const other = await callOnce(`${start.url}/other`, {
        bk_http_request_method: v('POST'),
        bk_http_request_body: v('{"a":1}'),
        bk_http_request_header: v([{ name: 'Authorization', value: 'Bearer t' }]),
      })
      expect(other.row.state).toBe('FINISHED')
      expect(other.row.outputs).toEqual({ status_code: 200, data: { method: 'GET', auth: null, body: '' } })
    } finally {
      await start.close()
      await end.close()
    }
  })

  it('more than 5 redirects fail the node naming the limit', async () => {
    const loop = await httpServer((req, res) => {
      res.writeHead(302, { location: `/${Number(req.url!.slice(1)) + 1}` }).end()
    }, ALLOWED)
    try {
      const { row } = await callOnce(`${loop.url}/0`)
      expect(row.state).toBe('FAILED')
      expect(row.error).toMatch(/more than 5 redirects/)
      expect(loop.calls).toHaveLength(6)
    } finally {
      await loop.close()
    }
  })

  it('a 32 MiB response fails the node with a clear message; reading stops at the cap and nothing of it is kept', async () => {
    const chunk = Buffer.alloc(64 * 1024, 'x')
    const sent = { bytes: 0, finished: false }
    const big = await httpServer((req, res) => {
      const total = 32 * 1024 * 1024
      // one answer says its length up front, the other streams without one
      res.writeHead(200, req.url === '/declared' ? { 'content-length': String(total) } : {})
      let left = total / chunk.length
      const pump = () => {
        while (left > 0) {
          left -= 1
          sent.bytes += chunk.length
          if (!res.write(chunk)) {
            res.once('drain', pump)
            return
          }
        }
        res.end()
        sent.finished = true
      }
      res.on('close', () => res.removeAllListeners('drain'))
      pump()
    }, ALLOWED)
    try {
      for (const path of ['/declared', '/streamed']) {
        sent.bytes = 0
        const { row, id } = await callOnce(`${big.url}${path}`)
        expect(row.state).toBe('FAILED')
        expect(row.error).toMatch(/the response from http:\/\/127\.0\.0\.2:\d+ is larger than 1048576 bytes/)
        expect(row.outputs).toBeNull()
        const t = await task(h.db, id)
        expect(String(t.outputs).length).toBeLessThan(100)
        expect(sent.finished).toBe(false)
        // the socket buffers hold a few MiB at most: the rest was never sent
        expect(sent.bytes).toBeLessThan(16 * 1024 * 1024)
      }
    } finally {
      await big.close()
    }
  })

  it('a closed port, a dropped connection and an unknown name fail alike, saying nothing of what listens where', async () => {
    const closedPort = await new Promise<number>((resolve) => {
      const s = createNetServer()
      s.listen(0, ALLOWED, () => {
        const { port } = s.address() as { port: number }
        s.close(() => resolve(port))
      })
    })
    const dropper = createNetServer((socket) => socket.destroy())
    await new Promise<void>((r) => dropper.listen(0, ALLOWED, r))
    const dropPort = (dropper.address() as { port: number }).port
    try {
      const messages: string[] = []
      for (const url of [
        `http://${ALLOWED}:${closedPort}/`,
        `http://${ALLOWED}:${dropPort}/`,
        'http://no-such-host.invalid/',
      ]) {
        const { row } = await callOnce(url)
        expect(row.state).toBe('FAILED')
        messages.push(row.error!.replace(new URL(url).origin, '<origin>'))
      }
      expect(messages[0]).toBe('request failed: could not get an answer from <origin>')
      expect(new Set(messages).size).toBe(1)
    } finally {
      await new Promise<void>((r) => dropper.close(() => r()))
    }
  })
})

describe('callback_url goes through the same client', () => {
  it('a callback_url on loopback is refused at call time, recorded, and receives nothing', async () => {
    const b = createTreeBuilder()
    b.chain(b.startId, b.activity('noop'), b.endId)
    const id = await insertTask(h.db, b.build(), { callbackUrl: `http://2130706433:${secret.port}/cb` })
    await operate(engine, id, 'start')
    await waitFor(
      'callback given up',
      async () => (await task(h.db, id)).callback_status === 'failed',
      15_000,
    )
    const t = await task(h.db, id)
    expect(t.callback_error).toMatch(
      /^callback_url request failed: destination refused: 127\.0\.0\.1 is a loopback address/,
    )
    expect(secret.connections).toBe(0)
  })
})

describe('the client', () => {
  it('check() refuses every non-public form and lets public addresses and unresolvable names through', async () => {
    const strict = createOutboundClient()
    try {
      for (const url of [
        'http://2130706433/',
        'http://[::ffff:127.0.0.1]/',
        'http://0.0.0.0/',
        'http://localhost/',
        'https://10.0.0.1:8443/x',
      ]) {
        await expect(strict.check(url), url).rejects.toMatchObject({ kind: 'refused' })
      }
      await expect(strict.check('ftp://example.com/')).rejects.toMatchObject({ kind: 'invalid' })
      await expect(strict.check('http://u:p@example.com/')).rejects.toMatchObject({ kind: 'invalid' })
      await expect(strict.check('http://93.184.215.14/')).resolves.toBeUndefined()
      await expect(strict.check('http://no-such-host.invalid/')).resolves.toBeUndefined()
    } finally {
      await strict.close()
    }
  })

  it('the allow list takes host names, addresses and CIDR ranges, and names a malformed entry', async () => {
    const byName = createOutboundClient({ allow: ['LocalHost'] })
    const byRange = createOutboundClient({ allow: ['127.0.0.0/8', '::1'] })
    try {
      await expect(byName.check(`http://localhost:${secret.port}/`)).resolves.toBeUndefined()
      // the name is allowed, not the address it resolves to
      await expect(byName.check(`http://127.0.0.1:${secret.port}/`)).rejects.toBeInstanceOf(OutboundError)
      const res = await byRange.request({ url: `http://[::ffff:127.0.0.1]:${secret.port}/` })
      expect(res.text).toBe('{"internal":"do not leak"}')
      await expect(byRange.check('http://[::1]/')).resolves.toBeUndefined()
      await expect(byRange.check('http://10.0.0.1/')).rejects.toMatchObject({ kind: 'refused' })
    } finally {
      await byName.close()
      await byRange.close()
    }
    expect(() => parseAllowList(['10.0.0.0/33'])).toThrow(/"10\.0\.0\.0\/33" is not a valid CIDR range/)
    expect(() => parseAllowList(['bad host!'])).toThrow(/"bad host!" is neither/)
  })

  it('caps the timeout the caller asks for', async () => {
    const slow = await httpServer((_req, res) => {
      setTimeout(() => res.writeHead(200).end('late'), 5000).unref()
    }, ALLOWED)
    const capped = createOutboundClient({ allow: [ALLOWED], maxTimeoutMs: 300 })
    try {
      const t0 = Date.now()
      await expect(capped.request({ url: slow.url, timeoutMs: 60_000 })).rejects.toMatchObject({
        kind: 'timeout',
        message: expect.stringMatching(/^timed out after 0\.3 s/),
      })
      expect(Date.now() - t0).toBeLessThan(3000)
    } finally {
      await capped.close()
      await slow.close()
    }
  })
})
