import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createTemplate,
  expectEnvelope,
  expectRefusal,
  HEX32,
  type LegacyClient,
  legacyClient,
  ok,
  quickTree,
} from './fixtures'
import { authHeader, type EnvelopeReply, esb, type Harness, makeIdentity, startHarness } from './harness'

/** A raw request, for methods and paths the harness's esb() does not make. */
async function raw(url: string, init: RequestInit = {}): Promise<EnvelopeReply> {
  const res = await fetch(url, init)
  const text = await res.text()
  return { status: res.status, headers: res.headers, body: JSON.parse(text) }
}

describe('the legacy envelope and transport', () => {
  let h: Harness
  let c: LegacyClient
  let templateId: number

  beforeAll(async () => {
    h = await startHarness({ worker: false })
    c = legacyClient(h, await makeIdentity(h.deps, { role: 'admin' }))
    templateId = await createTemplate(c, quickTree().tree, 'envelope template')
  })
  afterAll(async () => {
    await h?.close()
  })

  it('a success has exactly the six keys, result true, code 0 and message success', async () => {
    const reply = await c.get('get_template_list')
    expectEnvelope(reply)
    expect(reply.body).toMatchObject({ result: true, code: 0, message: 'success' })
    expect(Array.isArray(reply.body.data)).toBe(true)
    expect(reply.body.request_id).toMatch(HEX32)
    expect(reply.body.trace_id).toMatch(HEX32)
    expect(reply.headers.get('content-type')).toMatch(/^application\/json/)
  })

  it('operate_task and start_task answer data {} and {task_url} on success (start_task also beside the envelope)', async () => {
    const task = ok<{ task_id: number }>(
      await c.post('create_task', { template_id: templateId, name: 'envelope' }),
    ).task_id
    const started = await c.post('start_task', { task_id: task })
    expectEnvelope(started, ['task_url'])
    expect(Object.keys(started.body.data as object)).toEqual(['task_url'])
    expect(started.body.task_url).toBe((started.body.data as { task_url: string }).task_url)
    const paused = await c.post('operate_task', { task_id: task, action: 'pause' })
    expectEnvelope(paused)
    expect(paused.body.data).toEqual({})
  })

  it('a refusal has exactly the six keys, result false and data null', async () => {
    const reply = await c.get('get_task_status', { task_id: 987654 })
    expectRefusal(reply, 3540400, `task[id=987654] does not exist in project(${c.id.bkBizId})`)
  })

  it('an authentication failure has the envelope too', async () => {
    const reply = await esb(h.url, 'get_template_list', { query: { bk_biz_id: c.id.bkBizId } })
    expectRefusal(reply, 1306000, 'APP Code [bk_app_code] cannot be empty')
  })

  it('get_task_list puts count beside the six keys', async () => {
    const reply = await c.get('get_task_list')
    expectEnvelope(reply, ['count'])
    expect(typeof reply.body.count).toBe('number')
  })

  it('an unknown api answers HTTP 404 with code 1306404 and "component not found: <api>"', async () => {
    for (const prefix of ['/v2/sops', '/api/c/compapi/v2/sops']) {
      for (const method of ['GET', 'POST'] as const) {
        const reply = await esb(h.url, 'no_such_api', {
          method,
          prefix,
          headers: authHeader(c.id),
          ...(method === 'GET' ? { query: { a: 1 } } : {}),
        })
        expectRefusal(reply, 1306404, 'component not found: no_such_api', 404)
      }
    }
  })

  it('an unknown api is refused before authentication', async () => {
    const reply = await esb(h.url, 'get_everything', { method: 'POST', body: {} })
    expectRefusal(reply, 1306404, 'component not found: get_everything', 404)
  })

  it('names of Object.prototype are unknown apis, not a crash', async () => {
    for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      const reply = await esb(h.url, name, { method: 'POST', body: {}, headers: authHeader(c.id) })
      expectRefusal(reply, 1306404, `component not found: ${name}`, 404)
    }
  })

  it('a deeper path under the prefix is an unknown api with the envelope', async () => {
    const reply = await raw(`${h.url}/v2/sops/get_task_list/extra/`, { headers: authHeader(c.id) })
    expect(reply.status).toBe(404)
    expect(reply.body.code).toBe(1306404)
    expectEnvelope(reply)
  })

  it('a wrong method answers HTTP 405 with code 1306405', async () => {
    const cases: Array<[string, string]> = [
      ['operate_task', 'GET'],
      ['create_task', 'GET'],
      ['get_task_status', 'POST'],
      ['get_task_list', 'PUT'],
      ['create_template', 'DELETE'],
      ['start_task', 'PATCH'],
    ]
    for (const [api, method] of cases) {
      const reply = await raw(`${h.url}/v2/sops/${api}/`, {
        method,
        headers: { ...authHeader(c.id), 'content-type': 'application/json' },
        ...(method === 'GET' ? {} : { body: JSON.stringify({ bk_biz_id: c.id.bkBizId }) }),
      })
      expectRefusal(reply, 1306405, new RegExp(method), 405)
    }
  })

  it('OPTIONS and HEAD on a known api answer HTTP 405, not "component not found"', async () => {
    const options = await raw(`${h.url}/v2/sops/get_task_list/`, {
      method: 'OPTIONS',
      headers: authHeader(c.id),
    })
    expectRefusal(options, 1306405, /OPTIONS/, 405)
    const head = await fetch(`${h.url}/api/c/compapi/v2/sops/operate_task/`, {
      method: 'HEAD',
      headers: authHeader(c.id),
    })
    expect(head.status).toBe(405)
    expect(head.headers.get('x-request-id')).toMatch(HEX32)
  })

  it('the X-Request-Id and Sops-Trace-Id headers repeat the body on success, refusal, 404, 405 and 413', async () => {
    const replies = [
      await c.get('get_template_list'),
      await c.get('get_task_detail', { task_id: 'x' }),
      await esb(h.url, 'nothing_here', { method: 'POST', body: {} }),
      await esb(h.url, 'get_task_list', { method: 'POST', body: {} }),
      await esb(h.url, 'create_task', {
        method: 'POST',
        raw: JSON.stringify({ pad: 'x'.repeat(1024 * 1024 + 10) }),
      }),
    ]
    expect(replies.map((r) => r.status)).toEqual([200, 200, 404, 405, 413])
    for (const r of replies) {
      expectEnvelope(r)
      expect(r.body.request_id).toMatch(HEX32)
      expect(r.body.trace_id).toMatch(/^[0-9a-f]{32}$/)
    }
  })

  it('every request gets a new request_id', async () => {
    const ids = new Set<string>()
    for (let i = 0; i < 5; i++) ids.add((await c.get('get_template_list')).body.request_id)
    expect(ids.size).toBe(5)
  })

  it("a caller's well-formed X-Request-Id is kept", async () => {
    for (const id of ['my-request.ID_42', 'a', 'x'.repeat(64), '0123456789abcdef0123456789abcdef']) {
      const reply = await c.get('get_template_list', {}, { 'X-Request-Id': id })
      expect(reply.body.request_id).toBe(id)
      expect(reply.headers.get('x-request-id')).toBe(id)
    }
  })

  it('a malformed X-Request-Id is replaced by 32 new hex characters', async () => {
    for (const id of ['x'.repeat(65), 'has space', 'semi;colon', '<script>', 'a/b', '']) {
      const reply = await c.get('get_template_list', {}, { 'X-Request-Id': id })
      expect(reply.body.request_id).toMatch(HEX32)
      expect(reply.body.request_id).not.toBe(id)
      expect(reply.headers.get('x-request-id')).toBe(reply.body.request_id)
    }
  })

  it('the trace id of a W3C traceparent becomes trace_id', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736'
    const reply = await c.get('get_template_list', {}, { traceparent: `00-${traceId}-00f067aa0ba902b7-01` })
    expect(reply.body.trace_id).toBe(traceId)
    expect(reply.headers.get('sops-trace-id')).toBe(traceId)
    const refused = await c.get(
      'get_task_status',
      { task_id: 'nope' },
      { traceparent: `00-${traceId}-00f067aa0ba902b7-01` },
    )
    expect(refused.body.trace_id).toBe(traceId)
  })

  it('a malformed or all-zero traceparent is ignored and trace_id is 32 new hex characters', async () => {
    for (const tp of [
      'garbage',
      '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
      '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01',
      '00-4bf92f35-00f067aa0ba902b7-01',
    ]) {
      const reply = await c.get('get_template_list', {}, { traceparent: tp })
      expect(reply.body.trace_id).toMatch(HEX32)
      expect(reply.body.trace_id).not.toBe('00000000000000000000000000000000')
      expect(tp.toLowerCase()).not.toContain(reply.body.trace_id)
    }
  })

  it('both path prefixes work, with and without the trailing slash, and give the same answer', async () => {
    const urls = [
      `${h.url}/v2/sops/get_template_info/`,
      `${h.url}/v2/sops/get_template_info`,
      `${h.url}/api/c/compapi/v2/sops/get_template_info/`,
      `${h.url}/api/c/compapi/v2/sops/get_template_info`,
    ]
    const datas = []
    for (const u of urls) {
      const reply = await raw(`${u}?bk_biz_id=${c.id.bkBizId}&template_id=${templateId}`, {
        headers: authHeader(c.id),
      })
      datas.push(ok(reply))
    }
    for (const d of datas) expect(d).toEqual(datas[0])
    expect(datas[0]).toMatchObject({ id: templateId, name: 'envelope template' })
  })

  it('POST works under both prefixes, with and without the trailing slash', async () => {
    for (const u of [
      `${h.url}/v2/sops/get_tasks_status`,
      `${h.url}/api/c/compapi/v2/sops/get_tasks_status`,
    ]) {
      for (const slash of ['', '/']) {
        const reply = await raw(`${u}${slash}`, {
          method: 'POST',
          headers: { ...authHeader(c.id), 'content-type': 'application/json' },
          body: JSON.stringify({ bk_biz_id: c.id.bkBizId, task_id_list: [1] }),
        })
        expect(reply.body.code).toBe(0)
        expectEnvelope(reply)
      }
    }
  })
})
