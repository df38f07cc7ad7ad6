import { request as httpRequest } from 'node:http'
import { linearTree } from '@stdops/core/testing'
import { sql } from '@stdops/db'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { hashSecret, newSecret } from '../src/crypto'
import { RateLimiter } from '../src/services/rate-limit'
import {
  authHeader,
  type EnvelopeReply,
  esb,
  type Harness,
  type Identity,
  makeIdentity,
  startHarness,
} from './harness'
import { runServerCli, sleep } from './procs'

/**
 * Authentication and isolation attacks on the legacy API: what an attacker can
 * send, and that each attempt is refused with the documented code, reveals nothing and writes nothing.
 */

const MSG = {
  noCode: 'APP Code [bk_app_code] cannot be empty',
  noSecret: 'APP Secret [bk_app_secret] cannot be empty',
  badSecret: (code: string) =>
    `APP Secret verification failed, please confirm the APP Secret and APP Code [bk_app_code=${code}] match`,
  badToken: 'User authentication failed, please check if the bk_token is valid',
  noUser: 'User authentication failed, please provide a valid user identity, such as bk_token, bk_username',
  taskMissing: (taskId: number, bkBizId: number) =>
    `task[id=${taskId}] does not exist in project(${bkBizId})`,
  templateMissing: (id: number, bkBizId: number) =>
    `template[id=${id}] does not exist in project(${bkBizId})`,
  denied: (action: string, bkBizId: number, username: string) =>
    `permission denied: action ${action} on project(${bkBizId}) for user ${username}`,
}

const ENVELOPE_KEYS = ['code', 'data', 'message', 'request_id', 'result', 'trace_id']
const LEAK = /\n\s+at |\bat .+:\d+:\d+|node_modules|\.[cm]?[jt]s:\d+|\/work\/|Error:|Traceback|Prisma|SQLITE_/

function expectRefused(reply: EnvelopeReply, code: number, message?: string, status = 200) {
  const shown = JSON.stringify(reply.body)
  expect(reply.status, shown).toBe(status)
  expect(Object.keys(reply.body).sort(), shown).toEqual(ENVELOPE_KEYS)
  expect(reply.body.result, shown).toBe(false)
  expect(reply.body.code, shown).toBe(code)
  expect(reply.body.data, shown).toBeNull()
  if (message !== undefined) expect(reply.body.message, shown).toBe(message)
  expect(reply.body.message).not.toMatch(LEAK)
}

function expectOk(reply: EnvelopeReply) {
  const shown = JSON.stringify(reply.body)
  expect(reply.status, shown).toBe(200)
  expect(reply.body.code, shown).toBe(0)
  expect(reply.body.result, shown).toBe(true)
  return reply.body.data
}

const headerOf = (creds: unknown) => ({
  'X-Bkapi-Authorization': typeof creds === 'string' ? creds : JSON.stringify(creds),
})

/** A request over node:http, for what fetch cannot send: duplicate headers, a chosen source address, huge headers. */
function rawRequest(
  base: string,
  opts: {
    method?: string
    path: string
    headers?: Record<string, string | string[]>
    body?: string
    localAddress?: string
  },
): Promise<{ status: number; text: string; body: Record<string, unknown> | null }> {
  const u = new URL(base)
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: u.hostname,
        port: u.port,
        method: opts.method ?? 'GET',
        path: opts.path,
        ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
        agent: false,
      },
      (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => {
          text += c
        })
        res.on('end', () => {
          let body: Record<string, unknown> | null = null
          try {
            body = JSON.parse(text) as Record<string, unknown>
          } catch {}
          resolve({ status: res.statusCode ?? 0, text, body })
        })
      },
    )
    for (const [k, v] of Object.entries(opts.headers ?? {})) req.setHeader(k, v)
    req.on('error', reject)
    if (opts.body !== undefined) req.end(opts.body)
    else req.end()
  })
}

describe('authentication and isolation attacks', () => {
  let h: Harness
  /** admin in project A */
  let a: Identity
  /** admin in project B */
  let b: Identity
  /** viewer in project A */
  let viewer: Identity
  /** operator in project A */
  let operator: Identity
  /** a user with no role in project A */
  let outsider: Identity
  let templateA: number
  let templateB: number
  let taskA: number
  let taskB: number
  let createdB: number

  const post = (
    id: Pick<Identity, 'appCode' | 'appSecret' | 'token'>,
    api: string,
    body: Record<string, unknown>,
  ) => esb(h.url, api, { method: 'POST', body, headers: authHeader(id) })
  const get = (
    id: Pick<Identity, 'appCode' | 'appSecret' | 'token'>,
    api: string,
    query: Record<string, string | number>,
  ) => esb(h.url, api, { method: 'GET', query, headers: authHeader(id) })

  /** Everything a request could have written, and the state of one task. */
  async function snapshot(taskId?: number) {
    const [row] = await h.deps.db.query<Record<string, number | string>>(sql`SELECT
      (SELECT COUNT(*) FROM tasks) AS tasks, (SELECT COUNT(*) FROM templates) AS templates,
      (SELECT COUNT(*) FROM operate_records) AS records, (SELECT COUNT(*) FROM task_events) AS events,
      (SELECT COUNT(*) FROM jobs) AS jobs, (SELECT COUNT(*) FROM node_states) AS nodes`)
    const counts = Object.fromEntries(Object.entries(row!).map(([k, v]) => [k, Number(v)]))
    if (taskId === undefined) return { counts }
    const [task] = await h.deps.db.query<{ state: string; version: number }>(
      sql`SELECT state, version FROM tasks WHERE id = ${taskId}`,
    )
    return { counts, task: { state: task!.state, version: Number(task!.version) } }
  }

  async function newTask(id: Identity, templateId: number, start: boolean): Promise<number> {
    const reply = await post(id, start ? 'create_and_start_task' : 'create_task', {
      bk_biz_id: id.bkBizId,
      template_id: templateId,
      name: 'attack target',
    })
    return (expectOk(reply) as { task_id: number }).task_id
  }

  beforeAll(async () => {
    // No worker: tasks stay where the API puts them, and only requests write rows.
    h = await startHarness({ worker: false })
    a = await makeIdentity(h.deps, { role: 'admin' })
    b = await makeIdentity(h.deps, { role: 'admin' })
    viewer = await makeIdentity(h.deps, { role: 'viewer', projectId: a.projectId })
    operator = await makeIdentity(h.deps, { role: 'operator', projectId: a.projectId })
    outsider = await makeIdentity(h.deps, { role: null, projectId: a.projectId })
    const tree = linearTree(1, 'set_variables', { variables: { hook: false, value: { x: 1 } } })
    templateA = (
      expectOk(
        await post(a, 'create_template', { bk_biz_id: a.bkBizId, name: 'A', pipeline_tree: tree }),
      ) as {
        template_id: number
      }
    ).template_id
    templateB = (
      expectOk(
        await post(b, 'create_template', { bk_biz_id: b.bkBizId, name: 'B', pipeline_tree: tree }),
      ) as {
        template_id: number
      }
    ).template_id
    taskA = await newTask(a, templateA, true)
    taskB = await newTask(b, templateB, true)
    createdB = await newTask(b, templateB, false)
  })

  afterAll(async () => {
    await h?.close()
  })

  beforeEach(() => {
    // Each test starts with a clean failure count: the refusals of one test must not rate-limit the next.
    h.deps.authFailures = new RateLimiter()
  })

  describe("another project's task", () => {
    it('is answered exactly like a task that does not exist, by every task API, and is left untouched', async () => {
      const missing = taskB + 100_000
      const before = await snapshot(taskB)
      const calls: Array<[string, 'GET' | 'POST', Record<string, unknown>]> = [
        ['get_task_status', 'GET', {}],
        ['get_task_detail', 'GET', {}],
        ['get_task_operate_record', 'GET', {}],
        ['start_task', 'POST', {}],
        ...(['start', 'pause', 'resume', 'revoke', 'nonsense'] as const).map(
          (action): [string, 'POST', Record<string, unknown>] => ['operate_task', 'POST', { action }],
        ),
      ]
      for (const [api, method, extra] of calls) {
        for (const who of [a, operator]) {
          const ask = (taskId: number) =>
            method === 'GET'
              ? get(who, api, { bk_biz_id: a.bkBizId, task_id: taskId, ...(extra as Record<string, string>) })
              : post(who, api, { bk_biz_id: a.bkBizId, task_id: taskId, ...extra })
          const elsewhere = await ask(taskB)
          const nowhere = await ask(missing)
          expectRefused(elsewhere, 3540400, MSG.taskMissing(taskB, a.bkBizId))
          expectRefused(nowhere, 3540400, MSG.taskMissing(missing, a.bkBizId))
          // The same reply but for the id itself: same status, keys, code, data and message shape.
          const strip = (r: EnvelopeReply, id: number) => ({
            status: r.status,
            keys: Object.keys(r.body).sort(),
            code: r.body.code,
            result: r.body.result,
            data: r.body.data,
            message: r.body.message.replace(String(id), '<id>'),
          })
          expect(strip(elsewhere, taskB), `${api} ${JSON.stringify(extra)}`).toEqual(strip(nowhere, missing))
        }
      }
      // The same task id as a string of digits and via scope=project: still nothing.
      expectRefused(
        await get(a, 'get_task_status', {
          bk_biz_id: String(a.projectId),
          scope: 'project',
          task_id: String(taskB),
        }),
        3540400,
        MSG.taskMissing(taskB, a.projectId),
      )
      expect(await snapshot(taskB)).toEqual(before)
    })

    it('is left out of get_tasks_status, as an id that does not exist is', async () => {
      const reply = await post(a, 'get_tasks_status', {
        bk_biz_id: a.bkBizId,
        task_id_list: [taskB, createdB, taskA],
      })
      const list = expectOk(reply) as Array<{ id: number }>
      expect(list.map((t) => t.id)).toEqual([taskA])
    })

    it('is never listed by get_task_list, whatever the filters', async () => {
      for (const query of [
        {},
        { keyword: 'attack' },
        { template_id: templateB },
        { is_started: 'true' },
        { limit: 200 },
      ]) {
        const list = expectOk(await get(a, 'get_task_list', { bk_biz_id: a.bkBizId, ...query })) as Array<{
          id: number
        }>
        expect(list.map((t) => t.id)).not.toContain(taskB)
        expect(list.map((t) => t.id)).not.toContain(createdB)
      }
    })

    it('a template of another project is answered like a missing one, and no task is created from it', async () => {
      const before = await snapshot()
      const missing = templateB + 100_000
      for (const api of ['create_task', 'create_and_start_task']) {
        expectRefused(
          await post(a, api, { bk_biz_id: a.bkBizId, template_id: templateB, name: 'stolen' }),
          3540400,
          MSG.templateMissing(templateB, a.bkBizId),
        )
        expectRefused(
          await post(a, api, { bk_biz_id: a.bkBizId, template_id: missing, name: 'stolen' }),
          3540400,
          MSG.templateMissing(missing, a.bkBizId),
        )
      }
      expectRefused(
        await get(a, 'get_template_info', { bk_biz_id: a.bkBizId, template_id: templateB }),
        3540400,
        MSG.templateMissing(templateB, a.bkBizId),
      )
      expect(await snapshot()).toEqual(before)
    })

    it('naming the other project itself is a permission denial, not a way in (trusted apps aside)', async () => {
      const before = await snapshot(taskB)
      expectRefused(
        await post(a, 'operate_task', { bk_biz_id: b.bkBizId, task_id: taskB, action: 'revoke' }),
        3599999,
        MSG.denied('task_operate', b.bkBizId, a.username),
      )
      expectRefused(
        await get(a, 'get_task_detail', { bk_biz_id: b.bkBizId, task_id: taskB }),
        3599999,
        MSG.denied('task_view', b.bkBizId, a.username),
      )
      expect(await snapshot(taskB)).toEqual(before)
    })

    it('a trusted app skips permission checks but still cannot reach a task through the wrong project', async () => {
      const trusted = await makeIdentity(h.deps, { role: null, trusted: true })
      const before = await snapshot(taskB)
      expectRefused(
        await post(trusted, 'operate_task', { bk_biz_id: a.bkBizId, task_id: taskB, action: 'pause' }),
        3540400,
        MSG.taskMissing(taskB, a.bkBizId),
      )
      expect(await snapshot(taskB)).toEqual(before)
    })
  })

  describe("a viewer's token", () => {
    it('is refused every operation with 3599999 and the permission message; nothing changes', async () => {
      const running = await newTask(a, templateA, true)
      const created = await newTask(a, templateA, false)
      const before = await snapshot(running)
      for (const action of ['start', 'pause', 'resume', 'revoke']) {
        for (const task of [running, created]) {
          expectRefused(
            await post(viewer, 'operate_task', { bk_biz_id: a.bkBizId, task_id: task, action }),
            3599999,
            MSG.denied('task_operate', a.bkBizId, viewer.username),
          )
        }
      }
      expectRefused(
        await post(viewer, 'start_task', { bk_biz_id: a.bkBizId, task_id: created }),
        3599999,
        MSG.denied('task_operate', a.bkBizId, viewer.username),
      )
      expectRefused(
        await post(viewer, 'create_task', {
          bk_biz_id: a.bkBizId,
          template_id: templateA,
          name: 'not yours',
        }),
        3599999,
        MSG.denied('create_task', a.bkBizId, viewer.username),
      )
      expectRefused(
        await post(viewer, 'create_and_start_task', {
          bk_biz_id: a.bkBizId,
          template_id: templateA,
          name: 'not yours',
        }),
        3599999,
        MSG.denied('create_task', a.bkBizId, viewer.username),
      )
      expectRefused(
        await post(viewer, 'create_template', {
          bk_biz_id: a.bkBizId,
          name: 'not yours',
          pipeline_tree: linearTree(1, 'set_variables', { variables: { hook: false, value: {} } }),
        }),
        3599999,
        MSG.denied('template_edit', a.bkBizId, viewer.username),
      )
      expect(await snapshot(running)).toEqual(before)
      // What a viewer may do, it can: read the task it may not operate.
      expectOk(await get(viewer, 'get_task_status', { bk_biz_id: a.bkBizId, task_id: running }))
      const records = expectOk(
        await get(viewer, 'get_task_operate_record', { bk_biz_id: a.bkBizId, task_id: running }),
      ) as Array<{
        operator: string
      }>
      expect(records.map((r) => r.operator)).not.toContain(viewer.username)
    })

    it('a user with no role in the project may not even read; an operator may not create templates', async () => {
      const before = await snapshot(taskA)
      expectRefused(
        await get(outsider, 'get_task_status', { bk_biz_id: a.bkBizId, task_id: taskA }),
        3599999,
        MSG.denied('task_view', a.bkBizId, outsider.username),
      )
      expectRefused(
        await post(outsider, 'operate_task', { bk_biz_id: a.bkBizId, task_id: taskA, action: 'pause' }),
        3599999,
        MSG.denied('task_operate', a.bkBizId, outsider.username),
      )
      expectRefused(
        await post(operator, 'create_template', {
          bk_biz_id: a.bkBizId,
          name: 'x',
          pipeline_tree: linearTree(1, 'set_variables', { variables: { hook: false, value: {} } }),
        }),
        3599999,
        MSG.denied('template_edit', a.bkBizId, operator.username),
      )
      expect(await snapshot(taskA)).toEqual(before)
    })
  })

  describe('operate_task actions', () => {
    it("'finish', the engine's own move, is not a caller's command: 'task command is invalid', in every state, nothing written", async () => {
      const tasks = {
        RUNNING: await newTask(a, templateA, true),
        CREATED: await newTask(a, templateA, false),
      }
      for (const [state, task] of Object.entries(tasks)) {
        const before = await snapshot(task)
        for (const action of [
          'finish',
          'FINISH',
          'start ',
          'Pause',
          'retry',
          'skip',
          'constructor',
          '__proto__',
          'toString',
        ]) {
          const reply = await post(operator, 'operate_task', { bk_biz_id: a.bkBizId, task_id: task, action })
          expect(reply.body.message, `${action} on ${state}: ${JSON.stringify(reply.body)}`).not.toMatch(
            /^internal error/,
          )
          expectRefused(reply, 3545000, 'task command is invalid')
        }
        expect(await snapshot(task), state).toEqual(before)
      }
    })
  })

  /** get_template_list of project A with this X-Bkapi-Authorization value and nothing else. */
  const listWith = (value: string) =>
    esb(h.url, 'get_template_list', {
      query: { bk_biz_id: a.bkBizId },
      headers: { 'X-Bkapi-Authorization': value },
    })

  describe('forged or malformed X-Bkapi-Authorization', () => {
    it('a header that is not a JSON object carries no credentials, whatever it looks like', async () => {
      const good = JSON.stringify({ bk_app_code: a.appCode, bk_app_secret: a.appSecret, bk_token: a.token })
      for (const value of [
        'not json',
        '{',
        good.slice(0, -1),
        `${good}}`,
        `${good} trailing`,
        `[${good}]`,
        JSON.stringify(good),
        'null',
        'true',
        '12345',
        '{}',
        `bk_app_code=${a.appCode}&bk_app_secret=${a.appSecret}&bk_token=${a.token}`,
        `Bearer ${a.token}`,
        Buffer.from(good).toString('base64'),
        `{"X-Bkapi-Authorization": ${good}}`,
        `{"credentials": ${good}}`,
      ]) {
        expectRefused(await listWith(value), 1306000, MSG.noCode)
      }
    })

    it('credentials smuggled through __proto__ or constructor never authenticate', async () => {
      const creds = { bk_app_code: a.appCode, bk_app_secret: a.appSecret, bk_token: a.token }
      for (const value of [
        `{"__proto__": ${JSON.stringify(creds)}}`,
        `{"constructor": {"prototype": ${JSON.stringify(creds)}}}`,
        `{"__proto__": {"bk_token": "${a.token}"}, "bk_app_code": "${a.appCode}", "bk_app_secret": "${a.appSecret}"}`,
      ]) {
        const reply = await listWith(value)
        expect(reply.body.result, value).toBe(false)
        expect(reply.body.code, value).toBe(1306000)
      }
      expectRefused(
        await listWith(
          `{"__proto__": {"bk_token": "${a.token}"}, "bk_app_code": "${a.appCode}", "bk_app_secret": "${a.appSecret}"}`,
        ),
        1306000,
        MSG.noUser,
      )
      // and the server's own objects were not polluted: a plain request is still refused for lack of credentials
      expectRefused(
        await esb(h.url, 'get_template_list', { query: { bk_biz_id: a.bkBizId } }),
        1306000,
        MSG.noCode,
      )
    })

    it('values of the wrong type count as missing, never as a match', async () => {
      for (const [creds, message] of [
        [{ bk_app_code: [a.appCode], bk_app_secret: a.appSecret, bk_token: a.token }, MSG.noCode],
        [{ bk_app_code: { $ne: '' }, bk_app_secret: a.appSecret, bk_token: a.token }, MSG.noCode],
        [{ bk_app_code: a.appCode, bk_app_secret: [a.appSecret], bk_token: a.token }, MSG.noSecret],
        [{ bk_app_code: a.appCode, bk_app_secret: true, bk_token: a.token }, MSG.noSecret],
        [{ bk_app_code: a.appCode, bk_app_secret: a.appSecret, bk_token: { $gt: '' } }, MSG.noUser],
        [{ bk_app_code: a.appCode, bk_app_secret: a.appSecret, bk_token: null }, MSG.noUser],
      ] as const) {
        expectRefused(await listWith(JSON.stringify(creds)), 1306000, message)
      }
    })

    it("a forged secret is refused, however close to the real one, also another app's secret", async () => {
      const variants = [
        a.appSecret.toUpperCase(),
        `${a.appSecret} `,
        ` ${a.appSecret}`,
        a.appSecret.slice(0, -1),
        `${a.appSecret}x`,
        a.appSecret.slice(0, 16),
        b.appSecret,
        hashSecret(h.deps.secretKey, a.appSecret),
        '*',
        '%',
        "' OR '1'='1",
      ]
      for (const secret of variants) {
        expectRefused(
          await listWith(
            JSON.stringify({ bk_app_code: a.appCode, bk_app_secret: secret, bk_token: a.token }),
          ),
          1306000,
          MSG.badSecret(a.appCode),
        )
      }
    })

    it('a forged token is refused: altered, truncated, a hash of the token, SQL in it', async () => {
      for (const token of [
        `${a.token}x`,
        a.token.slice(0, -1),
        a.token.toUpperCase(),
        hashSecret(h.deps.secretKey, a.token),
        "' OR 1=1 --",
        '%',
      ]) {
        expectRefused(
          await listWith(
            JSON.stringify({ bk_app_code: a.appCode, bk_app_secret: a.appSecret, bk_token: token }),
          ),
          1306000,
          MSG.badToken,
        )
      }
    })

    it('two X-Bkapi-Authorization headers, one of them valid, do not authenticate', async () => {
      const good = JSON.stringify({ bk_app_code: a.appCode, bk_app_secret: a.appSecret, bk_token: a.token })
      const bad = JSON.stringify({ bk_app_code: a.appCode, bk_app_secret: 'wrong-secret-0123456789' })
      for (const pair of [
        [good, bad],
        [bad, good],
        [good, good],
      ]) {
        const reply = await rawRequest(h.url, {
          path: `/v2/sops/get_template_list/?bk_biz_id=${a.bkBizId}`,
          headers: { 'X-Bkapi-Authorization': pair },
        })
        expect(reply.status).toBe(200)
        expect(reply.body).toMatchObject({ result: false, code: 1306000, message: MSG.noCode, data: null })
      }
    })
  })

  describe('NUL characters (PostgreSQL refuses them in text)', () => {
    it('a NUL in any credential is an ordinary authentication failure, never an internal error', async () => {
      const skip = await makeIdentity(h.deps, { role: 'admin', userSkip: true, projectId: a.projectId })
      const cases: Array<[Record<string, unknown>, string]> = [
        [
          { bk_app_code: 'app\u0000', bk_app_secret: a.appSecret, bk_token: a.token },
          'Invalid APP Code [bk_app_code=app\u0000], please confirm the APP Code has been registered',
        ],
        [
          { bk_app_code: `${a.appCode}\u0000`, bk_app_secret: a.appSecret, bk_token: a.token },
          `Invalid APP Code [bk_app_code=${a.appCode}\u0000], please confirm the APP Code has been registered`,
        ],
        [
          { bk_app_code: a.appCode, bk_app_secret: `${a.appSecret}\u0000`, bk_token: a.token },
          MSG.badSecret(a.appCode),
        ],
        [{ bk_app_code: a.appCode, bk_app_secret: a.appSecret, bk_token: `${a.token}\u0000` }, MSG.badToken],
      ]
      for (const [creds, message] of cases) {
        expectRefused(await listWith(JSON.stringify(creds)), 1306000, message)
        expectRefused(
          await esb(h.url, 'get_tasks_status', {
            method: 'POST',
            body: { bk_biz_id: a.bkBizId, task_id_list: [taskA], ...creds },
          }),
          1306000,
          message,
        )
      }
      // a user-skip app naming a user with a NUL in the name: no such user, so no permission, never a crash
      const reply = await listWith(
        JSON.stringify({
          bk_app_code: skip.appCode,
          bk_app_secret: skip.appSecret,
          bk_username: `${skip.username}\u0000`,
        }),
      )
      expect(reply.body.message).not.toMatch(/^internal error/)
      expect(reply.body.result).toBe(false)
    })

    it('a NUL in any parameter is a parameter error or an empty answer, never an internal error', async () => {
      const before = await snapshot()
      const nul = 'x\u0000y'
      const replies = [
        await get(a, 'get_task_list', { bk_biz_id: a.bkBizId, keyword: nul }),
        await get(a, 'get_task_list', { bk_biz_id: a.bkBizId, executor: nul }),
        await get(a, 'get_task_operate_record', { bk_biz_id: a.bkBizId, task_id: taskA, node_id: nul }),
        await get(a, 'get_task_status', { bk_biz_id: `${a.bkBizId}\u0000`, task_id: taskA }),
        await get(a, 'get_task_status', { bk_biz_id: a.bkBizId, task_id: taskA, scope: nul }),
        await post(a, 'operate_task', { bk_biz_id: a.bkBizId, task_id: taskA, action: `pause\u0000` }),
        await post(a, 'create_task', { bk_biz_id: a.bkBizId, template_id: templateA, name: nul }),
        await post(a, 'create_task', {
          bk_biz_id: a.bkBizId,
          template_id: templateA,
          name: 'ok',
          description: nul,
        }),
        await post(a, 'create_task', {
          bk_biz_id: a.bkBizId,
          template_id: templateA,
          name: 'ok',
          callback_url: `http://x.y/${nul}`,
        }),
        await post(a, 'create_template', {
          bk_biz_id: a.bkBizId,
          name: nul,
          pipeline_tree: linearTree(1, 'set_variables', { variables: { hook: false, value: {} } }),
        }),
      ]
      for (const reply of replies) {
        expect(reply.status).toBe(200)
        expect(reply.body.message, JSON.stringify(reply.body)).not.toMatch(/^internal error/)
        expect([0, 3540000, 3540400, 3545000], JSON.stringify(reply.body)).toContain(reply.body.code)
        expect(reply.body.message).not.toMatch(LEAK)
      }
      const written = await snapshot()
      // only the successful ones may have written (a NUL stored inside JSON text is escaped and harmless)
      const succeeded = replies.filter((r) => r.body.code === 0).length
      if (succeeded === 0) expect(written).toEqual(before)
    })
  })

  describe('an oversized request', () => {
    it('an oversized header is refused by Node (431), never a 5xx, and the server stays up', async () => {
      for (const [name, size] of [
        ['X-Bkapi-Authorization', 20_000],
        ['X-Padding', 64 * 1024],
        ['X-Request-Id', 1024 * 1024],
      ] as const) {
        const reply = await rawRequest(h.url, {
          path: `/v2/sops/get_template_list/?bk_biz_id=${a.bkBizId}`,
          headers: { ...authHeader(a), [name]: 'a'.repeat(size) },
        }).catch((err: NodeJS.ErrnoException) => ({ status: -1, text: String(err.code), body: null }))
        // Node answers 431 and closes; with a very large header the socket may be reset first.
        if (reply.status !== -1) expect(reply.status, name).toBe(431)
        else expect(['ECONNRESET', 'EPIPE']).toContain(reply.text)
        expectOk(await get(a, 'get_template_list', { bk_biz_id: a.bkBizId }))
      }
      // Many headers of a legal total size are read as usual.
      const many: Record<string, string> = {}
      for (let i = 0; i < 150; i++) many[`x-extra-${i}`] = 'y'.repeat(40)
      const reply = await rawRequest(h.url, {
        path: `/v2/sops/get_template_list/?bk_biz_id=${a.bkBizId}`,
        headers: { ...authHeader(a), ...many },
      })
      expect(reply.status).toBe(200)
      expect(reply.body).toMatchObject({ result: true, code: 0 })
    })

    it('a credentials header just under the limit is read and refused in an envelope', async () => {
      const value = JSON.stringify({
        bk_app_code: a.appCode,
        bk_app_secret: 'x'.repeat(12_000),
        bk_token: a.token,
      })
      expectRefused(await listWith(value), 1306000, MSG.badSecret(a.appCode))
      const huge = JSON.stringify({
        bk_app_code: 'c'.repeat(12_000),
        bk_app_secret: 'secret-0123456789',
        bk_token: a.token,
      })
      const reply = await listWith(huge)
      expect(reply.status).toBe(200)
      expect(reply.body.code).toBe(1306000)
    })

    it('an oversized body is 413 with the envelope, and nothing is written', async () => {
      const before = await snapshot()
      const reply = await esb(h.url, 'create_task', {
        method: 'POST',
        raw: JSON.stringify({
          bk_biz_id: a.bkBizId,
          template_id: templateA,
          name: 'big',
          description: 'd'.repeat(1024 * 1024 + 10),
        }),
        headers: authHeader(a),
      })
      expectRefused(reply, 3540000, undefined, 413)
      expect(await snapshot()).toEqual(before)
      expectOk(await get(a, 'get_template_list', { bk_biz_id: a.bkBizId }))
    })
  })

  describe('credentials split between header and body: the header wins entirely', () => {
    it('a header without a token is not completed by a token in the body or query', async () => {
      const before = await snapshot()
      const partial = headerOf({ bk_app_code: a.appCode, bk_app_secret: a.appSecret })
      expectRefused(
        await esb(h.url, 'create_task', {
          method: 'POST',
          body: { bk_biz_id: a.bkBizId, template_id: templateA, name: 'split', bk_token: a.token },
          headers: partial,
        }),
        1306000,
        MSG.noUser,
      )
      expectRefused(
        await esb(h.url, 'get_template_list', {
          query: { bk_biz_id: a.bkBizId, bk_token: a.token },
          headers: partial,
        }),
        1306000,
        MSG.noUser,
      )
      expect(await snapshot()).toEqual(before)
    })

    it('a header with only a token is not completed by the app code and secret in the body', async () => {
      expectRefused(
        await esb(h.url, 'get_tasks_status', {
          method: 'POST',
          body: {
            bk_biz_id: a.bkBizId,
            task_id_list: [taskA],
            bk_app_code: a.appCode,
            bk_app_secret: a.appSecret,
          },
          headers: headerOf({ bk_token: a.token }),
        }),
        1306000,
        MSG.noCode,
      )
      expectRefused(
        await esb(h.url, 'get_tasks_status', {
          method: 'POST',
          body: { bk_biz_id: a.bkBizId, task_id_list: [taskA], bk_app_secret: a.appSecret },
          headers: headerOf({ bk_app_code: a.appCode, bk_token: a.token }),
        }),
        1306000,
        MSG.noSecret,
      )
    })

    it('a wrong secret in the header is not rescued by the right one in the body', async () => {
      expectRefused(
        await esb(h.url, 'get_tasks_status', {
          method: 'POST',
          body: {
            bk_biz_id: a.bkBizId,
            task_id_list: [taskA],
            bk_app_code: a.appCode,
            bk_app_secret: a.appSecret,
            bk_token: a.token,
          },
          headers: headerOf({
            bk_app_code: a.appCode,
            bk_app_secret: 'wrong-secret-0123456789',
            bk_token: a.token,
          }),
        }),
        1306000,
        MSG.badSecret(a.appCode),
      )
    })

    it('a malformed header is still the header: valid body credentials are ignored', async () => {
      expectRefused(
        await esb(h.url, 'get_tasks_status', {
          method: 'POST',
          body: {
            bk_biz_id: a.bkBizId,
            task_id_list: [taskA],
            bk_app_code: a.appCode,
            bk_app_secret: a.appSecret,
            bk_token: a.token,
          },
          headers: { 'X-Bkapi-Authorization': 'garbage' },
        }),
        1306000,
        MSG.noCode,
      )
    })

    it("valid header credentials act as the header's user, whatever the body claims", async () => {
      const task = await newTask(a, templateA, true)
      // the body names the admin; the header is the viewer's: the viewer is refused
      expectRefused(
        await esb(h.url, 'operate_task', {
          method: 'POST',
          body: {
            bk_biz_id: a.bkBizId,
            task_id: task,
            action: 'pause',
            bk_app_code: a.appCode,
            bk_app_secret: a.appSecret,
            bk_token: a.token,
          },
          headers: authHeader(viewer),
        }),
        3599999,
        MSG.denied('task_operate', a.bkBizId, viewer.username),
      )
      // the header is the operator's, the body's credentials are bogus: served as the operator
      expectOk(
        await esb(h.url, 'operate_task', {
          method: 'POST',
          body: {
            bk_biz_id: a.bkBizId,
            task_id: task,
            action: 'pause',
            bk_app_code: 'nobody',
            bk_app_secret: 'wrong',
            bk_token: a.token,
          },
          headers: authHeader(operator),
        }),
      )
      const records = expectOk(
        await get(a, 'get_task_operate_record', { bk_biz_id: a.bkBizId, task_id: task }),
      ) as Array<{
        operator: string
        operate_type: string
      }>
      expect(records.filter((r) => r.operate_type === 'pause').map((r) => r.operator)).toEqual([
        operator.username,
      ])
    })

    it("a user-skip app's header is not given a user by bk_username in the body", async () => {
      const skip = await makeIdentity(h.deps, { role: 'admin', userSkip: true, projectId: a.projectId })
      expectRefused(
        await esb(h.url, 'get_tasks_status', {
          method: 'POST',
          body: { bk_biz_id: a.bkBizId, task_id_list: [taskA], bk_username: skip.username },
          headers: headerOf({ bk_app_code: skip.appCode, bk_app_secret: skip.appSecret }),
        }),
        1306000,
        MSG.noUser,
      )
    })
  })

  describe('revoked and expired tokens (admin token add --expires-in, admin token revoke)', () => {
    const cli = (...args: string[]) => runServerCli(args, { DATABASE_URL: h.dbUrl })
    const tokenFrom = (stdout: string) => {
      const m = /^token: (\S+)$/m.exec(stdout)
      if (!m) throw new Error(`no token printed: ${stdout}`)
      return m[1]!
    }
    const asUser = (token: string) =>
      get({ appCode: a.appCode, appSecret: a.appSecret, token }, 'get_template_list', {
        bk_biz_id: a.bkBizId,
      })
    const tokenRow = async (token: string) => {
      const [row] = await h.deps.db.query<{
        created_at: number
        expires_at: number | null
        revoked_at: number | null
      }>(
        sql`SELECT created_at, expires_at, revoked_at FROM tokens WHERE token_hash = ${hashSecret(h.deps.secretKey, token)}`,
      )
      return (
        row && {
          created: Number(row.created_at),
          expires: row.expires_at === null ? null : Number(row.expires_at),
          revoked: row.revoked_at,
        }
      )
    }

    it('a token issued with --expires-in is served until it expires and refused from then on', async () => {
      const short = await cli('admin', 'token', 'add', a.username, '--expires-in', '1s')
      expect(short.code, short.stderr).toBe(0)
      const shortToken = tokenFrom(short.stdout)
      const shortRow = await tokenRow(shortToken)
      expect(shortRow!.expires! - shortRow!.created).toBe(1000)

      await sleep(Math.max(0, shortRow!.expires! - Date.now()) + 50)
      expectRefused(await asUser(shortToken), 1306000, MSG.badToken)

      // The boundary, without waiting an hour: the server's clock moved to just before and just after.
      const longer = await cli('admin', 'token', 'add', a.username, '--expires-in', '1h')
      expect(longer.code, longer.stderr).toBe(0)
      const token = tokenFrom(longer.stdout)
      const row = await tokenRow(token)
      expect(row!.expires! - row!.created).toBe(3_600_000)
      expectOk(await asUser(token))
      const realNow = h.deps.now
      try {
        h.deps.now = () => row!.expires! - 1
        expectOk(await asUser(token))
        h.deps.now = () => row!.expires!
        expectRefused(await asUser(token), 1306000, MSG.badToken)
        h.deps.now = () => row!.expires! + 86_400_000
        expectRefused(await asUser(token), 1306000, MSG.badToken)
      } finally {
        h.deps.now = realNow
      }
      expectOk(await asUser(token))
      // the user's other tokens are not affected
      expectOk(await asUser(a.token))
    })

    it('a revoked token is refused at once; revoking is idempotent; an unknown token is a usage error', async () => {
      const issued = await cli('admin', 'token', 'add', a.username)
      expect(issued.code, issued.stderr).toBe(0)
      const token = tokenFrom(issued.stdout)
      expectOk(await asUser(token))

      const revoked = await cli('admin', 'token', 'revoke', token)
      expect(revoked.code, revoked.stderr).toBe(0)
      expect(revoked.stdout.trim()).toBe('token revoked')
      expectRefused(await asUser(token), 1306000, MSG.badToken)
      expectRefused(
        await esb(h.url, 'operate_task', {
          method: 'POST',
          body: { bk_biz_id: a.bkBizId, task_id: taskA, action: 'pause' },
          headers: authHeader({ appCode: a.appCode, appSecret: a.appSecret, token }),
        }),
        1306000,
        MSG.badToken,
      )

      const again = await cli('admin', 'token', 'revoke', token)
      expect(again.code, again.stderr).toBe(0)
      expect(again.stdout.trim()).toBe('token was already revoked')
      expectRefused(await asUser(token), 1306000, MSG.badToken)

      const unknown = await cli('admin', 'token', 'revoke', 'never-issued-token-0123456789')
      expect(unknown.code).toBe(2)
      expect(unknown.stderr).toMatch(/^error: no such token\n$/)

      expectOk(await asUser(a.token))
    })

    it('generated secrets and tokens never begin with "-", so that the printed value can be pasted as an argument', () => {
      // `admin token revoke -Xyz…` would be read as an unknown option (base64url has '-' in its alphabet)
      for (let i = 0; i < 5000; i++) expect(newSecret()).not.toMatch(/^-/)
    })

    it('a token re-issued by value after revocation stays revoked (revocation is not undone by add)', async () => {
      const token = `reissued-${Date.now()}-0123456789abcdef`
      expect((await cli('admin', 'token', 'add', a.username, '--token', token)).code).toBe(0)
      expectOk(await asUser(token))
      expect((await cli('admin', 'token', 'revoke', token)).code).toBe(0)
      const readd = await cli('admin', 'token', 'add', a.username, '--token', token)
      expect(readd.code).toBe(0)
      expectRefused(await asUser(token), 1306000, MSG.badToken)
    })
  })

  describe('repeated wrong secrets', () => {
    it('past 20 failures in a minute from one app and address, failing attempts answer 429 / 1306429; good credentials are served', async () => {
      const r = await makeIdentity(h.deps, { role: 'operator', projectId: a.projectId })
      const task = await newTask(a, templateA, true)
      const wrong = { appCode: r.appCode, appSecret: 'wrong-secret-0123456789', token: r.token }
      const tryWrong = () => get(wrong, 'get_template_list', { bk_biz_id: a.bkBizId })
      const tryGood = () => get(r, 'get_template_list', { bk_biz_id: a.bkBizId })

      for (let i = 1; i <= 20; i++) {
        expectRefused(await tryWrong(), 1306000, MSG.badSecret(r.appCode))
        if (i % 5 === 0) expectOk(await tryGood())
      }
      for (let i = 0; i < 3; i++) {
        const reply = await tryWrong()
        expectRefused(reply, 1306429, undefined, 429)
        expect(reply.headers.get('x-request-id')).toBe(reply.body.request_id)
      }
      // Other failures of the same app from the same address are limited too …
      expectRefused(
        await get({ ...r, token: 'bogus-token-0123456789' }, 'get_template_list', { bk_biz_id: a.bkBizId }),
        1306429,
        undefined,
        429,
      )
      expectRefused(
        await esb(h.url, 'operate_task', {
          method: 'POST',
          body: { bk_biz_id: a.bkBizId, task_id: task, action: 'pause' },
          headers: authHeader(wrong),
        }),
        1306429,
        undefined,
        429,
      )
      // … while the same app with good credentials is served, reads and operations alike.
      expectOk(await tryGood())
      expectOk(await post(r, 'operate_task', { bk_biz_id: a.bkBizId, task_id: task, action: 'pause' }))
      expectOk(await post(r, 'operate_task', { bk_biz_id: a.bkBizId, task_id: task, action: 'resume' }))
      // A refused operation by a good caller is its own refusal, not a rate limit.
      expectRefused(
        await post(r, 'operate_task', { bk_biz_id: a.bkBizId, task_id: task, action: 'resume' }),
        3545000,
        'task is not suspended',
      )
      expect(await get(r, 'get_task_status', { bk_biz_id: a.bkBizId, task_id: task })).toMatchObject({
        status: 200,
      })
    })

    it('the limit is per app code and per address', async () => {
      const r = await makeIdentity(h.deps, { role: 'viewer', projectId: a.projectId })
      const other = await makeIdentity(h.deps, { role: 'viewer', projectId: a.projectId })
      const wrongHeader = headerOf({
        bk_app_code: r.appCode,
        bk_app_secret: 'wrong-secret-0123456789',
        bk_token: r.token,
      })
      for (let i = 0; i < 21; i++)
        await esb(h.url, 'get_template_list', { query: { bk_biz_id: a.bkBizId }, headers: wrongHeader })
      expectRefused(
        await esb(h.url, 'get_template_list', { query: { bk_biz_id: a.bkBizId }, headers: wrongHeader }),
        1306429,
        undefined,
        429,
      )
      // another app from the same address: its own count
      expectRefused(
        await get({ ...other, appSecret: 'wrong-secret-0123456789' }, 'get_template_list', {
          bk_biz_id: a.bkBizId,
        }),
        1306000,
        MSG.badSecret(other.appCode),
      )
      // the same app from another address (127.0.0.2, also loopback): its own count
      const fromElsewhere = await rawRequest(h.url, {
        path: `/v2/sops/get_template_list/?bk_biz_id=${a.bkBizId}`,
        headers: wrongHeader,
        localAddress: '127.0.0.2',
      })
      expect(fromElsewhere.status).toBe(200)
      expect(fromElsewhere.body).toMatchObject({
        result: false,
        code: 1306000,
        message: MSG.badSecret(r.appCode),
      })
    })

    it('when the minute is over, a failing attempt is answered as an ordinary failure again', async () => {
      const r = await makeIdentity(h.deps, { role: 'viewer', projectId: a.projectId })
      const tryWrong = () =>
        get({ ...r, appSecret: 'wrong-secret-0123456789' }, 'get_template_list', { bk_biz_id: a.bkBizId })
      for (let i = 0; i < 20; i++) await tryWrong()
      expectRefused(await tryWrong(), 1306429, undefined, 429)
      const realNow = h.deps.now
      try {
        h.deps.now = () => realNow() + 61_000
        expectRefused(await tryWrong(), 1306000, MSG.badSecret(r.appCode))
      } finally {
        h.deps.now = realNow
      }
    })
  })
})
