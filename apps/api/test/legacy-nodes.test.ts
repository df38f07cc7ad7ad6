import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createTreeBuilder } from '@stdops/core/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createTask,
  createTemplate,
  expectEnvelope,
  expectRefusal,
  LEGACY_TIME,
  type LegacyClient,
  legacyClient,
  ok,
  rowCounts,
  waitForState,
} from './fixtures'
import { type Harness, makeIdentity, startHarness, waitFor } from './harness'

describe('the node APIs: operate_node, node_callback, get_task_node_detail/_data/_log', () => {
  let h: Harness
  let c: LegacyClient
  let other: LegacyClient
  let receiver: { url: string; close(): Promise<void> }

  beforeAll(async () => {
    // the tasks call this test's HTTP server on 127.0.0.1, which must be allowed
    h = await startHarness({ env: { STDOPS_OUTBOUND_ALLOW: '127.0.0.1' } })
    c = legacyClient(h, await makeIdentity(h.deps, { role: 'admin' }))
    other = legacyClient(h, await makeIdentity(h.deps, { role: 'admin' }))
    const server = createServer((req, res) => {
      res.statusCode = req.url === '/ok' ? 200 : 500
      res.end('{}')
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

  /** start → call (GET <receiver>/broken: 500) → gate (pause_node) → end */
  async function brokenCallTask() {
    const b = createTreeBuilder()
    const call = b.activity('bk_http_request', {
      name: 'call',
      data: {
        bk_http_request_method: { hook: false, value: 'GET' },
        bk_http_request_url: { hook: false, value: `${receiver.url}/broken` },
      },
    })
    const gate = b.activity('pause_node', { name: 'approve' })
    b.chain(b.startId, call, gate, b.endId)
    const taskId = await createTask(c, await createTemplate(c, b.build()))
    ok(await c.post('start_task', { task_id: taskId }))
    return { taskId, call, gate }
  }

  const detail = async (taskId: number, nodeId: string) =>
    ok<Record<string, unknown>>(await c.get('get_task_node_detail', { task_id: taskId, node_id: nodeId }))

  it('takes a task whose node failed to FINISHED: retry with inputs, then pass the approval with node_callback', async () => {
    const { taskId, call, gate } = await brokenCallTask()
    await waitForState(c, taskId, 'FAILED')
    const failed = await detail(taskId, call)
    expect(failed).toMatchObject({ id: call, name: 'call', state: 'FAILED', retry: 0, skip: false, loop: 1 })
    expect(failed.ex_data).toMatch(/request returned status 500/)
    expect(failed.start_time).toMatch(LEGACY_TIME)
    const notReached = await detail(taskId, gate)
    expect(notReached).toMatchObject({ id: gate, state: 'READY', outputs: [], ex_data: '' })

    // A refusal writes nothing and names the node, its state and the rule.
    const before = await rowCounts(h)
    expectRefusal(
      await c.post('operate_node', { task_id: taskId, node_id: gate, action: 'retry' }),
      3545000,
      `node[${gate}] is not yet reached; retry needs FAILED`,
    )
    expectRefusal(
      await c.post('operate_node', { task_id: taskId, node_id: 'nodeX', action: 'retry' }),
      3540000,
      `task[${taskId}] does not have node[nodeX]`,
    )
    expectRefusal(
      await c.post('operate_node', { task_id: taskId, node_id: call, action: 'jump' }),
      3540000,
      /action: must be one of retry, skip, skip_exg, skip_cpg, forced_fail, callback, pause, resume/,
    )
    expectRefusal(
      await other.post('operate_node', { task_id: taskId, node_id: call, action: 'retry' }),
      3540400,
      `task[id=${taskId}] does not exist in project(${other.id.bkBizId})`,
    )
    expect(await rowCounts(h)).toEqual(before)

    expect(
      ok(
        await c.post('operate_node', {
          task_id: taskId,
          node_id: call,
          action: 'retry',
          inputs: { bk_http_request_url: `${receiver.url}/ok` },
        }),
      ),
    ).toEqual({})
    await waitFor(async () => ((await detail(taskId, gate)).waiting_for === 'callback' ? true : undefined))
    const retried = await detail(taskId, call)
    expect(retried).toMatchObject({ state: 'FINISHED', retry: 1, ex_data: '' })
    const histories = retried.histories as Array<Record<string, unknown>>
    expect(histories).toHaveLength(1)
    expect(histories[0]).toMatchObject({ state: 'FAILED', retry: 0, auto_retry: false })
    expect(histories[0]!.inputs).toMatchObject({ bk_http_request_url: `${receiver.url}/broken` })

    const log = await c.get('get_task_node_log', { task_id: taskId, node_id: call })
    expectEnvelope(log, ['page'])
    expect(log.body.data).toMatch(/attempt 2 of pass 1 started .*\(manual retry\)/)
    const oldLog = await c.get('get_task_node_log', {
      task_id: taskId,
      node_id: call,
      history_id: histories[0]!.history_id as number,
      page: 1,
      page_size: 1,
    })
    expect(String(oldLog.body.data).trim().split('\n')).toHaveLength(1)
    expect(oldLog.body.page).toMatchObject({ page: 1, page_size: 1 })

    const gateDetail = await detail(taskId, gate)
    expectRefusal(
      await c.post('node_callback', {
        task_id: taskId,
        node_id: gate,
        callback_data: { ok: 1 },
        version: Number(gateDetail.version) + 1,
      }),
      3545000,
      `node[${gate}] version ${Number(gateDetail.version) + 1} is not current`,
    )
    ok(
      await c.post('node_callback', {
        task_id: taskId,
        node_id: gate,
        callback_data: { approver: 'ops' },
        version: String(gateDetail.version),
      }),
    )
    await waitForState(c, taskId, 'FINISHED')
    const data = ok<Record<string, unknown>>(
      await c.get('get_task_node_data', { task_id: taskId, node_id: gate }),
    )
    expect(data).toMatchObject({
      inputs: {},
      outputs: [{ key: 'callback_data', name: 'callback_data', value: { approver: 'ops' }, preset: true }],
      ex_data: '',
    })

    const records = ok<Array<Record<string, unknown>>>(
      await c.get('get_task_operate_record', { task_id: taskId }),
    ).filter((r) => r.node_id !== '')
    expect(records.map((r) => [r.operate_type, r.node_id, r.operate_source])).toEqual([
      ['retry', call, 'api'],
      ['callback', gate, 'api'],
    ])
    expect(records[0]!.extra_info).toEqual({
      action: 'retry',
      inputs: { bk_http_request_url: `${receiver.url}/ok` },
      app_code: c.id.appCode,
    })
    expect(records[1]!.extra_info).toMatchObject({ action: 'callback', callback_data_keys: ['approver'] })
  })

  it('pause of a node ahead shows NODE_SUSPENDED once reached; resume goes on; skip passes a failed node', async () => {
    const b = createTreeBuilder()
    const first = b.activity('fail', { data: { message: { hook: false, value: 'no' } } })
    const held = b.activity('set_variables', { data: { variables: { hook: false, value: { a: 1 } } } })
    b.chain(b.startId, first, held, b.endId)
    const taskId = await createTask(c, await createTemplate(c, b.build()))
    ok(await c.post('start_task', { task_id: taskId }))
    ok(await c.post('operate_node', { task_id: taskId, node_id: held, action: 'pause' }))
    await waitForState(c, taskId, 'FAILED')
    ok(await c.post('operate_node', { task_id: taskId, node_id: first, action: 'skip' }))
    await waitForState(c, taskId, 'NODE_SUSPENDED')
    ok(await c.post('operate_node', { task_id: taskId, node_id: held, action: 'resume' }))
    await waitForState(c, taskId, 'FINISHED')
    expect((await detail(taskId, first)).skip).toBe(true)
    expectRefusal(
      await c.post('operate_node', { task_id: taskId, node_id: held, action: 'resume' }),
      3545000,
      'task with state FINISHED cannot operate nodes',
    )
  })
})
