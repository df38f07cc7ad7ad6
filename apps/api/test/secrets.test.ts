import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Writable } from 'node:stream'
import { createTreeBuilder } from '@stdops/core/testing'
import { sql } from '@stdops/db'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { clientFor, legacyClient, ok, waitForState } from './fixtures'
import { type Harness, makeIdentity, startHarness } from './harness'

/**
 * A secret constant (bk-sops's `password` type) is stored sealed with the server key, shown as
 * `******` to everyone who reads, and opened only for the component step that uses it.
 */

const SECRET = 's3cr3t-P4ss-value-42'
const OTHER_SECRET = 'an0ther-s3cr3t-for-the-task'
const BAD_TOKEN = 'bad-t0ken-refused'
const bodies: string[] = []

let h: Harness
let echo: { url: string; auths: string[]; close(): Promise<void> }
const logLines: string[] = []

beforeAll(async () => {
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logLines.push(chunk.toString('utf8'))
      done()
    },
  })
  // the task calls the test's echo server on 127.0.0.1; every log line is kept to be searched
  h = await startHarness({ env: { STDOPS_OUTBOUND_ALLOW: '127.0.0.1' }, logTo: sink })
  const auths: string[] = []
  const server: Server = createServer((req, res) => {
    auths.push(req.headers.authorization ?? '')
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      bodies.push(Buffer.concat(chunks).toString('utf8'))
      // a token the test calls bad is refused, so that the node fails and is retried
      const bad = (req.headers.authorization ?? '').includes(BAD_TOKEN)
      // answers with what it was sent: the secret comes back in the response, and must not be kept
      res.writeHead(bad ? 500 : 200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ you_sent: req.headers.authorization ?? null }))
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  echo = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    auths,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections()
        server.close(() => r())
      }),
  }
})
afterAll(async () => {
  await echo?.close()
  await h?.close()
})

/** start → bk_http_request (Authorization: Bearer ${token}) → end; `answer` holds the response. */
function secretTree() {
  const b = createTreeBuilder()
  const call = b.activity('bk_http_request', {
    name: 'call with the token',
    data: {
      bk_http_request_method: { hook: false, value: 'GET' },
      bk_http_request_url: { hook: false, value: echo.url },
      bk_http_request_header: { hook: false, value: [{ name: 'Authorization', value: 'Bearer ${token}' }] },
    },
  })
  b.chain(b.startId, call, b.endId)
  b.constant('token', SECRET, {
    custom_type: 'password',
    source_tag: 'password.password',
    source_type: 'custom',
  })
  b.constant('label', 'token is ${token}')
  b.constant('answer', '', { source_type: 'component_outputs', source_info: { [call]: ['data'] } })
  b.output('answer')
  b.output('label')
  return b.build()
}

/** Every text column the template and the task were stored in. */
async function storedText(templateId: number, taskId: number): Promise<string> {
  const parts: unknown[] = []
  parts.push(await h.deps.db.query(sql`SELECT pipeline_tree FROM templates WHERE id = ${templateId}`))
  parts.push(
    await h.deps.db.query(sql`SELECT pipeline_tree, constants, outputs FROM tasks WHERE id = ${taskId}`),
  )
  parts.push(
    await h.deps.db.query(sql`SELECT inputs, outputs, error FROM node_states WHERE task_id = ${taskId}`),
  )
  parts.push(
    await h.deps.db.query(sql`SELECT inputs, outputs, error FROM node_histories WHERE task_id = ${taskId}`),
  )
  parts.push(await h.deps.db.query(sql`SELECT data FROM task_events WHERE task_id = ${taskId}`))
  parts.push(
    await h.deps.db.query(sql`SELECT operator, app_code FROM operate_records WHERE task_id = ${taskId}`),
  )
  return JSON.stringify(parts)
}

describe('secret constants', () => {
  it('a viewer sees the secret masked in every reply and event; the component received the real value; nothing stores or logs it', async () => {
    const admin = await makeIdentity(h.deps, { role: 'admin' })
    const viewer = await makeIdentity(h.deps, { role: 'viewer', projectId: admin.projectId })
    const a = legacyClient(h, admin)
    const v = legacyClient(h, viewer)
    const created = await a.post('create_template', { name: 'with a secret', pipeline_tree: secretTree() })
    const templateId = ok<{ template_id: number }>(created).template_id
    const started = await a.post('create_and_start_task', { template_id: templateId, name: 'secret run' })
    const taskId = ok<{ task_id: number }>(started).task_id
    await waitForState(v, taskId, 'FINISHED')

    // the component got the real value, inside the text it was rendered into
    expect(echo.auths).toEqual([`Bearer ${SECRET}`])

    // everything a viewer can read, through both doors
    const legacyReplies = [
      created.body,
      started.body,
      (await v.get('get_template_info', { template_id: templateId })).body,
      (await v.get('get_template_list')).body,
      (await v.get('get_task_detail', { task_id: taskId })).body,
      (await v.get('get_task_status', { task_id: taskId })).body,
      (await v.get('get_task_list')).body,
      (await v.get('get_task_operate_record', { task_id: taskId })).body,
    ]
    const t = clientFor(h.url, viewer)
    const ref = { bk_biz_id: viewer.bkBizId }
    const trpcReplies = [
      await t.template.get.query({ ...ref, template_id: templateId }),
      await t.task.detail.query({ ...ref, task_id: taskId }),
      await t.task.status.query({ ...ref, task_id: taskId }),
      await t.task.records.query({ ...ref, task_id: taskId }),
    ]
    const events = await new Promise<unknown[]>((resolve, reject) => {
      const seen: unknown[] = []
      const sub = t.task.events.subscribe(
        { ...ref, task_id: taskId },
        {
          onData: (e) => seen.push(e.data),
          onComplete: () => resolve(seen),
          onError: (err) => {
            sub.unsubscribe()
            reject(err)
          },
        },
      )
    })
    expect(events.length).toBeGreaterThan(3)
    const everything = JSON.stringify([legacyReplies, trpcReplies, events])
    expect(everything).not.toContain(SECRET)
    expect(everything).not.toContain('stdops-secret')
    // shown masked where it is: the constant, the text it was rendered into, the echoed response
    const detail = legacyReplies[4] as {
      data: { constants: Record<string, { value: unknown }>; outputs: unknown }
    }
    expect(detail.data.constants['${token}']!.value).toBe('******')
    expect(JSON.stringify(detail.data.outputs)).toContain('Bearer ******')
    const info = legacyReplies[2] as {
      data: { pipeline_tree: { constants: Record<string, { value: unknown }> } }
    }
    expect(info.data.pipeline_tree.constants['${token}']!.value).toBe('******')

    // at rest: sealed, never in the clear; and no log line holds it
    const stored = await storedText(templateId, taskId)
    expect(stored).not.toContain(SECRET)
    expect(stored).toContain('[[stdops-secret:v1:')
    expect(logLines.join('')).not.toContain(SECRET)
  })

  it('create_task sets a secret in the clear and keeps it sealed; sending back the mask keeps the stored value', async () => {
    const admin = await makeIdentity(h.deps, { role: 'admin' })
    const a = legacyClient(h, admin)
    const templateId = ok<{ template_id: number }>(
      await a.post('create_template', { name: 'secret override', pipeline_tree: secretTree() }),
    ).template_id
    echo.auths.length = 0
    const given = ok<{ task_id: number }>(
      await a.post('create_and_start_task', {
        template_id: templateId,
        name: 'override',
        constants: { token: OTHER_SECRET },
      }),
    ).task_id
    await waitForState(a, given, 'FINISHED')
    const kept = ok<{ task_id: number }>(
      await a.post('create_and_start_task', {
        template_id: templateId,
        name: 'masked back',
        constants: { '${token}': '******' },
      }),
    ).task_id
    await waitForState(a, kept, 'FINISHED')
    expect(echo.auths).toEqual([`Bearer ${OTHER_SECRET}`, `Bearer ${SECRET}`])
    expect(await storedText(templateId, given)).not.toContain(OTHER_SECRET)
  })

  it('a credential header written literally into bk_http_request is sealed and masked the same way', async () => {
    const admin = await makeIdentity(h.deps, { role: 'admin' })
    const viewer = await makeIdentity(h.deps, { role: 'viewer', projectId: admin.projectId })
    const a = legacyClient(h, admin)
    const b = createTreeBuilder()
    const call = b.activity('bk_http_request', {
      data: {
        bk_http_request_url: { hook: false, value: echo.url },
        bk_http_request_header: {
          hook: false,
          value: [
            { name: 'authorization', value: `Bearer ${OTHER_SECRET}` },
            { name: 'X-Trace', value: 'visible-header-value' },
          ],
        },
      },
    })
    b.chain(b.startId, call, b.endId)
    const templateId = ok<{ template_id: number }>(
      await a.post('create_template', { name: 'literal header', pipeline_tree: b.build() }),
    ).template_id
    echo.auths.length = 0
    const taskId = ok<{ task_id: number }>(
      await a.post('create_and_start_task', { template_id: templateId, name: 'header' }),
    ).task_id
    const v = legacyClient(h, viewer)
    await waitForState(v, taskId, 'FINISHED')
    expect(echo.auths).toEqual([`Bearer ${OTHER_SECRET}`])
    const replies = JSON.stringify([
      (await v.get('get_template_info', { template_id: templateId })).body,
      (await v.get('get_task_detail', { task_id: taskId })).body,
      (await v.get('get_task_status', { task_id: taskId })).body,
    ])
    expect(replies).not.toContain(OTHER_SECRET)
    expect(replies).toContain('visible-header-value')
    expect(replies).toContain('******')
    expect(await storedText(templateId, taskId)).not.toContain(OTHER_SECRET)
  })

  it('a secret sealed under another server key fails its node, naming the cause and no value', async () => {
    const admin = await makeIdentity(h.deps, { role: 'admin' })
    const a = legacyClient(h, admin)
    const templateId = ok<{ template_id: number }>(
      await a.post('create_template', { name: 'foreign seal', pipeline_tree: secretTree() }),
    ).template_id
    const taskId = ok<{ task_id: number }>(
      await a.post('create_task', { template_id: templateId, name: 'x' }),
    ).task_id
    // as if the database had been copied to a server with another STDOPS_SECRET_KEY
    const foreign = (await import('@stdops/engine'))
      .createSecretBox('another-key-0123456789abcdef')
      .seal(SECRET)
    const [row] = await h.deps.db.query<{ constants: string }>(
      sql`SELECT constants FROM tasks WHERE id = ${taskId}`,
    )
    const constants = JSON.parse(row!.constants) as Record<string, { value: unknown }>
    constants['${token}']!.value = foreign
    await h.deps.db.execute(
      sql`UPDATE tasks SET constants = ${JSON.stringify(constants)} WHERE id = ${taskId}`,
    )
    ok(await a.post('start_task', { task_id: taskId }))
    const status = await waitForState(a, taskId, 'FAILED')
    expect(JSON.stringify(status)).toContain('a secret constant cannot be opened with this server key')
  })

  it("an operator's retry with a new credential and a new secret-rendered input stores both sealed; the call gets them", async () => {
    const admin = await makeIdentity(h.deps, { role: 'admin' })
    const viewer = await makeIdentity(h.deps, { role: 'viewer', projectId: admin.projectId })
    const a = legacyClient(h, admin)
    const b = createTreeBuilder()
    const call = b.activity('bk_http_request', {
      data: {
        bk_http_request_method: { hook: false, value: 'POST' },
        bk_http_request_url: { hook: false, value: echo.url },
        bk_http_request_header: { hook: false, value: [{ name: 'Authorization', value: 'Bearer ${token}' }] },
        bk_http_request_body: { hook: false, value: 'key=${token}' },
      },
    })
    b.chain(b.startId, call, b.endId)
    b.constant('token', BAD_TOKEN, { custom_type: 'password', source_type: 'custom' })
    const templateId = ok<{ template_id: number }>(
      await a.post('create_template', { name: 'retried with a secret', pipeline_tree: b.build() }),
    ).template_id
    const taskId = ok<{ task_id: number }>(
      await a.post('create_and_start_task', { template_id: templateId, name: 'retry secret' }),
    ).task_id
    await waitForState(a, taskId, 'FAILED')
    const NEW_TOKEN = 'retry-t0ken-given-by-the-operator'
    const NEW_BODY = 'key=retry-b0dy-secret'
    ok(
      await a.post('operate_node', {
        task_id: taskId,
        node_id: call,
        action: 'retry',
        inputs: {
          bk_http_request_header: [{ name: 'Authorization', value: `Bearer ${NEW_TOKEN}` }],
          bk_http_request_body: NEW_BODY,
        },
      }),
    )
    await waitForState(a, taskId, 'FINISHED')
    expect(echo.auths.at(-1)).toBe(`Bearer ${NEW_TOKEN}`)
    expect(bodies.at(-1)).toBe(NEW_BODY)
    const v = legacyClient(h, viewer)
    const replies = JSON.stringify([
      (await v.get('get_task_operate_record', { task_id: taskId })).body,
      (await v.get('get_task_node_detail', { task_id: taskId, node_id: call })).body,
      (await v.get('get_task_detail', { task_id: taskId })).body,
    ])
    for (const secret of [NEW_TOKEN, NEW_BODY, BAD_TOKEN]) {
      expect(replies).not.toContain(secret)
      expect(await storedText(templateId, taskId)).not.toContain(secret)
    }
    expect(replies).toContain('******')
    const [record] = await h.deps.db.query<{ extra_info: string | null }>(
      sql`SELECT extra_info FROM operate_records WHERE task_id = ${taskId} AND node_id = ${call}`,
    )
    expect(record?.extra_info).toContain('[[stdops-secret:v1:')
    expect(record?.extra_info).not.toContain(NEW_TOKEN)
  })

  it("a value a SubProcess gives its child's secret constant is stored sealed and reaches the child's step", async () => {
    const admin = await makeIdentity(h.deps, { role: 'admin' })
    const viewer = await makeIdentity(h.deps, { role: 'viewer', projectId: admin.projectId })
    const a = legacyClient(h, admin)
    const c = createTreeBuilder()
    const call = c.activity('bk_http_request', {
      data: {
        bk_http_request_url: { hook: false, value: echo.url },
        bk_http_request_header: { hook: false, value: [{ name: 'Authorization', value: 'Bearer ${cpw}' }] },
      },
    })
    c.chain(c.startId, call, c.endId)
    c.constant('cpw', '', { custom_type: 'password', source_type: 'custom' })
    const childId = ok<{ template_id: number }>(
      await a.post('create_template', { name: 'child with a secret', pipeline_tree: c.build() }),
    ).template_id
    const SUB_SECRET = 'sub-pr0cess-s3cret-value'
    const p = createTreeBuilder()
    p.chain(
      p.startId,
      p.subprocess(childId, { constants: { '${cpw}': { hook: false, value: SUB_SECRET } } }),
      p.endId,
    )
    const parentId = ok<{ template_id: number }>(
      await a.post('create_template', { name: 'parent giving a secret', pipeline_tree: p.build() }),
    ).template_id
    echo.auths.length = 0
    const taskId = ok<{ task_id: number }>(
      await a.post('create_and_start_task', { template_id: parentId, name: 'secret down' }),
    ).task_id
    const v = legacyClient(h, viewer)
    await waitForState(v, taskId, 'FINISHED')
    expect(echo.auths).toEqual([`Bearer ${SUB_SECRET}`])
    const replies = JSON.stringify([
      (await v.get('get_task_detail', { task_id: taskId })).body,
      (await v.get('get_task_status', { task_id: taskId })).body,
      (await v.get('get_task_node_detail', { task_id: taskId, node_id: call })).body,
    ])
    expect(replies).not.toContain(SUB_SECRET)
    // the task's copy, its nodes, histories and events (the child template never held it)
    expect(await storedText(childId, taskId)).not.toContain(SUB_SECRET)
    expect(logLines.join('')).not.toContain(SUB_SECRET)
  })
})
