import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createTreeBuilder } from '@stdops/core/testing'
import { sql } from '@stdops/db'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createTemplate,
  expectRefusal,
  type LegacyClient,
  legacyClient,
  ok,
  rowCounts,
  waitForState,
} from './fixtures'
import { type Harness, makeIdentity, startHarness, waitFor } from './harness'

type Status = {
  id: string
  state: string
  running_nodes?: number
  children: Record<string, Status>
}
type Tree = {
  start_event: { id: string }
  end_event: { id: string }
  activities: Record<string, { id: string; name: string; type: string; pipeline?: Tree; version?: string }>
}

describe('subprocesses: a template that runs another as one of its steps', () => {
  let h: Harness
  let c: LegacyClient
  let receiver: {
    url: string
    release(): void
    held(): number
    /** /flaky answers 500 until this is set. */
    healthy: boolean
    close(): Promise<void>
  }

  beforeAll(async () => {
    // the tasks call this test's HTTP server on 127.0.0.1, which must be allowed
    h = await startHarness({ env: { STDOPS_OUTBOUND_ALLOW: '127.0.0.1' } })
    c = legacyClient(h, await makeIdentity(h.deps, { role: 'admin' }))
    // /slow answers only when released: a child node that stays RUNNING until the test says so.
    const waiting: ServerResponse[] = []
    const server = createServer((req, res) => {
      if (req.url === '/slow') waiting.push(res)
      else if (req.url === '/flaky' && !receiver.healthy) {
        res.statusCode = 500
        res.end('{}')
      } else res.end('{}')
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    receiver = {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      release: () => {
        for (const res of waiting.splice(0)) res.end('{"ok":true}')
      },
      held: () => waiting.length,
      healthy: false,
      close: () =>
        new Promise<void>((r) => {
          server.closeAllConnections()
          server.close(() => r())
        }),
    }
  })
  afterAll(async () => {
    await h?.close()
    await receiver?.close()
  })

  const status = async (taskId: number) =>
    ok<Status>(await c.get('get_task_status', { task_id: taskId, with_ex_data: true }))
  const createTask = async (templateId: number) =>
    ok<{ task_id: number; pipeline_tree: Tree }>(
      await c.post('create_task', { template_id: templateId, name: 'with subprocesses' }),
    )
  /** The task's nodes in the order they started (their first attempts, by history row). */
  const path = async (taskId: number) =>
    (
      await h.deps.db.query<{ node_id: string }>(
        sql`SELECT node_id FROM node_histories WHERE task_id = ${taskId} AND attempt = 1 ORDER BY id`,
      )
    ).map((r) => r.node_id)
  const subprocessIn = (tree: Tree) => {
    const found = Object.values(tree.activities).find((a) => a.type === 'SubProcess')
    if (!found?.pipeline) throw new Error('the task tree has no subprocess with its child tree')
    return found as { id: string; pipeline: Tree; version?: string }
  }
  const activityNamed = (tree: Tree, name: string) => {
    const found = Object.values(tree.activities).find((a) => a.name === name)
    if (!found) throw new Error(`no activity ${name}`)
    return found.id
  }

  it('runs a parent with two nested subprocesses: a constant goes down by hook and comes back up as an output', async () => {
    // grandchild: ${g_in} → set_variables → ${g_out} = "<g_in>-g"
    const g = createTreeBuilder()
    g.constant('g_in', 'unset')
    const gSet = g.activity('set_variables', {
      name: 'g set',
      data: { variables: { hook: false, value: { doubled: '${g_in}-g' } } },
    })
    g.chain(g.startId, gSet, g.endId)
    g.constant('g_out', '', { source_type: 'component_outputs', source_info: { [gSet]: ['doubled'] } })
    g.output('g_out')
    const grandchild = await createTemplate(c, g.build(), 'grandchild')

    // child: ${c_in} → c step → subprocess(grandchild, g_in ← ${c_in}) → ${c_out} ← its ${g_out}
    const ch = createTreeBuilder()
    ch.constant('c_in', 'unset')
    const cStep = ch.activity('set_variables', {
      name: 'c step',
      data: { variables: { hook: false, value: { seen: '${c_in}' } } },
    })
    const sg = ch.subprocess(grandchild, {
      name: 'run grandchild',
      constants: { '${g_in}': { hook: true, value: '${c_in}' } },
    })
    ch.chain(ch.startId, cStep, sg, ch.endId)
    ch.constant('c_out', '', { source_type: 'component_outputs', source_info: { [sg]: ['${g_out}'] } })
    ch.output('c_out')
    const child = await createTemplate(c, ch.build(), 'child')

    // parent: ${p_in}=hello → subprocess(child, c_in ← ${p_in}) → final (reads ${p_result}) → end
    const p = createTreeBuilder()
    p.constant('p_in', 'hello')
    const sc = p.subprocess(child, {
      name: 'run child',
      constants: { '${c_in}': { hook: true, value: '${p_in}' } },
    })
    const final = p.activity('set_variables', {
      name: 'final',
      data: { variables: { hook: false, value: { final: '${p_result}' } } },
    })
    p.chain(p.startId, sc, final, p.endId)
    p.constant('p_result', '', { source_type: 'component_outputs', source_info: { [sc]: ['${c_out}'] } })
    p.output('p_result')
    const parent = await createTemplate(c, p.build(), 'parent')

    const created = await createTask(parent)
    const taskId = created.task_id
    // The copy: each child tree is in the task, and node ids are unique across the whole task
    // (the three builders made the same ids: the copies got fresh ones).
    const scNode = subprocessIn(created.pipeline_tree)
    expect(scNode.id).toBe(sc)
    expect(scNode.version).toBe('1')
    const sgNode = subprocessIn(scNode.pipeline)
    const ids = [created.pipeline_tree, scNode.pipeline, sgNode.pipeline].flatMap((t) => [
      t.start_event.id,
      t.end_event.id,
      ...Object.keys(t.activities),
    ])
    expect(new Set(ids).size).toBe(ids.length)
    const cStepId = activityNamed(scNode.pipeline, 'c step')
    const gSetId = activityNamed(sgNode.pipeline, 'g set')

    ok(await c.post('start_task', { task_id: taskId }))
    await waitForState(c, taskId, 'FINISHED')

    expect(await path(taskId)).toEqual([
      p.startId,
      sc,
      scNode.pipeline.start_event.id,
      cStepId,
      sgNode.id,
      sgNode.pipeline.start_event.id,
      gSetId,
      sgNode.pipeline.end_event.id,
      scNode.pipeline.end_event.id,
      final,
      p.endId,
    ])

    // Down by hook: the grandchild saw the parent's value; up as outputs: the parent's final step read it.
    const gData = ok<{ inputs: Record<string, unknown> }>(
      await c.get('get_task_node_data', { task_id: taskId, node_id: gSetId }),
    )
    expect(gData.inputs).toEqual({ variables: { doubled: 'hello-g' } })
    const finalDetail = ok<{ outputs: Array<{ key: string; value: unknown }> }>(
      await c.get('get_task_node_detail', { task_id: taskId, node_id: final }),
    )
    expect(finalDetail.outputs).toEqual([{ name: 'final', key: 'final', value: 'hello-g', preset: true }])
    const scDetail = ok<{ state: string; outputs: Array<{ key: string; value: unknown }> }>(
      await c.get('get_task_node_detail', { task_id: taskId, node_id: sc }),
    )
    expect(scDetail.state).toBe('FINISHED')
    expect(scDetail.outputs).toEqual([{ name: '${c_out}', key: '${c_out}', value: 'hello-g', preset: true }])
    const detail = ok<{ outputs: Array<{ key: string; value: unknown }> }>(
      await c.get('get_task_detail', { task_id: taskId }),
    )
    expect(detail.outputs).toEqual([expect.objectContaining({ key: '${p_result}', value: 'hello-g' })])

    // The status tree nests as bk-sops nests it: a SubProcess's children are its child tree's nodes.
    const tree = await status(taskId)
    expect(tree.state).toBe('FINISHED')
    expect(Object.keys(tree.children).sort()).toEqual([p.startId, sc, final, p.endId].sort())
    const scStatus = tree.children[sc]!
    expect(scStatus.state).toBe('FINISHED')
    expect(Object.keys(scStatus.children).sort()).toEqual(
      [scNode.pipeline.start_event.id, cStepId, sgNode.id, scNode.pipeline.end_event.id].sort(),
    )
    const sgStatus = scStatus.children[sgNode.id]!
    expect(Object.keys(sgStatus.children).sort()).toEqual(
      [sgNode.pipeline.start_event.id, gSetId, sgNode.pipeline.end_event.id].sort(),
    )
    expect(sgStatus.children[gSetId]).toMatchObject({ state: 'FINISHED', children: {} })
    // subprocess_id narrows to that subprocess.
    const narrowed = ok<Status>(await c.get('get_task_status', { task_id: taskId, subprocess_id: sgNode.id }))
    expect(narrowed.id).toBe(sgNode.id)
    expect(Object.keys(narrowed.children)).toHaveLength(3)
  })

  /** parent: start → subprocess(child: start → slow call → after → end) → last → end */
  async function slowChildTask() {
    const ch = createTreeBuilder()
    const slow = ch.activity('bk_http_request', {
      name: 'slow call',
      data: {
        bk_http_request_method: { hook: false, value: 'GET' },
        bk_http_request_url: { hook: false, value: `${receiver.url}/slow` },
        bk_http_timeout: { hook: false, value: 60 },
      },
    })
    const after = ch.activity('set_variables', {
      name: 'after',
      data: { variables: { hook: false, value: {} } },
    })
    ch.chain(ch.startId, slow, after, ch.endId)
    const child = await createTemplate(c, ch.build(), 'slow child')
    const p = createTreeBuilder()
    const sc = p.subprocess(child, { name: 'run slow child' })
    const last = p.activity('set_variables', {
      name: 'last',
      data: { variables: { hook: false, value: {} } },
    })
    p.chain(p.startId, sc, last, p.endId)
    const created = await createTask(await createTemplate(c, p.build(), 'slow parent'))
    const pipeline = subprocessIn(created.pipeline_tree).pipeline
    ok(await c.post('start_task', { task_id: created.task_id }))
    const ids = {
      sc,
      last,
      slow: activityNamed(pipeline, 'slow call'),
      after: activityNamed(pipeline, 'after'),
    }
    await waitFor(async () =>
      (await status(created.task_id)).children[sc]?.children[ids.slow]?.state === 'RUNNING'
        ? true
        : undefined,
    )
    await waitFor(async () => (receiver.held() > 0 ? true : undefined))
    return { taskId: created.task_id, ...ids }
  }

  it('pause of the task reaches the child: nothing starts after it, in the child or the parent; resume goes on', async () => {
    const { taskId, sc, last, slow, after } = await slowChildTask()
    ok(await c.post('operate_task', { task_id: taskId, action: 'pause' }))
    receiver.release()
    // The running child node finishes; then the task is quiet.
    const quiet = await waitFor(async () => {
      const s = await status(taskId)
      return s.running_nodes === 0 && s.children[sc]?.children[slow]?.state === 'FINISHED' ? s : undefined
    })
    expect(quiet.state).toBe('SUSPENDED')
    // What the finished node led to did not start: the child's next node is held READY, the parent's untouched.
    expect(quiet.children[sc]!.children[after]?.state ?? 'not reached').toBe('READY')
    expect(quiet.children[last]).toBeUndefined()
    expect(await path(taskId)).not.toContain(after)

    ok(await c.post('operate_task', { task_id: taskId, action: 'resume' }))
    await waitForState(c, taskId, 'FINISHED')
    const done = await status(taskId)
    expect(done.children[sc]!.children[after]!.state).toBe('FINISHED')
    expect(done.children[last]!.state).toBe('FINISHED')
  })

  it('revoke of the task reaches the child: its running node is aborted and every started node ends REVOKED', async () => {
    const { taskId, sc, last, slow, after } = await slowChildTask()
    ok(await c.post('operate_task', { task_id: taskId, action: 'revoke' }))
    const s = await waitFor(async () => {
      const t = await status(taskId)
      return t.children[sc]?.children[slow]?.state === 'REVOKED' ? t : undefined
    })
    receiver.release()
    expect(s.state).toBe('REVOKED')
    expect(s.children[sc]!.state).toBe('REVOKED')
    expect(s.children[sc]!.children[after]).toBeUndefined()
    expect(s.children[last]).toBeUndefined()
  })

  const slowCall = (b: ReturnType<typeof createTreeBuilder>, name: string) =>
    b.activity('bk_http_request', {
      name,
      data: {
        bk_http_request_method: { hook: false, value: 'GET' },
        bk_http_request_url: { hook: false, value: `${receiver.url}/slow` },
        bk_http_timeout: { hook: false, value: 60 },
      },
    })
  const noop = (b: ReturnType<typeof createTreeBuilder>, name: string) =>
    b.activity('set_variables', { name, data: { variables: { hook: false, value: {} } } })

  it('pause_subproc holds only that child: the parent goes on, the child starts nothing until resume_subproc', async () => {
    const ch = createTreeBuilder()
    const slow = slowCall(ch, 'child slow')
    const after = noop(ch, 'child after')
    ch.chain(ch.startId, slow, after, ch.endId)
    const child = await createTemplate(c, ch.build(), 'pausable child')
    // parent: start → fork → [subprocess(child) | parent slow → parent after] → join → end
    const p = createTreeBuilder()
    const fork = p.gateway('ParallelGateway')
    const join = p.gateway('ConvergeGateway')
    const sc = p.subprocess(child, { name: 'run pausable child' })
    const pSlow = slowCall(p, 'parent slow')
    const pAfter = noop(p, 'parent after')
    p.chain(p.startId, fork)
    p.chain(fork, sc, join)
    p.chain(fork, pSlow, pAfter, join)
    p.chain(join, p.endId)
    const created = await createTask(await createTemplate(c, p.build(), 'parent of a pausable child'))
    const taskId = created.task_id
    const childTree = subprocessIn(created.pipeline_tree).pipeline
    const [cSlow, cAfter] = [activityNamed(childTree, 'child slow'), activityNamed(childTree, 'child after')]
    ok(await c.post('start_task', { task_id: taskId }))
    await waitFor(async () => (receiver.held() === 2 ? true : undefined))

    // Only a SubProcess takes it, and only while RUNNING.
    expectRefusal(
      await c.post('operate_node', { task_id: taskId, node_id: pSlow, action: 'pause_subproc' }),
      3545000,
      `node[${pSlow}] is an activity; pause_subproc applies to a SubProcess`,
    )
    expectRefusal(
      await c.post('operate_node', { task_id: taskId, node_id: sc, action: 'resume_subproc' }),
      3545000,
      `node[${sc}] is RUNNING; resume_subproc needs SUSPENDED`,
    )
    ok(await c.post('operate_node', { task_id: taskId, node_id: sc, action: 'pause_subproc' }))
    receiver.release()
    // The parent's branch goes on to its end; the child's running node finishes and what it leads to waits.
    const held = await waitFor(async () => {
      const s = await status(taskId)
      return s.children[pAfter]?.state === 'FINISHED' && s.children[sc]?.children[cSlow]?.state === 'FINISHED'
        ? s
        : undefined
    })
    // As with a held node, the task displays NODE_SUSPENDED while a subprocess of it is paused.
    expect(held.state).toBe('NODE_SUSPENDED')
    expect(held.children[sc]!.state).toBe('SUSPENDED')
    expect(held.children[sc]!.children[cAfter]?.state).toBe('READY')
    expect(held.children[join]?.state ?? 'READY').toBe('READY')
    expect(await path(taskId)).not.toContain(cAfter)
    expectRefusal(
      await c.post('operate_node', { task_id: taskId, node_id: sc, action: 'pause_subproc' }),
      3545000,
      `node[${sc}] is SUSPENDED; pause_subproc needs RUNNING`,
    )

    ok(await c.post('operate_node', { task_id: taskId, node_id: sc, action: 'resume_subproc' }))
    await waitForState(c, taskId, 'FINISHED')
    const done = await status(taskId)
    expect(done.children[sc]!.children[cAfter]!.state).toBe('FINISHED')
    const records = ok<Array<{ operate_type: string; node_id: string }>>(
      await c.get('get_task_operate_record', { task_id: taskId }),
    )
    expect(records.filter((r) => r.node_id === sc).map((r) => r.operate_type)).toEqual([
      'pause_subproc',
      'resume_subproc',
    ])
  })

  it('retry_subprocess runs a subprocess whose child node failed again from its start', async () => {
    receiver.healthy = false
    const ch = createTreeBuilder()
    const first = noop(ch, 'child first')
    const flaky = ch.activity('bk_http_request', {
      name: 'child flaky',
      data: {
        bk_http_request_method: { hook: false, value: 'GET' },
        bk_http_request_url: { hook: false, value: `${receiver.url}/flaky` },
      },
    })
    ch.chain(ch.startId, first, flaky, ch.endId)
    const child = await createTemplate(c, ch.build(), 'flaky child')
    const p = createTreeBuilder()
    const sc = p.subprocess(child, { name: 'run flaky child' })
    const last = noop(p, 'parent last')
    p.chain(p.startId, sc, last, p.endId)
    const created = await createTask(await createTemplate(c, p.build(), 'parent of a flaky child'))
    const taskId = created.task_id
    const childTree = subprocessIn(created.pipeline_tree).pipeline
    const [cFirst, cFlaky] = [
      activityNamed(childTree, 'child first'),
      activityNamed(childTree, 'child flaky'),
    ]
    ok(await c.post('start_task', { task_id: taskId }))

    // A failed child node: FAILED in the child, and the SubProcess and the task display FAILED.
    const failed = await waitForState(c, taskId, 'FAILED')
    const failedTree = (await status(taskId)) as Status
    expect(failed.state).toBe('FAILED')
    expect(failedTree.children[sc]!.state).toBe('FAILED')
    expect(failedTree.children[sc]!.children[cFlaky]!.state).toBe('FAILED')
    expectRefusal(
      await c.post('operate_node', { task_id: taskId, node_id: cFlaky, action: 'retry_subprocess' }),
      3545000,
      `node[${cFlaky}] is an activity; retry_subprocess applies to a SubProcess`,
    )

    receiver.healthy = true
    ok(await c.post('operate_node', { task_id: taskId, node_id: sc, action: 'retry_subprocess' }))
    await waitForState(c, taskId, 'FINISHED')
    // From its start: the child's first step ran again, then the flaky one, now passing.
    const runs = await h.deps.db.query<{ node_id: string; state: string }>(
      sql`SELECT node_id, state FROM node_histories WHERE task_id = ${taskId} AND node_id IN (${cFirst}, ${cFlaky}) ORDER BY id`,
    )
    expect(runs).toEqual([
      { node_id: cFirst, state: 'FINISHED' },
      { node_id: cFlaky, state: 'FAILED' },
      { node_id: cFirst, state: 'FINISHED' },
      { node_id: cFlaky, state: 'FINISHED' },
    ])
    const scDetail = ok<{ state: string; retry: number; version: number }>(
      await c.get('get_task_node_detail', { task_id: taskId, node_id: sc }),
    )
    expect(scDetail).toMatchObject({ state: 'FINISHED', retry: 1 })
    expect((await status(taskId)).children[last]!.state).toBe('FINISHED')
    expectRefusal(
      await c.post('operate_node', { task_id: taskId, node_id: sc, action: 'retry_subprocess' }),
      3545000,
      'task with state FINISHED cannot operate nodes',
    )
  })

  it('refuses at creation a template that includes itself, a cycle of templates (named), and nesting deeper than 8', async () => {
    const plain = () => {
      const b = createTreeBuilder()
      b.chain(
        b.startId,
        b.activity('set_variables', { data: { variables: { hook: false, value: {} } } }),
        b.endId,
      )
      return b.build()
    }
    const including = (templateId: number) => {
      const b = createTreeBuilder()
      b.chain(b.startId, b.subprocess(templateId), b.endId)
      return b.build()
    }
    // A template edited, after it was saved, to include a template that includes it.
    const a = await createTemplate(c, plain(), 'alpha')
    const b = await createTemplate(c, including(a), 'beta')
    await h.deps.db.prisma.template.update({
      where: { id: a },
      data: { pipelineTree: JSON.stringify(including(b)) },
    })
    const self = await createTemplate(c, plain(), 'self')
    await h.deps.db.prisma.template.update({
      where: { id: self },
      data: { pipelineTree: JSON.stringify(including(self)) },
    })
    const before = await rowCounts(h)
    expectRefusal(
      await c.post('create_task', { template_id: a, name: 'cycle' }),
      3540000,
      `invalid pipeline_tree: subprocesses make a cycle of templates: template[${a}] alpha → template[${b}] beta → template[${a}] alpha`,
    )
    expectRefusal(
      await c.post('create_task', { template_id: b, name: 'cycle' }),
      3540000,
      /make a cycle of templates: template\[\d+\] beta → template\[\d+\] alpha → template\[\d+\] beta/,
    )
    expectRefusal(
      await c.post('create_task', { template_id: self, name: 'self' }),
      3540000,
      new RegExp(`make a cycle of templates: template\\[${self}\\] self → template\\[${self}\\] self`),
    )
    expect(await rowCounts(h)).toEqual(before)

    // Depth: level0 is plain; level n includes level n-1. A task of level8 nests 8 deep: accepted.
    let level = await createTemplate(c, plain(), 'level0')
    for (let n = 1; n <= 9; n++) {
      const next = await createTemplate(c, including(level), `level${n}`)
      if (n === 8) {
        const task = await createTask(next)
        ok(await c.post('start_task', { task_id: task.task_id }))
        await waitForState(c, task.task_id, 'FINISHED')
      }
      level = next
    }
    expectRefusal(
      await c.post('create_task', { template_id: level, name: 'too deep' }),
      3540000,
      /nest deeper than 8 levels \(template\[\d+\] level9 → .* → template\[\d+\] level0\)/,
    )
  })
})
