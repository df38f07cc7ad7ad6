import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import * as admin from '../src/services/admin'
import {
  createTemplate,
  expectEnvelope,
  expectRefusal,
  legacyClient,
  ok,
  quickTree,
  recordsOf,
  sleep,
} from './fixtures'
import { authHeader, esb, type Harness, type Identity, makeIdentity, startHarness } from './harness'

const MSG = {
  noCode: 'APP Code [bk_app_code] cannot be empty',
  noSecret: 'APP Secret [bk_app_secret] cannot be empty',
  unknownApp: (code: string) =>
    `Invalid APP Code [bk_app_code=${code}], please confirm the APP Code has been registered`,
  badSecret: (code: string) =>
    `APP Secret verification failed, please confirm the APP Secret and APP Code [bk_app_code=${code}] match`,
  badToken: 'User authentication failed, please check if the bk_token is valid',
  noUser: 'User authentication failed, please provide a valid user identity, such as bk_token, bk_username',
}

const header = (creds: Record<string, unknown>) => ({ 'X-Bkapi-Authorization': JSON.stringify(creds) })

describe('authentication', () => {
  let h: Harness
  let id: Identity

  beforeAll(async () => {
    h = await startHarness({ worker: false })
    id = await makeIdentity(h.deps, { role: 'admin' })
  })
  afterAll(async () => {
    await h?.close()
  })

  /** get_template_list with the given header credentials and nothing else. */
  const list = (creds: Record<string, unknown>) =>
    esb(h.url, 'get_template_list', { query: { bk_biz_id: id.bkBizId }, headers: header(creds) })

  describe('the six checks, in order, each with code 1306000', () => {
    it('1. no app code: "APP Code [bk_app_code] cannot be empty"', async () => {
      expectRefusal(
        await esb(h.url, 'get_template_list', { query: { bk_biz_id: id.bkBizId } }),
        1306000,
        MSG.noCode,
      )
      expectRefusal(
        await list({ bk_app_code: '', bk_app_secret: id.appSecret, bk_token: id.token }),
        1306000,
        MSG.noCode,
      )
      expectRefusal(await list({ bk_app_secret: id.appSecret, bk_token: id.token }), 1306000, MSG.noCode)
    })

    it('2. an app code but no secret: "APP Secret [bk_app_secret] cannot be empty", also for an unknown app', async () => {
      expectRefusal(await list({ bk_app_code: id.appCode, bk_token: id.token }), 1306000, MSG.noSecret)
      expectRefusal(
        await list({ bk_app_code: 'never_registered', bk_token: id.token }),
        1306000,
        MSG.noSecret,
      )
    })

    it('3. an unknown app: "Invalid APP Code [bk_app_code=<code>] …"', async () => {
      expectRefusal(
        await list({ bk_app_code: 'never_registered', bk_app_secret: id.appSecret, bk_token: id.token }),
        1306000,
        MSG.unknownApp('never_registered'),
      )
    })

    it('4. a wrong secret: "APP Secret verification failed …", before any token check', async () => {
      expectRefusal(
        await list({ bk_app_code: id.appCode, bk_app_secret: 'wrong-secret-0123456789', bk_token: id.token }),
        1306000,
        MSG.badSecret(id.appCode),
      )
      expectRefusal(
        await list({
          bk_app_code: id.appCode,
          bk_app_secret: 'wrong-secret-0123456789',
          bk_token: 'no-such-token',
        }),
        1306000,
        MSG.badSecret(id.appCode),
      )
      // another app's secret is a wrong secret too
      const other = await makeIdentity(h.deps, { role: null })
      expectRefusal(
        await list({ bk_app_code: id.appCode, bk_app_secret: other.appSecret, bk_token: id.token }),
        1306000,
        MSG.badSecret(id.appCode),
      )
    })

    it('5. an unknown bk_token: "User authentication failed, please check if the bk_token is valid"', async () => {
      expectRefusal(
        await list({
          bk_app_code: id.appCode,
          bk_app_secret: id.appSecret,
          bk_token: 'token-that-was-never-issued',
        }),
        1306000,
        MSG.badToken,
      )
    })

    it('5. a bad bk_token is refused even when a user-skip app also names a user', async () => {
      const skip = await makeIdentity(h.deps, { role: 'admin', userSkip: true })
      expectRefusal(
        await esb(h.url, 'get_template_list', {
          query: { bk_biz_id: skip.bkBizId },
          headers: header({
            bk_app_code: skip.appCode,
            bk_app_secret: skip.appSecret,
            bk_token: 'bogus-token-value',
            bk_username: skip.username,
          }),
        }),
        1306000,
        MSG.badToken,
      )
    })

    it('6. no bk_token and no bk_username: "… please provide a valid user identity …"', async () => {
      expectRefusal(await list({ bk_app_code: id.appCode, bk_app_secret: id.appSecret }), 1306000, MSG.noUser)
      expectRefusal(
        await list({ bk_app_code: id.appCode, bk_app_secret: id.appSecret, bk_token: '' }),
        1306000,
        MSG.noUser,
      )
    })

    it('6. bk_username from an app that is not on the user-skip list is refused', async () => {
      expectRefusal(
        await list({ bk_app_code: id.appCode, bk_app_secret: id.appSecret, bk_username: id.username }),
        1306000,
        MSG.noUser,
      )
      expectRefusal(
        await list({ bk_app_code: id.appCode, bk_app_secret: id.appSecret, username: id.username }),
        1306000,
        MSG.noUser,
      )
    })

    it('credentials that are not strings count as missing, never as a crash', async () => {
      expectRefusal(
        await list({ bk_app_code: 12345, bk_app_secret: id.appSecret, bk_token: id.token }),
        1306000,
        MSG.noCode,
      )
      expectRefusal(
        await list({ bk_app_code: id.appCode, bk_app_secret: { $ne: '' }, bk_token: id.token }),
        1306000,
        MSG.noSecret,
      )
      expectRefusal(
        await list({ bk_app_code: id.appCode, bk_app_secret: id.appSecret, bk_token: ['a'] }),
        1306000,
        MSG.noUser,
      )
    })

    it('an X-Bkapi-Authorization header that is not a JSON object carries no credentials', async () => {
      for (const value of ['not json', '[1,2]', '"a string"', 'null']) {
        const reply = await esb(h.url, 'get_template_list', {
          query: { bk_biz_id: id.bkBizId },
          headers: { 'X-Bkapi-Authorization': value },
        })
        expectRefusal(reply, 1306000, MSG.noCode)
      }
    })
  })

  describe('where credentials come from', () => {
    it('the X-Bkapi-Authorization header, for GET and POST', async () => {
      ok(await esb(h.url, 'get_template_list', { query: { bk_biz_id: id.bkBizId }, headers: authHeader(id) }))
      ok(
        await esb(h.url, 'get_tasks_status', {
          body: { bk_biz_id: id.bkBizId, task_id_list: [1] },
          headers: authHeader(id),
        }),
      )
    })

    it('the body of a POST', async () => {
      const reply = await esb(h.url, 'get_tasks_status', {
        body: {
          bk_app_code: id.appCode,
          bk_app_secret: id.appSecret,
          bk_token: id.token,
          bk_biz_id: id.bkBizId,
          task_id_list: [1],
        },
      })
      expect(ok(reply)).toEqual([])
    })

    it('the query of a GET', async () => {
      const reply = await esb(h.url, 'get_template_list', {
        query: {
          bk_app_code: id.appCode,
          bk_app_secret: id.appSecret,
          bk_token: id.token,
          bk_biz_id: id.bkBizId,
        },
      })
      expect(Array.isArray(ok(reply))).toBe(true)
    })

    it('the aliases app_code and app_secret, in the header, the body and the query', async () => {
      const creds = { app_code: id.appCode, app_secret: id.appSecret, bk_token: id.token }
      ok(await esb(h.url, 'get_template_list', { query: { bk_biz_id: id.bkBizId }, headers: header(creds) }))
      ok(
        await esb(h.url, 'get_tasks_status', {
          body: { ...creds, bk_biz_id: id.bkBizId, task_id_list: [1] },
        }),
      )
      ok(await esb(h.url, 'get_template_list', { query: { ...creds, bk_biz_id: id.bkBizId } }))
    })

    it('a POST does not read credentials from its query string', async () => {
      const q = new URLSearchParams({
        bk_app_code: id.appCode,
        bk_app_secret: id.appSecret,
        bk_token: id.token,
      })
      const res = await fetch(`${h.url}/v2/sops/get_tasks_status/?${q}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ bk_biz_id: id.bkBizId, task_id_list: [1] }),
      })
      const body = await res.json()
      expect(body).toMatchObject({ result: false, code: 1306000, message: MSG.noCode })
    })

    it('when the header is present it is the only source: good body credentials do not rescue a bad header', async () => {
      const reply = await esb(h.url, 'get_tasks_status', {
        body: {
          bk_app_code: id.appCode,
          bk_app_secret: id.appSecret,
          bk_token: id.token,
          bk_biz_id: id.bkBizId,
          task_id_list: [1],
        },
        headers: header({
          bk_app_code: id.appCode,
          bk_app_secret: 'wrong-secret-0123456789',
          bk_token: id.token,
        }),
      })
      expectRefusal(reply, 1306000, MSG.badSecret(id.appCode))
    })

    it('when the header is present, bad credentials in the body are ignored', async () => {
      const reply = await esb(h.url, 'get_tasks_status', {
        body: {
          bk_app_code: 'x',
          bk_app_secret: 'y',
          bk_token: 'z',
          bk_biz_id: id.bkBizId,
          task_id_list: [1],
        },
        headers: authHeader(id),
      })
      ok(reply)
    })
  })

  describe('bk_username and trusted apps', () => {
    it('a user-skip app may name a user with bk_username (or username), who then acts with that role', async () => {
      const skip = await makeIdentity(h.deps, { role: 'admin', userSkip: true })
      const creds = { bk_app_code: skip.appCode, bk_app_secret: skip.appSecret, bk_username: skip.username }
      const templateId = ok<{ template_id: number }>(
        await esb(h.url, 'create_template', {
          body: { ...creds, bk_biz_id: skip.bkBizId, name: 'by name', pipeline_tree: quickTree().tree },
        }),
      ).template_id
      const task = ok<{ task_id: number }>(
        await esb(h.url, 'create_task', {
          body: { bk_biz_id: skip.bkBizId, template_id: templateId, name: 'named user' },
          headers: header({ app_code: skip.appCode, app_secret: skip.appSecret, username: skip.username }),
        }),
      ).task_id
      const records = await recordsOf(legacyClient(h, skip), task)
      expect(records.map((r) => r.operator)).toEqual([skip.username])
      const detail = ok(await legacyClient(h, skip).get('get_task_detail', { task_id: task }))
      expect(detail.creator).toBe(skip.username)
    })

    it('a user named by a user-skip app still needs a role: permission denied, not an authentication failure', async () => {
      const skip = await makeIdentity(h.deps, { role: 'admin', userSkip: true })
      const reply = await esb(h.url, 'get_template_list', {
        query: {
          bk_biz_id: skip.bkBizId,
          bk_app_code: skip.appCode,
          bk_app_secret: skip.appSecret,
          bk_username: 'somebody_else',
        },
      })
      expectRefusal(
        reply,
        3599999,
        `permission denied: action project_view on project(${skip.bkBizId}) for user somebody_else`,
      )
    })

    it('a trusted app passes every permission check, for a user with no role in the project', async () => {
      const trusted = await makeIdentity(h.deps, { role: null, trusted: true })
      const c = legacyClient(h, trusted)
      const templateId = await createTemplate(c, quickTree().tree)
      const task = ok<{ task_id: number }>(
        await c.post('create_task', { template_id: templateId, name: 'trusted' }),
      ).task_id
      ok(await c.post('operate_task', { task_id: task, action: 'start' }))
      ok(await c.post('operate_task', { task_id: task, action: 'revoke' }))
      ok(await c.get('get_task_detail', { task_id: task }))
      ok(await c.get('get_task_list'))
      // the same user through an untrusted app is denied
      const plain = await makeIdentity(h.deps, { role: null, projectId: trusted.projectId })
      const denied = await legacyClient(h, { ...plain, token: trusted.token }).get('get_task_list')
      expectRefusal(
        denied,
        3599999,
        `permission denied: action project_view on project(${trusted.bkBizId}) for user ${trusted.username}`,
      )
    })

    it('a trusted user-skip app may act as any named user', async () => {
      const trusted = await makeIdentity(h.deps, { role: null, trusted: true, userSkip: true })
      const reply = await esb(h.url, 'get_template_list', {
        query: {
          bk_biz_id: trusted.bkBizId,
          bk_app_code: trusted.appCode,
          bk_app_secret: trusted.appSecret,
          bk_username: 'robot',
        },
      })
      ok(reply)
    })
  })

  describe('tokens', () => {
    it('a token revoked with admin.revokeToken is refused with message 5', async () => {
      const who = await makeIdentity(h.deps, { role: 'viewer' })
      ok(await legacyClient(h, who).get('get_template_list'))
      await admin.revokeToken(h.deps, who.token)
      expectRefusal(await legacyClient(h, who).get('get_template_list'), 1306000, MSG.badToken)
    })

    it('an expired token is refused with message 5; one that has not expired works', async () => {
      const who = await makeIdentity(h.deps, { role: 'viewer' })
      const shortToken = `short-lived-${who.username}-0123456789`
      const longToken = `long-lived-${who.username}-0123456789`
      await admin.addToken(h.deps, who.username, { token: shortToken, expiresInMs: 100 })
      await admin.addToken(h.deps, who.username, { token: longToken, expiresInMs: 3_600_000 })
      ok(await legacyClient(h, { ...who, token: longToken }).get('get_template_list'))
      await sleep(150)
      expectRefusal(
        await legacyClient(h, { ...who, token: shortToken }).get('get_template_list'),
        1306000,
        MSG.badToken,
      )
      ok(await legacyClient(h, { ...who, token: longToken }).get('get_template_list'))
    })

    it('secrets and tokens are stored only as keyed digests', async () => {
      const who = await makeIdentity(h.deps, { role: 'viewer' })
      const app = await h.deps.db.prisma.app.findUniqueOrThrow({ where: { code: who.appCode } })
      expect(app.secretHash).toMatch(/^[0-9a-f]{64}$/)
      expect(app.secretHash).not.toContain(who.appSecret)
      const user = await h.deps.db.prisma.user.findUniqueOrThrow({ where: { username: who.username } })
      const tokens = await h.deps.db.prisma.token.findMany({ where: { userId: user.id } })
      expect(tokens.length).toBe(1)
      expect(tokens[0]!.tokenHash).toMatch(/^[0-9a-f]{64}$/)
      expect(JSON.stringify(tokens, (_k, v) => (typeof v === 'bigint' ? String(v) : v))).not.toContain(
        who.token,
      )
    })
  })

  describe('rate limit on failed authentications', () => {
    it('past 20 failures in a minute from one app code, failing attempts answer HTTP 429 with 1306429; good credentials still pass', async () => {
      const victim = await makeIdentity(h.deps, { role: 'viewer' })
      const bad = {
        bk_app_code: victim.appCode,
        bk_app_secret: 'wrong-secret-0123456789',
        bk_token: victim.token,
      }
      const query = { bk_biz_id: victim.bkBizId }
      for (let i = 1; i <= 20; i++) {
        const reply = await esb(h.url, 'get_template_list', { query, headers: header(bad) })
        expect({ i, status: reply.status, code: reply.body.code }).toEqual({ i, status: 200, code: 1306000 })
      }
      for (let i = 21; i <= 23; i++) {
        const reply = await esb(h.url, 'get_template_list', { query, headers: header(bad) })
        expect(reply.status).toBe(429)
        expect(reply.body).toMatchObject({ result: false, code: 1306429, data: null })
        expectEnvelope(reply)
      }
      // a bad token from the same app is a failure too, and is limited
      const badToken = await esb(h.url, 'get_template_list', {
        query,
        headers: header({ ...bad, bk_app_secret: victim.appSecret, bk_token: 'bogus-token-0123' }),
      })
      expect(badToken.status).toBe(429)
      expect(badToken.body.code).toBe(1306429)
      // the same app with good credentials is never blocked
      const good = await legacyClient(h, victim).get('get_template_list')
      expect(good.status).toBe(200)
      expect(good.body.code).toBe(0)
      // another app code from the same address is not limited
      const other = await makeIdentity(h.deps, { role: 'viewer' })
      const otherBad = await esb(h.url, 'get_template_list', {
        query: { bk_biz_id: other.bkBizId },
        headers: header({
          bk_app_code: other.appCode,
          bk_app_secret: 'wrong-secret-0123456789',
          bk_token: other.token,
        }),
      })
      expectRefusal(otherBad, 1306000, MSG.badSecret(other.appCode))
    })

    it('failures of an unknown app code are limited too', async () => {
      const code = `ghost_${Date.now()}`
      const statuses: number[] = []
      for (let i = 0; i < 22; i++) {
        const reply = await esb(h.url, 'get_template_list', {
          query: { bk_biz_id: id.bkBizId },
          headers: header({ bk_app_code: code, bk_app_secret: 'whatever-0123456789', bk_token: id.token }),
        })
        statuses.push(reply.status)
      }
      expect(statuses.slice(0, 20).every((s) => s === 200)).toBe(true)
      expect(statuses.slice(20)).toEqual([429, 429])
    })
  })
})
