import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createTreeBuilder } from '@stdops/core/testing'
import { createTRPCClient, httpLink, TRPCClientError } from '@trpc/client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { AppRouter } from '../src/trpc/root'
import { authHeader, type Harness, type Identity, makeIdentity, startHarness, waitFor } from './harness'

describe('node.* procedures: a failed node retried with new inputs, an approval passed', () => {
  let h: Harness
  let me: Identity
  let api: ReturnType<typeof createTRPCClient<AppRouter>>
  let receiver: { url: string; close(): Promise<void> }
  const biz = () => ({ bk_biz_id: me.bkBizId })

  beforeAll(async () => {
    // the tasks call this test's HTTP server on 127.0.0.1, which must be allowed
    h = await startHarness({ env: { STDOPS_OUTBOUND_ALLOW: '127.0.0.1' } })
    me = await makeIdentity(h.deps, { role: 'admin' })
    api = createTRPCClient<AppRouter>({
      links: [httpLink({ url: `${h.url}/trpc`, headers: authHeader(me) })],
    })
    const server = createServer((req, res) => {
      res.statusCode = req.url === '/ok' ? 200 : 500
      res.end(JSON.stringify({ path: req.url }))
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    receiver = {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      close: () => new Promise<void>((r) => server.close(() => r())),
    }
  })
  afterAll(async () => {
    await h?.close()
    await receiver?.close()
  })

  async function run(tree: unknown) {
    const { template_id } = await api.template.create.mutate({
      ...biz(),
      name: 'nodes',
      pipeline_tree: tree as Record<string, unknown>,
    })
    const { task_id } = await api.task.create.mutate({ ...biz(), template_id, name: 'run' })
    await api.task.start.mutate({ ...biz(), task_id })
    return task_id
  }

  it('retry with a corrected input takes a failed HTTP call to FINISHED; detail, log and records tell the story', async () => {
    const b = createTreeBuilder()
    const call = b.activity('bk_http_request', {
      name: 'call',
      data: {
        bk_http_request_method: { hook: false, value: 'GET' },
        bk_http_request_url: { hook: false, value: `${receiver.url}/broken` },
      },
    })
    b.chain(b.startId, call, b.endId)
    const taskId = await run(b.build())
    const node = { ...biz(), task_id: taskId, node_id: call }
    const failed = await waitFor(async () => {
      const d = await api.node.detail.query(node)
      return d.state === 'FAILED' ? d : undefined
    })
    expect(failed.ex_data).toMatch(/request returned status 500/)
    expect((await api.task.status.query({ ...biz(), task_id: taskId })).state).toBe('FAILED')

    const refused = await api.node.operate
      .mutate({ ...node, action: 'skip_exg', flow_id: 'x' })
      .catch((e) => e)
    expect(refused).toBeInstanceOf(TRPCClientError)
    expect((refused as TRPCClientError<AppRouter>).data?.legacyCode).toBe(3545000)
    expect((refused as TRPCClientError<AppRouter>).message).toMatch(
      /is an activity; skip_exg applies to an ExclusiveGateway/,
    )

    const retried = await api.node.operate.mutate({
      ...node,
      action: 'retry',
      inputs: { bk_http_request_url: `${receiver.url}/ok` },
    })
    expect(retried).toMatchObject({ state: 'READY', action: 'retry' })
    await waitFor(async () =>
      (await api.task.status.query({ ...biz(), task_id: taskId })).state === 'FINISHED' ? true : undefined,
    )
    const done = await api.node.detail.query(node)
    expect(done).toMatchObject({ state: 'FINISHED', retry: 1, ex_data: '' })
    expect(done.inputs).toMatchObject({ bk_http_request_url: `${receiver.url}/ok` })
    expect(done.histories).toHaveLength(1)
    expect(done.histories?.[0]).toMatchObject({ state: 'FAILED', auto_retry: false })
    expect(done.histories?.[0]?.inputs).toMatchObject({ bk_http_request_url: `${receiver.url}/broken` })
    const { log } = await api.node.log.query(node)
    expect(log).toMatch(/attempt 2 of pass 1 started .*\(manual retry\)/)
    const old = await api.node.log.query({ ...node, history_id: done.histories![0]!.history_id })
    expect(old.log).toMatch(/failed: request returned status 500/)
    const records = await api.task.records.query({ ...biz(), task_id: taskId, node_id: call })
    expect(records.map((r) => [r.operate_type, r.node_id, r.operate_source])).toEqual([
      ['retry', call, 'app'],
    ])
    expect(records[0]!.extra_info).toEqual({
      action: 'retry',
      inputs: { bk_http_request_url: `${receiver.url}/ok` },
      app_code: me.appCode,
    })
  })

  it('an approval (pause_node) passes with a callback whose data becomes its output', async () => {
    const b = createTreeBuilder()
    const gate = b.activity('pause_node', { name: 'approve' })
    b.chain(b.startId, gate, b.endId)
    const taskId = await run(b.build())
    const node = { ...biz(), task_id: taskId, node_id: gate }
    await waitFor(async () =>
      (await api.node.detail.query(node)).waiting_for === 'callback' ? true : undefined,
    )
    await api.node.callback.mutate({ ...node, callback_data: { approved_by: 'boss' } })
    await waitFor(async () =>
      (await api.task.status.query({ ...biz(), task_id: taskId })).state === 'FINISHED' ? true : undefined,
    )
    expect((await api.node.data.query(node)).outputs).toEqual([
      { key: 'callback_data', name: 'callback_data', value: { approved_by: 'boss' }, preset: true },
    ])
  })
})
