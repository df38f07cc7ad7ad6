import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createTreeBuilder } from '@stdops/core/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Harness, type Identity, makeIdentity, startHarness, waitFor } from '../../api/test/harness'
import { cleanUp, envFor, json, stdops, tempDir, writeJson } from './helpers'

describe('stdops node: a failed node retried to FINISHED, an approval passed', () => {
  let h: Harness
  let id: Identity
  let env: Record<string, string>
  let dir: string
  let project: string[]
  let receiver: { url: string; close(): Promise<void> }

  beforeAll(async () => {
    // the tasks call this test's HTTP server on 127.0.0.1, which must be allowed
    h = await startHarness({ env: { STDOPS_OUTBOUND_ALLOW: '127.0.0.1' } })
    id = await makeIdentity(h.deps, { role: 'admin' })
    env = envFor(h, id)
    dir = tempDir('stdops-nodes-')
    project = ['--project', String(id.bkBizId)]
    const server = createServer((req, res) => {
      res.statusCode = req.url === '/ok' ? 200 : 503
      res.end('{"up": true}')
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    receiver = {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      close: () => new Promise<void>((r) => server.close(() => r())),
    }
  })
  afterAll(async () => {
    cleanUp()
    await h?.close()
    await receiver?.close()
  })

  const cli = (args: string[]) => stdops([...args, ...project], { env })

  async function startedTask(tree: unknown, name: string): Promise<number> {
    const file = writeJson(dir, `${name}.json`, tree)
    const tpl = await cli(['template', 'create', '-f', file, '--name', name, '--json'])
    expect(tpl.code, tpl.stderr).toBe(0)
    const created = await cli([
      'task',
      'create',
      '--template',
      String(json<{ template_id: number }>(tpl).template_id),
      '--name',
      name,
      '--json',
    ])
    expect(created.code, created.stderr).toBe(0)
    const taskId = json<{ task_id: number }>(created).task_id
    expect((await cli(['task', 'start', String(taskId)])).code).toBe(0)
    return taskId
  }

  const displayed = async (taskId: number) =>
    json<{ state: string }>(await cli(['task', 'status', String(taskId), '--json'])).state

  it('task status names the failed node, its error and the commands; retry --input takes it to FINISHED', async () => {
    const b = createTreeBuilder()
    const call = b.activity('bk_http_request', {
      name: 'Call the service',
      data: { bk_http_request_url: { hook: false, value: `${receiver.url}/down` } },
    })
    b.chain(b.startId, call, b.endId)
    const taskId = await startedTask(b.build(), 'broken-call')
    await waitFor(async () => ((await displayed(taskId)) === 'FAILED' ? true : undefined))

    const status = await cli(['task', 'status', String(taskId)])
    expect(status.code, status.stderr).toBe(0)
    expect(status.stdout).toContain(`${call} (Call the service) failed: request returned status 503`)
    expect(status.stdout).toContain(`stdops node retry ${taskId} ${call} [--input key=value ...]`)
    expect(status.stdout).toContain(`stdops node skip ${taskId} ${call}`)

    const badInput = await cli(['node', 'retry', String(taskId), call, '--input', 'no-equals'])
    expect(badInput.code).toBe(2)
    expect(badInput.stderr).toContain("--input expects key=value, got 'no-equals'")
    const refused = await cli(['node', 'fail', String(taskId), call])
    expect(refused.code).toBe(1)
    expect(refused.stderr).toContain(`node[${call}] is FAILED; forced_fail needs RUNNING`)

    const retry = await cli([
      'node',
      'retry',
      String(taskId),
      call,
      '--input',
      `bk_http_request_url=${receiver.url}/ok`,
      '--json',
    ])
    expect(retry.code, retry.stderr).toBe(0)
    expect(json(retry)).toMatchObject({ task_id: taskId, node_id: call, action: 'retry', state: 'READY' })
    await waitFor(async () => ((await displayed(taskId)) === 'FINISHED' ? true : undefined))

    const show = await cli(['node', 'show', String(taskId), call, '--json'])
    const detail = json<{ state: string; retry: number; histories: Array<{ ex_data: string }> }>(show)
    expect(detail).toMatchObject({ state: 'FINISHED', retry: 1 })
    expect(detail.histories.map((x) => x.ex_data)).toEqual([expect.stringMatching(/status 503/)])
    const human = await cli(['node', 'show', String(taskId), call])
    expect(human.stdout).toMatch(/state\s+FINISHED/)
    expect(human.stdout).toMatch(/HISTORY\s+STATE\s+RETRY/)
    const log = await cli(['node', 'log', String(taskId), call])
    expect(log.code, log.stderr).toBe(0)
    expect(log.stdout).toMatch(/attempt 2 of pass 1 started .*\(manual retry\)/)
  })

  it('approve passes a pause_node, and callback --data @file delivers data to the next one', async () => {
    const b = createTreeBuilder()
    const first = b.activity('pause_node', { name: 'Approve' })
    const second = b.activity('pause_node', { name: 'Sign off' })
    b.chain(b.startId, first, second, b.endId)
    const taskId = await startedTask(b.build(), 'approvals')
    const waiting = (nodeId: string) =>
      waitFor(async () => {
        const d = json<{ waiting_for: string | null }>(
          await cli(['node', 'show', String(taskId), nodeId, '--json']),
        )
        return d.waiting_for === 'callback' ? true : undefined
      })
    await waiting(first)
    const approve = await cli(['node', 'approve', String(taskId), first])
    expect(approve.code, approve.stderr).toBe(0)
    expect(approve.stdout).toMatch(/action\s+callback/)
    await waiting(second)
    const noData = await cli(['node', 'callback', String(taskId), second])
    expect(noData.code).toBe(2)
    const data = writeJson(dir, 'data.json', { signed_by: 'ops' })
    const cb = await cli(['node', 'callback', String(taskId), second, '--data', `@${data}`])
    expect(cb.code, cb.stderr).toBe(0)
    await waitFor(async () => ((await displayed(taskId)) === 'FINISHED' ? true : undefined))
    const shown = json<{ outputs: Array<{ key: string; value: unknown }> }>(
      await cli(['node', 'show', String(taskId), second, '--json']),
    )
    expect(shown.outputs).toEqual([
      expect.objectContaining({ key: 'callback_data', value: { signed_by: 'ops' } }),
    ])
  })
})

describe('stdops node --subprocess: pause, resume and retry a subprocess; node actions on its child nodes', () => {
  let h: Harness
  let id: Identity
  let env: Record<string, string>
  let dir: string
  let project: string[]
  let healthy = false
  let receiver: { url: string; close(): Promise<void> }

  beforeAll(async () => {
    // the tasks call this test's HTTP server on 127.0.0.1, which must be allowed
    h = await startHarness({ env: { STDOPS_OUTBOUND_ALLOW: '127.0.0.1' } })
    id = await makeIdentity(h.deps, { role: 'admin' })
    env = envFor(h, id)
    dir = tempDir('stdops-subprocesses-')
    project = ['--project', String(id.bkBizId)]
    const server = createServer((_req, res) => {
      res.statusCode = healthy ? 200 : 503
      res.end('{}')
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    receiver = {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      close: () => new Promise<void>((r) => server.close(() => r())),
    }
  })
  afterAll(async () => {
    cleanUp()
    await h?.close()
    await receiver?.close()
  })

  const cli = (args: string[]) => stdops([...args, ...project], { env })
  type Status = { id: string; name: string; children: Record<string, Status> }

  async function template(tree: unknown, name: string): Promise<number> {
    const tpl = await cli([
      'template',
      'create',
      '-f',
      writeJson(dir, `${name}.json`, tree),
      '--name',
      name,
      '--json',
    ])
    expect(tpl.code, tpl.stderr).toBe(0)
    return json<{ template_id: number }>(tpl).template_id
  }
  /** A started task of a parent whose one step is a subprocess of `childTree`; the child's node id named `childNode`. */
  async function parentTask(childTree: unknown, name: string, childNode: string) {
    const child = await template(childTree, `${name}-child`)
    const p = createTreeBuilder()
    const sc = p.subprocess(child, { name: 'the child' })
    p.chain(p.startId, sc, p.endId)
    const created = await cli([
      'task',
      'create',
      '--template',
      String(await template(p.build(), name)),
      '--name',
      name,
      '--json',
    ])
    expect(created.code, created.stderr).toBe(0)
    const taskId = json<{ task_id: number }>(created).task_id
    expect((await cli(['task', 'start', String(taskId)])).code).toBe(0)
    // The child's node, found by its name in the nested status tree once the run reaches it.
    const inner = await waitFor(async () => {
      const status = json<Status>(await cli(['task', 'status', String(taskId), '--json']))
      return Object.values(status.children[sc]?.children ?? {}).find((n) => n.name === childNode)?.id
    })
    return { taskId, sc, inner }
  }
  const displayed = async (taskId: number) =>
    json<{ state: string }>(await cli(['task', 'status', String(taskId), '--json'])).state

  it('retry --subprocess runs a subprocess whose child node failed again, to FINISHED', async () => {
    const b = createTreeBuilder()
    const call = b.activity('bk_http_request', {
      name: 'call',
      data: { bk_http_request_url: { hook: false, value: `${receiver.url}/flaky` } },
    })
    b.chain(b.startId, call, b.endId)
    const { taskId, sc } = await parentTask(b.build(), 'flaky-parent', 'call')
    await waitFor(async () => ((await displayed(taskId)) === 'FAILED' ? true : undefined))

    const misuse = await cli(['node', 'retry', String(taskId), sc, '--subprocess', '--input', 'a=b'])
    expect(misuse.code).toBe(2)
    expect(misuse.stderr).toContain('--input is not for --subprocess')
    healthy = true
    const retried = await cli(['node', 'retry', String(taskId), sc, '--subprocess', '--json'])
    expect(retried.code, retried.stderr).toBe(0)
    expect(json<{ action: string }>(retried).action).toBe('retry_subprocess')
    await waitFor(async () => ((await displayed(taskId)) === 'FINISHED' ? true : undefined))
  })

  it('pause --subprocess and resume --subprocess; approve passes an approval point inside the child', async () => {
    const b = createTreeBuilder()
    const gate = b.activity('pause_node', { name: 'gate' })
    b.chain(b.startId, gate, b.endId)
    const { taskId, sc, inner } = await parentTask(b.build(), 'approval-parent', 'gate')
    await waitFor(async () => {
      const d = json<{ waiting_for: string | null }>(
        await cli(['node', 'show', String(taskId), inner, '--json']),
      )
      return d.waiting_for === 'callback' ? true : undefined
    })
    const paused = await cli(['node', 'pause', String(taskId), sc, '--subprocess', '--json'])
    expect(paused.code, paused.stderr).toBe(0)
    expect(json<{ state: string }>(paused).state).toBe('SUSPENDED')
    const again = await cli(['node', 'pause', String(taskId), sc, '--subprocess'])
    expect(again.code).not.toBe(0)
    expect(again.stderr).toContain(`node[${sc}] is SUSPENDED; pause_subproc needs RUNNING`)
    const resumed = await cli(['node', 'resume', String(taskId), sc, '--subprocess', '--json'])
    expect(resumed.code, resumed.stderr).toBe(0)
    expect(json<{ state: string }>(resumed).state).toBe('RUNNING')
    const approved = await cli(['node', 'approve', String(taskId), inner])
    expect(approved.code, approved.stderr).toBe(0)
    await waitFor(async () => ((await displayed(taskId)) === 'FINISHED' ? true : undefined))
  })
})
