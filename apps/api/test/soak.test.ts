import { type TaskState, transitionTask } from '@stdops/core'
import { createTreeBuilder } from '@stdops/core/testing'
import { type MigratableDb, sql } from '@stdops/db'
import { createTestDatabaseUrl } from '@stdops/db/testing'
import { afterAll, describe, expect, it } from 'vitest'
import { authHeader, esb, type Identity, waitFor } from './harness'
import {
  type Child,
  count,
  isPostgres,
  killAll,
  openAndBootstrap,
  serverEnv,
  startProcess,
  stopProcess,
} from './procs'

/**
 * Soak (issue 5, "Reliability suite"): an API process (`serve --no-worker`) and two worker
 * processes (`worker`) on one PostgreSQL database; 8 concurrent clients create 200 tasks and start,
 * pause, resume and revoke them at random for 30 s. Afterwards every task's final state agrees with
 * its operate records (replayed through core's transitionTask) and with its event log, no task is
 * lost, no reply was 3599999, and every task that was not revoked finishes.
 */

const CLIENTS = 8
const TASKS = 200
const SOAK_MS = 30_000

interface Reply {
  client: number
  api: string
  taskId: number | null
  action: string
  status: number
  code: number
  message: string
}

/** start → 0.3 s timer → fork (0.5 s timer | set_variables → 0.2 s timer | set_variables) → converge → 0.3 s timer → end */
function soakTree() {
  const b = createTreeBuilder()
  const timer = (seconds: string) =>
    b.activity('sleep_timer', { data: { bk_timing: { hook: false, value: seconds } } })
  const vars = () => b.activity('set_variables', { data: { variables: { hook: false, value: { v: 1 } } } })
  const fork = b.gateway('ParallelGateway')
  const join = b.gateway('ConvergeGateway')
  b.chain(b.startId, timer('0.3'), fork)
  b.chain(fork, timer('0.5'), join)
  b.chain(fork, vars(), timer('0.2'), join)
  b.chain(fork, vars(), join)
  b.chain(join, timer('0.3'), b.endId)
  return b.build()
}

const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)]!
/** The clients' mix: pauses and resumes mostly, a start now and then, a revoke rarely. */
const ACTIONS = [
  ...Array<'pause'>(8).fill('pause'),
  ...Array<'resume'>(8).fill('resume'),
  'start',
  'start',
  'revoke',
] as const

describe.skipIf(!isPostgres())('soak on PostgreSQL: an API process and two worker processes', () => {
  let drop: (() => Promise<void>) | undefined
  let db: MigratableDb | undefined
  const children: Child[] = []

  afterAll(async () => {
    await killAll()
    await db?.close()
    await drop?.()
  })

  it('after 30 s of 8 clients starting, pausing, resuming and revoking 200 tasks, every state agrees with its records and events, none is lost, and the rest finish', async () => {
    const created = await createTestDatabaseUrl()
    drop = created.drop
    const boot = await openAndBootstrap(created.url)
    db = boot.db
    const id: Identity = boot.id
    const env = serverEnv(created.url)
    children.push(
      ...(await Promise.all([
        startProcess('api', env),
        startProcess('worker', env),
        startProcess('worker', env),
      ])),
    )
    const api = children[0]!
    const transportErrors: string[] = []
    /** A legacy POST; a transport failure is recorded (and answered as status 0) so that the run goes on and the logs can be shown. */
    const call = async (name: string, body: Record<string, unknown>) => {
      try {
        return await esb(api.url!, name, {
          method: 'POST',
          body: { bk_biz_id: id.bkBizId, ...body },
          headers: authHeader(id),
        })
      } catch (err) {
        const cause = (err as { cause?: { code?: string } }).cause?.code ?? String(err)
        transportErrors.push(`${new Date().toISOString()} ${name} ${JSON.stringify(body)}: ${cause}`)
        return {
          status: 0,
          headers: new Headers(),
          body: { result: false, code: -1, data: null, message: cause, request_id: '', trace_id: '' },
        }
      }
    }
    const logsOnFailure = () =>
      children
        .map(
          (c) =>
            `--- ${c.name} (alive: ${c.alive})\n${c.lines
              .filter((l) => !l.includes('"level":30'))
              .slice(-20)
              .join('\n')}`,
        )
        .join('\n')

    const tree = soakTree()
    const template = await call('create_template', { name: 'soak', pipeline_tree: tree })
    expect(template.body.code, JSON.stringify(template.body)).toBe(0)
    const templateId = (template.body.data as { template_id: number }).template_id

    const replies: Reply[] = []
    const taskIds: number[] = []
    /** successful operations per task and action, as the clients saw them */
    const succeeded = new Map<number, Map<string, number>>()
    const credit = (taskId: number, action: string) => {
      const m = succeeded.get(taskId) ?? new Map<string, number>()
      m.set(action, (m.get(action) ?? 0) + 1)
      succeeded.set(taskId, m)
    }
    let reserved = 0
    const ended = new Set<number>()
    let revoked = 0
    const startedAt = Date.now()
    const deadline = startedAt + SOAK_MS

    const client = async (n: number) => {
      // Past the deadline a client only creates what is left: on a loaded machine the requests are
      // slower, and the count of tasks must not depend on how fast they were.
      while (Date.now() < deadline || reserved < TASKS) {
        // creations are spread over the first three quarters of the run
        const allowed = Math.min(
          TASKS,
          Math.ceil((TASKS * (Date.now() - startedAt)) / (SOAK_MS * 0.75)) + CLIENTS,
        )
        const late = Date.now() >= deadline
        if (late && reserved >= TASKS) break
        if (reserved < allowed && (late || taskIds.length < CLIENTS || Math.random() < 0.3)) {
          reserved += 1
          const start = Math.random() < 0.6
          const api = start ? 'create_and_start_task' : 'create_task'
          const r = await call(api, { template_id: templateId, name: `soak ${reserved}` })
          replies.push({
            client: n,
            api,
            taskId: null,
            action: 'create',
            status: r.status,
            code: r.body.code,
            message: r.body.message,
          })
          if (r.body.code === 0) {
            const taskId = (r.body.data as { task_id: number }).task_id
            taskIds.push(taskId)
            credit(taskId, 'create')
            if (start) credit(taskId, 'start')
          }
          continue
        }
        if (taskIds.length === 0) continue
        // mostly tasks that may still move; now and then any task (operations on ended ones are refused)
        const live = taskIds.filter((t) => !ended.has(t))
        const taskId = live.length > 0 && Math.random() < 0.9 ? pick(live) : pick(taskIds)
        // about a quarter of the tasks end revoked; the others are left to finish
        const drawn = pick(ACTIONS)
        const action = drawn === 'revoke' && revoked >= TASKS / 4 ? 'pause' : drawn
        const viaStartTask = action === 'start' && Math.random() < 0.5
        const r = viaStartTask
          ? await call('start_task', { task_id: taskId })
          : await call('operate_task', { task_id: taskId, action })
        replies.push({
          client: n,
          api: viaStartTask ? 'start_task' : 'operate_task',
          taskId,
          action,
          status: r.status,
          code: r.body.code,
          message: r.body.message,
        })
        if (r.body.code === 0) credit(taskId, action)
        if (r.body.code === 0 && action === 'revoke') revoked += 1
        if (
          /^task with state (FINISHED|REVOKED)/.test(r.body.message) ||
          (action === 'revoke' && r.body.code === 0)
        )
          ended.add(taskId)
      }
    }
    await Promise.all(Array.from({ length: CLIENTS }, (_, n) => client(n)))

    // ---- replies: none failed for a reason other than the task's state ---------------------------
    expect(transportErrors, logsOnFailure()).toEqual([])
    expect(
      children.every((c) => c.alive),
      logsOnFailure(),
    ).toBe(true)
    expect(replies.filter((r) => r.code === 3599999)).toEqual([])
    expect(replies.filter((r) => r.status !== 200 || ![0, 3545000].includes(r.code))).toEqual([])
    expect(replies.filter((r) => r.action === 'create' && r.code !== 0)).toEqual([])
    expect(taskIds).toHaveLength(TASKS)
    const ops = replies.filter((r) => r.action !== 'create')
    console.info(
      `soak: ${replies.length} requests in ${Math.round((Date.now() - startedAt) / 1000)} s, ` +
        `${ops.filter((r) => r.code === 0).length} operations applied, ${ops.filter((r) => r.code !== 0).length} refused by state`,
    )

    // ---- settle: what was left CREATED or SUSPENDED is started or resumed, then everything ends -----
    const states = async () =>
      new Map(
        (
          await db!.query<{ id: number; state: TaskState }>(
            sql`SELECT id, state FROM tasks WHERE project_id = ${id.projectId}`,
          )
        ).map((r) => [Number(r.id), r.state]),
      )
    for (const [taskId, state] of await states()) {
      const action = state === 'CREATED' ? 'start' : state === 'SUSPENDED' ? 'resume' : null
      if (!action) continue
      const r = await call('operate_task', { task_id: taskId, action })
      expect(r.body.code, JSON.stringify(r.body)).toBe(0)
      credit(taskId, action)
    }
    const final = await waitFor(
      async () => {
        const s = await states()
        return [...s.values()].every((x) => x === 'FINISHED' || x === 'REVOKED') ? s : undefined
      },
      90_000,
      500,
    )

    // ---- no task lost ------------------------------------------------------------------------------
    expect(final.size).toBe(TASKS)
    expect([...final.keys()].sort((x, y) => x - y)).toEqual([...taskIds].sort((x, y) => x - y))
    expect(await count(db, sql`SELECT COUNT(*) AS n FROM jobs`)).toBe(0)
    // A result may be fenced only where the job was taken away from its worker: by a revoke (no worker
    // died and no lease ran out here). Such a result is recorded and not applied.
    const fenced = await db.query<{ task_id: number; node_id: string; reason: string }>(
      sql`SELECT task_id, node_id, reason FROM fenced_results`,
    )
    expect(
      fenced.filter((f) => final.get(Number(f.task_id)) !== 'REVOKED' || !/^job gone/.test(f.reason)),
      JSON.stringify(fenced),
    ).toEqual([])

    // ---- every task: records, events and nodes agree ----------------------------------------------
    const records = await db.query<{ task_id: number; operate_type: string }>(
      sql`SELECT task_id, operate_type FROM operate_records WHERE project_id = ${id.projectId} ORDER BY id`,
    )
    const events = await db.query<{
      task_id: number
      seq: number
      type: string
      node_id: string | null
      state: string
    }>(sql`SELECT task_id, seq, type, node_id, state FROM task_events ORDER BY task_id, seq`)
    const nodes = await db.query<{
      task_id: number
      node_id: string
      state: string
      started_at: number | null
      finished_at: number | null
    }>(sql`SELECT task_id, node_id, state, started_at, finished_at FROM node_states`)
    const hist = await db.query<{ task_id: number; node_id: string; state: string }>(
      sql`SELECT task_id, node_id, state FROM node_histories`,
    )
    const finishedAt = new Map(
      (
        await db.query<{ id: number; finished_at: number | null }>(sql`SELECT id, finished_at FROM tasks`)
      ).map((r) => [Number(r.id), r.finished_at === null ? null : Number(r.finished_at)]),
    )
    const byTask = <T extends { task_id: number }>(rows: T[]) => {
      const m = new Map<number, T[]>()
      for (const r of rows) m.set(Number(r.task_id), [...(m.get(Number(r.task_id)) ?? []), r])
      return m
    }
    const recordsOf = byTask(records)
    const eventsOf = byTask(events)
    const nodesOf = byTask(nodes)
    const histOf = byTask(hist)
    const allNodes = [
      tree.start_event.id,
      tree.end_event.id,
      ...Object.keys(tree.activities ?? {}),
      ...Object.keys(tree.gateways ?? {}),
    ]
    const flows = Object.values(tree.flows as Record<string, { source: string; target: string }>)

    const problems: string[] = []
    const tally = { FINISHED: 0, REVOKED: 0, pausedAtLeastOnce: 0 }
    for (const [taskId, state] of final) {
      const bad = (what: string) => problems.push(`task ${taskId} (${state}): ${what}`)
      tally[state as 'FINISHED' | 'REVOKED'] += 1
      // operate records, replayed through core's transition
      const types = (recordsOf.get(taskId) ?? []).map((r) => r.operate_type)
      if (types[0] !== 'create') bad(`first record is ${types[0]}`)
      let replayed: TaskState = 'CREATED'
      const expectedStates: string[] = ['CREATED']
      for (const type of types.slice(1)) {
        const t = transitionTask(replayed, type)
        if (!t.ok) {
          bad(`record ${type} is illegal after ${replayed}: ${t.message}`)
          break
        }
        replayed = t.next
        expectedStates.push(t.next)
      }
      if (types.includes('pause')) tally.pausedAtLeastOnce += 1
      if (state === 'FINISHED') {
        if (replayed !== 'RUNNING') bad(`records end in ${replayed}, but the engine finished the task`)
        expectedStates.push('FINISHED')
      } else if (replayed !== state) bad(`records end in ${replayed}`)
      // one record per successful reply, none for a refusal
      const seen = succeeded.get(taskId) ?? new Map<string, number>()
      for (const action of ['create', 'start', 'pause', 'resume', 'revoke']) {
        const n = types.filter((t) => t === action).length
        if (n !== (seen.get(action) ?? 0))
          bad(`${n} ${action} records for ${seen.get(action) ?? 0} successful replies`)
      }
      // the event log: task states in seq order match the records; seqs gap-free
      const evs = eventsOf.get(taskId) ?? []
      if (evs.some((e, i) => Number(e.seq) !== i + 1)) bad('event seqs have a gap')
      const taskStates = evs.filter((e) => e.type === 'task_state').map((e) => e.state)
      if (JSON.stringify(taskStates) !== JSON.stringify(expectedStates)) {
        bad(`task_state events ${taskStates.join(',')} but records say ${expectedStates.join(',')}`)
      }
      // while suspended, no node started; after the final state, nothing but revocations
      let current = 'CREATED'
      for (const e of evs) {
        if (e.type === 'task_state') current = e.state
        else if (current === 'SUSPENDED' && e.state === 'RUNNING')
          bad(`node ${e.node_id} started while the task was suspended`)
        else if (current === 'REVOKED' && e.state !== 'REVOKED')
          bad(`node ${e.node_id} moved to ${e.state} after the revoke`)
        else if (current === 'FINISHED') bad(`node ${e.node_id} moved to ${e.state} after the task finished`)
        else if (current === 'CREATED') bad(`node ${e.node_id} moved to ${e.state} before the start`)
      }
      const ns = new Map((nodesOf.get(taskId) ?? []).map((n) => [n.node_id, n]))
      const hs = histOf.get(taskId) ?? []
      if (state === 'FINISHED') {
        // a path to the end: every node of this tree finished, once, in the order of the flows
        for (const nodeId of allNodes) {
          if (ns.get(nodeId)?.state !== 'FINISHED')
            bad(`node ${nodeId} is ${ns.get(nodeId)?.state ?? 'missing'}`)
          const done = hs.filter((h) => h.node_id === nodeId && h.state === 'FINISHED').length
          if (done !== 1) bad(`node ${nodeId} has ${done} FINISHED history rows`)
        }
        for (const f of flows) {
          const from = ns.get(f.source)
          const to = ns.get(f.target)
          if (from && to && Number(to.started_at) < Number(from.finished_at))
            bad(`${f.target} started before ${f.source} finished`)
        }
        const end = ns.get(tree.end_event.id)
        if (end && Number(end.finished_at) > (finishedAt.get(taskId) ?? 0))
          bad('the end event finished after the task')
      } else {
        for (const [nodeId, n] of ns) {
          if (['READY', 'RUNNING', 'SUSPENDED'].includes(n.state)) bad(`node ${nodeId} is still ${n.state}`)
        }
        if (hs.some((h) => h.state === 'RUNNING')) bad('a history row is still RUNNING')
      }
    }
    console.info(
      `soak: ${tally.FINISHED} finished, ${tally.REVOKED} revoked, ${tally.pausedAtLeastOnce} paused at least once`,
    )
    expect(problems).toEqual([])
    // the run exercised what it claims to
    expect(tally.FINISHED).toBeGreaterThan(0)
    expect(tally.REVOKED).toBeGreaterThan(0)
    expect(tally.pausedAtLeastOnce).toBeGreaterThan(20)

    for (const c of children) expect((await stopProcess(c)).code, c.name).toBe(0)
  }, 240_000)
})
