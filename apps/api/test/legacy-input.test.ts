import { request } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createTask,
  createTemplate,
  expectEnvelope,
  expectNoLeak,
  expectParamInvalid,
  expectRefusal,
  type LegacyClient,
  legacyClient,
  ok,
  quickTree,
  type Reply,
  rowCounts,
  stateOf,
} from './fixtures'
import { authHeader, type EnvelopeReply, esb, type Harness, makeIdentity, startHarness } from './harness'

/** A POST with exactly these headers (none added), for bodies without a Content-Type. */
function rawPost(
  url: string,
  path: string,
  body: string,
  headers: Record<string, string>,
): Promise<EnvelopeReply> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${url}${path}`,
      { method: 'POST', headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) } },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => {
          const h = new Headers()
          for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') h.set(k, v)
          resolve({
            status: res.statusCode ?? 0,
            headers: h,
            body: JSON.parse(Buffer.concat(chunks).toString('utf8')),
          })
        })
      },
    )
    req.on('error', reject)
    req.end(body)
  })
}

// Ids that are not 1..2^53−1 or its digits.
const BAD_IDS_JSON: unknown[] = [
  'abc',
  '0',
  '-1',
  '1.5',
  0,
  -1,
  1.5,
  2 ** 53,
  '9007199254740993',
  '9007199254740992',
  true,
  false,
  null,
  '',
  ' 1',
  '1 ',
  '1e3',
  '0x1F',
  '+1',
  '١٢',
  '１２',
  {},
  [1],
  '1; DROP TABLE tasks',
  "1' OR '1'='1",
  '🚀',
]
const BAD_IDS_QUERY: string[] = [
  'abc',
  '0',
  '-1',
  '1.5',
  '9007199254740992',
  '9007199254740993',
  'true',
  'null',
  '',
  '1e3',
  ' 1',
  '0x1F',
  '１２',
  '1; DROP TABLE tasks',
  '1 OR 1=1',
  '🚀',
]

describe('malformed input (never HTTP 500, never a stack, never a row)', () => {
  let h: Harness
  let c: LegacyClient
  let templateId: number
  let taskId: number
  let before: Awaited<ReturnType<typeof rowCounts>>

  beforeAll(async () => {
    h = await startHarness({ worker: false })
    c = legacyClient(h, await makeIdentity(h.deps, { role: 'admin' }))
    templateId = await createTemplate(c, quickTree().tree)
    taskId = await createTask(c, templateId)
  })
  afterAll(async () => {
    await h?.close()
  })

  const snapshot = async () => {
    before = await rowCounts(h)
  }
  const unchanged = async () => {
    expect(await rowCounts(h)).toEqual(before)
  }

  const post = (api: string, raw: string, headers: Record<string, string> = {}) =>
    esb(h.url, api, { method: 'POST', raw, headers: { ...authHeader(c.id), ...headers } })

  describe('bodies that are not a JSON object', () => {
    const bodies: Array<[string, string]> = [
      ['not JSON', 'this is { not json'],
      ['truncated JSON', '{"bk_biz_id": 1, "name": "x"'],
      ['a JSON array', '[{"bk_biz_id": 1}]'],
      ['an empty JSON array', '[]'],
      ['a JSON string', '"bk_biz_id=1"'],
      ['a JSON number', '42'],
      ['JSON null', 'null'],
      ['JSON true', 'true'],
      ['empty', ''],
      ['form-encoded', 'bk_biz_id=1&task_id=2&action=pause'],
      ['two JSON objects', '{"a":1}{"b":2}'],
    ]
    for (const [what, raw] of bodies) {
      it(`${what} → 3540000 "invalid param format" on every POST api, no row written`, async () => {
        await snapshot()
        for (const api of [
          'create_task',
          'create_and_start_task',
          'operate_task',
          'start_task',
          'create_template',
          'get_tasks_status',
        ]) {
          const reply = await post(api, raw)
          expectRefusal(reply, 3540000, 'invalid param format')
        }
        await unchanged()
      })
    }
  })

  describe('ids', () => {
    it('task_id that is not 1..2^53−1 is refused naming task_id (POST, JSON values)', async () => {
      await snapshot()
      for (const task_id of BAD_IDS_JSON) {
        for (const api of ['operate_task', 'start_task']) {
          const reply = await c.post(api, { task_id, action: 'start' })
          expectParamInvalid(reply, 'task_id')
        }
      }
      await unchanged()
      expect(await stateOf(h, taskId)).toBe('CREATED')
    })

    it('task_id that is not 1..2^53−1 is refused naming task_id (GET, query values)', async () => {
      for (const task_id of BAD_IDS_QUERY) {
        for (const api of ['get_task_status', 'get_task_detail', 'get_task_operate_record']) {
          expectParamInvalid(await c.get(api, { task_id }), 'task_id')
        }
      }
    })

    it('bk_biz_id that is not 1..2^53−1 is refused naming bk_biz_id', async () => {
      await snapshot()
      for (const bk_biz_id of BAD_IDS_JSON) {
        expectParamInvalid(
          await c.post('operate_task', { bk_biz_id, task_id: taskId, action: 'start' }),
          'bk_biz_id',
        )
        expectParamInvalid(
          await c.post('create_template', { bk_biz_id, name: 'x', pipeline_tree: quickTree().tree }),
          'bk_biz_id',
        )
      }
      for (const bk_biz_id of BAD_IDS_QUERY) {
        expectParamInvalid(await c.get('get_template_list', { bk_biz_id }), 'bk_biz_id')
        expectParamInvalid(await c.get('get_task_list', { bk_biz_id }), 'bk_biz_id')
      }
      await unchanged()
    })

    it('template_id that is not 1..2^53−1 is refused naming template_id', async () => {
      await snapshot()
      for (const template_id of BAD_IDS_JSON) {
        expectParamInvalid(await c.post('create_task', { template_id, name: 'x' }), 'template_id')
      }
      await unchanged()
    })

    it('the largest ids, beyond the database integer, are "does not exist", not an internal error', async () => {
      for (const id of [2 ** 53 - 1, '9007199254740991', 2147483648, '2147483648', 2147483647]) {
        expectRefusal(
          await c.get('get_task_status', { task_id: String(id) }),
          3540400,
          `task[id=${id}] does not exist in project(${c.id.bkBizId})`,
        )
        expectRefusal(
          await c.post('operate_task', { task_id: id, action: 'pause' }),
          3540400,
          `task[id=${id}] does not exist in project(${c.id.bkBizId})`,
        )
        expectRefusal(
          await c.post('create_task', { template_id: id, name: 'x' }),
          3540400,
          `template[id=${id}] does not exist in project(${c.id.bkBizId})`,
        )
        expect(ok(await c.get('get_task_list', { template_id: String(id) }))).toEqual([])
        expect(ok(await c.post('get_tasks_status', { task_id_list: [id] }))).toEqual([])
      }
    })

    it('ids as strings of digits and as integers are the same id', async () => {
      expect(ok(await c.get('get_task_detail', { task_id: String(taskId) })).id).toBe(taskId)
      expect(
        ok(
          await c.post('get_tasks_status', {
            bk_biz_id: String(c.id.bkBizId),
            task_id_list: [String(taskId)],
          }),
        ),
      ).toHaveLength(1)
    })

    it('a repeated query parameter is refused, not an internal error', async () => {
      const res = await fetch(
        `${h.url}/v2/sops/get_task_status/?bk_biz_id=${c.id.bkBizId}&task_id=${taskId}&task_id=${taskId}`,
        { headers: authHeader(c.id) },
      )
      const body = (await res.json()) as Reply['body']
      expectParamInvalid({ status: res.status, headers: res.headers, body }, 'task_id')
    })
  })

  describe('strings that look like SQL, and unicode', () => {
    it('SQL in names, keywords and node ids is stored and searched as plain text', async () => {
      const evil = "'); DROP TABLE tasks; --"
      const id = await createTask(c, templateId, { name: evil, description: '" OR 1=1 --' })
      expect(ok(await c.get('get_task_detail', { task_id: id })).name).toBe(evil)
      const hit = await c.get('get_task_list', { keyword: 'DROP TABLE' })
      expect(ok<Array<{ id: number }>>(hit).map((t) => t.id)).toEqual([id])
      const none = await c.get('get_task_list', { keyword: "' OR '1'='1" })
      expect(none.body.count).toBe(0)
      expect(ok(await c.get('get_task_operate_record', { task_id: id, node_id: "' OR 1=1 --" }))).toEqual([])
      const tpl = await createTemplate(c, quickTree().tree, 'x"; DELETE FROM templates; --')
      expect(ok(await c.get('get_template_info', { template_id: tpl })).name).toBe(
        'x"; DELETE FROM templates; --',
      )
      // the tables are all still there
      expect(await h.deps.db.prisma.task.count()).toBeGreaterThan(1)
      expect(await h.deps.db.prisma.template.count()).toBeGreaterThan(1)
    })

    it('unicode and emoji in names are kept exactly and found by keyword', async () => {
      const name = '部署 🚀 Ünïcödé — نشر'
      const id = await createTask(c, templateId, { name })
      expect(ok(await c.get('get_task_detail', { task_id: id })).name).toBe(name)
      expect(ok(await c.get('get_task_status', { task_id: id })).name).toBe(name)
      expect(
        ok<Array<{ id: number }>>(await c.get('get_task_list', { keyword: '🚀' })).map((t) => t.id),
      ).toEqual([id])
      expect(ok(await c.get('get_task_operate_record', { task_id: id, node_id: '🚀' }))).toEqual([])
    })

    it('a NUL character in a name is stored or refused as a parameter, never an internal error', async () => {
      await snapshot()
      const reply = await c.post('create_task', { template_id: templateId, name: 'nul\u0000inside' })
      expectNoLeak(reply)
      expect([0, 3540000], JSON.stringify(reply.body)).toContain(reply.body.code)
      if (reply.body.code === 0) {
        const id = (reply.body.data as { task_id: number }).task_id
        expect(ok(await c.get('get_task_detail', { task_id: id })).name).toBe('nul\u0000inside')
      } else {
        expectParamInvalid(reply, 'name')
        await unchanged()
      }
    })
  })

  describe('missing and extra fields', () => {
    const missing: Array<[string, Record<string, unknown>, string]> = [
      ['create_task', { name: 'x' }, 'template_id'],
      ['create_task', { template_id: 1 }, 'name'],
      ['create_template', { name: 'x' }, 'pipeline_tree'],
      ['operate_task', { action: 'start' }, 'task_id'],
      ['start_task', {}, 'task_id'],
      ['get_tasks_status', {}, 'task_id_list'],
    ]
    for (const [api, body, field] of missing) {
      it(`${api} without ${field} is refused with "invalid param: ${field}: is required"`, async () => {
        await snapshot()
        expectParamInvalid(await c.post(api, body), `${field}: is required`)
        await unchanged()
      })
    }

    it('a request without bk_biz_id is refused naming bk_biz_id, GET and POST', async () => {
      expectParamInvalid(
        await esb(h.url, 'get_template_list', { query: { x: 1 }, headers: authHeader(c.id) }),
        'bk_biz_id: is required',
      )
      expectParamInvalid(
        await esb(h.url, 'operate_task', {
          body: { task_id: taskId, action: 'start' },
          headers: authHeader(c.id),
        }),
        'bk_biz_id: is required',
      )
      expectParamInvalid(
        await esb(h.url, 'get_task_status', { query: { task_id: taskId }, headers: authHeader(c.id) }),
        'bk_biz_id: is required',
      )
    })

    it('unknown fields are ignored, __proto__ and constructor included, and pollute nothing', async () => {
      const raw = `{"bk_biz_id": ${c.id.bkBizId}, "template_id": ${templateId}, "name": "extra fields", "foo": [1, {"bar": null}],
        "__proto__": {"polluted": "yes"}, "constructor": {"prototype": {"polluted": "yes"}},
        "constants": {"__proto__": {"polluted": "yes"}, "toString": "x"}, "unexpected_flag": true}`
      const reply = await post('create_task', raw)
      const id = ok<{ task_id: number }>(reply).task_id
      expect(ok(await c.get('get_task_detail', { task_id: id })).name).toBe('extra fields')
      expect(({} as Record<string, unknown>).polluted).toBeUndefined()
      const q = await c.get('get_template_list', { __proto__x: 1, whatever: 'x', limit_to: 3 })
      ok(q)
    })
  })

  describe('body size and content type', () => {
    it('a 2 MiB body answers HTTP 413 with the envelope, and writes nothing', async () => {
      await snapshot()
      const big = JSON.stringify({
        bk_biz_id: c.id.bkBizId,
        template_id: templateId,
        name: 'big',
        description: 'x'.repeat(2 * 1024 * 1024),
      })
      const reply = await post('create_task', big)
      expect(reply.status).toBe(413)
      expect(reply.body).toMatchObject({ result: false, data: null })
      expect(typeof reply.body.message).toBe('string')
      expect(reply.body.code).not.toBe(0)
      expectEnvelope(reply)
      expectNoLeak(reply)
      await unchanged()
    })

    it('a body just under 1 MiB is read', async () => {
      const body = JSON.stringify({
        bk_biz_id: c.id.bkBizId,
        task_id_list: [taskId],
        padding: 'p'.repeat(1024 * 1024 - 200),
      })
      expect(Buffer.byteLength(body)).toBeLessThan(1024 * 1024)
      expect(ok(await post('get_tasks_status', body))).toHaveLength(1)
    })

    const jsonBody = () =>
      JSON.stringify({ bk_biz_id: c.id.bkBizId, template_id: templateId, name: 'content type' })

    for (const contentType of [
      'application/x-www-form-urlencoded',
      'text/plain',
      'application/json; charset=utf-8',
      'multipart/form-data; boundary=x',
      'application/octet-stream',
    ]) {
      it(`a JSON body sent as ${contentType} is read as JSON`, async () => {
        const reply = await rawPost(h.url, '/v2/sops/create_task/', jsonBody(), {
          ...authHeader(c.id),
          'content-type': contentType,
        })
        const id = ok<{ task_id: number }>(reply).task_id
        expect(await stateOf(h, id)).toBe('CREATED')
      })
    }

    it('a JSON body without any Content-Type is read as JSON', async () => {
      const reply = await rawPost(h.url, '/api/c/compapi/v2/sops/create_task', jsonBody(), authHeader(c.id))
      ok(reply)
      const withCreds = JSON.stringify({
        bk_app_code: c.id.appCode,
        bk_app_secret: c.id.appSecret,
        bk_token: c.id.token,
        bk_biz_id: c.id.bkBizId,
        task_id: taskId,
      })
      const status = await rawPost(h.url, '/v2/sops/start_task/', withCreds, {})
      ok(status)
      expect(await stateOf(h, taskId)).toBe('RUNNING')
    })

    it('a deeply nested constant value is answered as a parameter problem or accepted, not as an internal error', async () => {
      const depth = 50_000
      const raw = `{"bk_biz_id": ${c.id.bkBizId}, "template_id": ${templateId}, "name": "deep", "constants": {"result": ${'['.repeat(depth)}${']'.repeat(depth)}}}`
      await snapshot()
      const reply: Reply = await post('create_task', raw)
      expectNoLeak(reply)
      expect(reply.status).toBe(200)
      expect([0, 3540000], JSON.stringify(reply.body)).toContain(reply.body.code)
    })
  })
})
