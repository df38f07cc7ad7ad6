import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createTreeBuilder } from '@stdops/core/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createComponentRegistry, type Engine, loadComponentModules } from '../src/index'
import { noop } from '../src/testing'
import {
  createHarness,
  type Harness,
  httpServer,
  insertTask,
  jobs,
  nodes,
  operate,
  TESTER,
  waitFor,
  waitForState,
} from './helpers'

let h: Harness
let engine: Engine
let server: Awaited<ReturnType<typeof httpServer>>

beforeAll(async () => {
  h = await createHarness()
  engine = await h.engine()
  server = await httpServer((req, res, body) => {
    if (req.url === '/json') {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ ok: true, echo: body, auth: req.headers['x-token'] ?? null }))
    } else if (req.url === '/text') res.writeHead(200).end('plain text')
    else if (req.url === '/broken') res.writeHead(500).end('{"message":"it broke"}')
    else if (req.url === '/slow') setTimeout(() => res.writeHead(200).end('late'), 5000).unref()
    else res.writeHead(404).end()
  })
})
afterAll(async () => {
  await server?.close()
  await h?.close()
})

type Data = Record<string, { hook: boolean; value: unknown }>
const v = (value: unknown) => ({ hook: false, value })

async function runOne(code: string, data: Data) {
  const b = createTreeBuilder()
  const node = b.activity(code, { data })
  b.chain(b.startId, node, b.endId)
  const id = await insertTask(h.db, b.build())
  await operate(engine, id, 'start')
  const row = await waitFor(`${code} to end`, async () => {
    const n = (await nodes(h.db, id)).get(node)
    return n && (n.state === 'FINISHED' || n.state === 'FAILED') ? n : null
  })
  return { id, node, row }
}

describe('bk_http_request', () => {
  it('sends method, headers and body, and outputs status_code and the JSON-parsed data', async () => {
    const { row } = await runOne('bk_http_request', {
      bk_http_request_method: v('post'),
      bk_http_request_url: v(`${server.url}/json`),
      bk_http_request_header: v([{ name: 'X-Token', value: 'secret' }]),
      bk_http_request_body: v('{"a":1}'),
      bk_http_timeout: v('5'),
      bk_http_success_exp: v(''),
    })
    expect(row.state).toBe('FINISHED')
    expect(row.outputs).toEqual({ status_code: 200, data: { ok: true, echo: '{"a":1}', auth: 'secret' } })
    const call = server.calls.find((c) => c.url === '/json')
    expect(call?.method).toBe('POST')
  })

  it('keeps a body that is not JSON as text', async () => {
    const { row } = await runOne('bk_http_request', { bk_http_request_url: v(`${server.url}/text`) })
    expect(row.outputs).toEqual({ status_code: 200, data: 'plain text' })
  })

  it('fails on a non-2xx status by default, naming the status', async () => {
    const { row } = await runOne('bk_http_request', { bk_http_request_url: v(`${server.url}/broken`) })
    expect(row.state).toBe('FAILED')
    expect(row.error).toMatch(/status 500/)
    expect(row.error).toMatch(/it broke/)
  })

  it('a success expression over resp.status_code and resp.data decides', async () => {
    const ok = await runOne('bk_http_request', {
      bk_http_request_url: v(`${server.url}/broken`),
      bk_http_success_exp: v('resp.status_code == 500 and ${resp.data.message} == "it broke"'),
    })
    expect(ok.row.state).toBe('FINISHED')
    const no = await runOne('bk_http_request', {
      bk_http_request_url: v(`${server.url}/json`),
      bk_http_success_exp: v('resp.data.ok == False'),
    })
    expect(no.row.state).toBe('FAILED')
    expect(no.row.error).toMatch(/does not hold/)
  })

  it('bk_http_timeout bounds the request', async () => {
    const t0 = Date.now()
    const { row } = await runOne('bk_http_request', {
      bk_http_request_url: v(`${server.url}/slow`),
      bk_http_timeout: v(0.3),
    })
    expect(row.state).toBe('FAILED')
    expect(row.error).toMatch(/timed out after 0.3 s/)
    expect(Date.now() - t0).toBeLessThan(3000)
  })

  it('an invalid url fails the node naming the field', async () => {
    const { row } = await runOne('bk_http_request', { bk_http_request_url: v('not a url') })
    expect(row.state).toBe('FAILED')
    expect(row.error).toMatch(/^input bk_http_request_url: /)
  })
})

describe('other built-ins', () => {
  it('sleep_timer accepts an ISO 8601 date-time and waits until then as a timer row', async () => {
    const until = new Date(Date.now() + 700).toISOString()
    const t0 = Date.now()
    const { row } = await runOne('sleep_timer', { bk_timing: v(until) })
    expect(row.state).toBe('FINISHED')
    expect(row.finished_at!).toBeGreaterThanOrEqual(Date.parse(until))
    expect(Date.now() - t0).toBeGreaterThanOrEqual(600)
  })

  it('set_variables outputs each key of its variables; fail fails with its message', async () => {
    const set = await runOne('set_variables', { variables: v({ a: 1, b: 'two' }) })
    expect(set.row.outputs).toEqual({ a: 1, b: 'two' })
    const failed = await runOne('fail', { message: v('drill') })
    expect(failed.row).toMatchObject({ state: 'FAILED', error: 'drill' })
  })

  it('pause_node waits for a callback holding no worker and no job; revoke ends it', async () => {
    const b = createTreeBuilder()
    const node = b.activity('pause_node', { data: { description: v('approve?') } })
    b.chain(b.startId, node, b.endId)
    const id = await insertTask(h.db, b.build())
    await operate(engine, id, 'start')
    await waitFor(
      'waiting',
      async () => (await engine.runningNodes(h.db, id)) === 1 && (await jobs(h.db, id)).length === 0,
    )
    await new Promise((r) => setTimeout(r, 150))
    expect((await nodes(h.db, id)).get(node)?.state).toBe('RUNNING')
    await operate(engine, id, 'revoke')
    expect((await nodes(h.db, id)).get(node)?.state).toBe('REVOKED')
    expect(await engine.runningNodes(h.db, id)).toBe(0)
  })

  it('a node callback runs pause_node.schedule, which outputs the callback data as callback_data', async () => {
    const b = createTreeBuilder()
    const node = b.activity('pause_node')
    b.chain(b.startId, node, b.endId)
    const id = await insertTask(h.db, b.build())
    await operate(engine, id, 'start')
    await waitFor(
      'waiting',
      async () => (await engine.runningNodes(h.db, id)) === 1 && (await jobs(h.db, id)).length === 0,
    )
    await engine.operateNode({
      ...TESTER,
      taskId: id,
      nodeId: node,
      action: 'callback',
      data: { approved: true },
    })
    await waitForState(h.db, id, 'FINISHED')
    expect((await nodes(h.db, id)).get(node)?.outputs).toEqual({ callback_data: { approved: true } })
  })
})

describe('component registry and deployment modules', () => {
  it('registers extra components beside the built-ins and refuses a code registered twice', () => {
    const registry = createComponentRegistry([noop])
    expect(registry.has('noop')).toBe(true)
    expect(registry.has('sleep_timer')).toBe(true)
    expect(registry.list().map((c) => c.code)).toEqual(
      expect.arrayContaining([
        'sleep_timer',
        'pause_node',
        'bk_http_request',
        'set_variables',
        'fail',
        'noop',
      ]),
    )
    expect(() => createComponentRegistry([noop, noop])).toThrow('component noop is registered twice')
  })

  it('loads modules whose default export is a component or a list, and names the file of a bad one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stdops-components-'))
    try {
      const zod = import.meta.resolve('zod')
      writeFileSync(
        join(dir, 'one.mjs'),
        `import { z } from '${zod}'
         export default { code: 'hello', inputs: z.object({}), outputs: z.object({}), async execute() { return { status: 'finished', outputs: {} } } }`,
      )
      writeFileSync(
        join(dir, 'many.mjs'),
        `import { z } from '${zod}'
         const mk = (code) => ({ code, inputs: z.object({}), outputs: z.object({}), async execute() { return { status: 'finished', outputs: {} } } })
         export default [mk('a'), mk('b')]`,
      )
      writeFileSync(join(dir, 'bad.mjs'), `export default [{ code: 'x', execute() {} }]`)
      writeFileSync(join(dir, 'none.mjs'), `export const x = 1`)
      const loaded = await loadComponentModules([join(dir, 'one.mjs'), join(dir, 'many.mjs')])
      expect(loaded.map((m) => m.code)).toEqual(['hello', 'a', 'b'])
      await expect(loadComponentModules([join(dir, 'bad.mjs')])).rejects.toThrow(
        `component module ${join(dir, 'bad.mjs')}: default export [0] (x) has no \`inputs\` zod schema`,
      )
      await expect(loadComponentModules([join(dir, 'none.mjs')])).rejects.toThrow(
        /none\.mjs has no default export/,
      )
      await expect(loadComponentModules([join(dir, 'missing.mjs')])).rejects.toThrow(
        /missing\.mjs cannot be imported/,
      )
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
