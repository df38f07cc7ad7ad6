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
  PUBLIC_URL,
  quickTree,
  type ReachableState,
  recordsOf,
  sleepTree,
  stateOf,
  taskIn,
  waitForState,
} from './fixtures'
import { type Harness, makeIdentity, startHarness } from './harness'

type Action = 'start' | 'pause' | 'resume' | 'revoke'
type State = ReachableState | 'FINISHED'
type Outcome = { next: State } | { refused: string }

// operate_task against the task state table, every cell.
const TABLE: Record<State, Record<Action, Outcome>> = {
  CREATED: {
    start: { next: 'RUNNING' },
    pause: { refused: 'task not started' },
    resume: { refused: 'task not started' },
    revoke: { refused: 'task not started' },
  },
  RUNNING: {
    start: { refused: 'task already started' },
    pause: { next: 'SUSPENDED' },
    resume: { refused: 'task is not suspended' },
    revoke: { next: 'REVOKED' },
  },
  SUSPENDED: {
    start: { refused: 'task already started' },
    pause: { refused: 'task is already suspended' },
    resume: { next: 'RUNNING' },
    revoke: { next: 'REVOKED' },
  },
  REVOKED: {
    start: { refused: 'task already started' },
    pause: { refused: 'task with state REVOKED cannot be paused' },
    resume: { refused: 'task with state REVOKED cannot be resumed' },
    revoke: { refused: 'task with state REVOKED cannot be revoked' },
  },
  FINISHED: {
    start: { refused: 'task already started' },
    pause: { refused: 'task with state FINISHED cannot be paused' },
    resume: { refused: 'task with state FINISHED cannot be resumed' },
    revoke: { refused: 'task with state FINISHED cannot be revoked' },
  },
}

const ACTIONS: Action[] = ['start', 'pause', 'resume', 'revoke']
const describeOutcome = (o: Outcome) =>
  'next' in o ? `succeeds and the task becomes ${o.next}` : `is refused with "${o.refused}"`

/** One operation checked whole: the reply, the state after, and the records written (one on success, none on refusal). */
async function checkOperation(
  h: Harness,
  c: LegacyClient,
  taskId: number,
  from: State,
  action: Action,
  api: 'operate_task' | 'start_task',
) {
  const expected = TABLE[from][action]
  const before = await recordsOf(c, taskId)
  const reply = await c.post(api, api === 'operate_task' ? { task_id: taskId, action } : { task_id: taskId })
  // start_task's success also carries task_url beside the six keys, as bk-sops's does
  expectEnvelope(reply, api === 'start_task' && reply.body.result ? ['task_url'] : [])
  if ('next' in expected) {
    const data = ok(reply)
    if (api === 'start_task') {
      expect(data).toEqual({
        task_url: `${PUBLIC_URL}/taskflow/execute/${c.id.projectId}/?instance_id=${taskId}`,
      })
    } else {
      expect(data).toEqual({})
    }
    // The state is committed when the reply is sent.
    expect(await stateOf(h, taskId)).toBe(expected.next)
    const after = await recordsOf(c, taskId)
    expect(after.length).toBe(before.length + 1)
    expect(after.slice(0, before.length)).toEqual(before)
    const record = after.at(-1)!
    expect(record).toMatchObject({
      operator: c.id.username,
      operate_type: action,
      operate_source: 'api',
      instance_id: taskId,
      project_id: c.id.projectId,
      node_id: '',
    })
    expect(record.operate_date).toMatch(LEGACY_TIME)
  } else {
    expectRefusal(reply, 3545000, expected.refused)
    expect(await stateOf(h, taskId)).toBe(from)
    expect(await recordsOf(c, taskId)).toEqual(before)
  }
}

describe('operate_task and start_task on tasks that the worker does not run', () => {
  let h: Harness
  let c: LegacyClient
  let templateId: number

  beforeAll(async () => {
    h = await startHarness({ worker: false, env: { STDOPS_PUBLIC_URL: PUBLIC_URL } })
    c = legacyClient(h, await makeIdentity(h.deps, { role: 'operator' }))
    const admin = legacyClient(h, await makeIdentity(h.deps, { role: 'admin', projectId: c.id.projectId }))
    templateId = await createTemplate(admin, sleepTree().tree)
  })
  afterAll(async () => {
    await h?.close()
  })

  const states: ReachableState[] = ['CREATED', 'RUNNING', 'SUSPENDED', 'REVOKED']
  for (const from of states) {
    for (const action of ACTIONS) {
      it(`${action} of a ${from} task ${describeOutcome(TABLE[from][action])}`, async () => {
        const taskId = await taskIn(c, templateId, from)
        expect(await stateOf(h, taskId)).toBe(from)
        await checkOperation(h, c, taskId, from, action, 'operate_task')
      })
    }
    it(`start_task on a ${from} task answers like start: ${describeOutcome(TABLE[from].start)}`, async () => {
      const taskId = await taskIn(c, templateId, from)
      await checkOperation(h, c, taskId, from, 'start', 'start_task')
    })
  }

  for (const [label, body] of [
    ['missing', {}],
    ['empty', { action: '' }],
    ['unknown', { action: 'delete' }],
    ['of another case', { action: 'START' }],
    ['padded with spaces', { action: ' pause ' }],
    ['a node operation', { action: 'retry' }],
  ] as const) {
    it(`an action that is ${label} is refused with "task command is invalid" and writes no record`, async () => {
      for (const from of ['CREATED', 'RUNNING'] as const) {
        const taskId = await taskIn(c, templateId, from)
        const before = await recordsOf(c, taskId)
        const reply = await c.post('operate_task', { task_id: taskId, ...body })
        expectRefusal(reply, 3545000, 'task command is invalid')
        expect(await stateOf(h, taskId)).toBe(from)
        expect(await recordsOf(c, taskId)).toEqual(before)
      }
    })
  }

  it('a full life of pause, resume and revoke leaves one record per success, oldest first', async () => {
    const taskId = await createTask(c, templateId)
    for (const action of ['start', 'pause', 'resume', 'pause', 'resume', 'revoke'] as const) {
      ok(await c.post('operate_task', { task_id: taskId, action }))
    }
    // refusals in between write nothing
    expectRefusal(
      await c.post('operate_task', { task_id: taskId, action: 'resume' }),
      3545000,
      'task with state REVOKED cannot be resumed',
    )
    const records = await recordsOf(c, taskId)
    expect(records.map((r) => r.operate_type)).toEqual([
      'create',
      'start',
      'pause',
      'resume',
      'pause',
      'resume',
      'revoke',
    ])
    expect(new Set(records.map((r) => r.operate_source))).toEqual(new Set(['api']))
  })

  it('50 concurrent pauses of one RUNNING task: exactly one succeeds, 49 answer "task is already suspended", one record', async () => {
    const taskId = await taskIn(c, templateId, 'RUNNING')
    const replies = await Promise.all(
      Array.from({ length: 50 }, () => c.post('operate_task', { task_id: taskId, action: 'pause' })),
    )
    const wins = replies.filter((r) => r.body.result === true)
    const losses = replies.filter((r) => r.body.result === false)
    expect(wins.length).toBe(1)
    expect(wins[0]!.body).toMatchObject({ code: 0, message: 'success', data: {} })
    expect(losses.length).toBe(49)
    for (const r of losses) expectRefusal(r, 3545000, 'task is already suspended')
    expect(await stateOf(h, taskId)).toBe('SUSPENDED')
    const records = await recordsOf(c, taskId)
    expect(records.filter((r) => r.operate_type === 'pause').length).toBe(1)
  })

  it('20 concurrent starts of one CREATED task: exactly one succeeds, the others answer "task already started"', async () => {
    const taskId = await taskIn(c, templateId, 'CREATED')
    const replies = await Promise.all(
      Array.from({ length: 20 }, () => c.post('start_task', { task_id: taskId })),
    )
    expect(replies.filter((r) => r.body.result === true).length).toBe(1)
    for (const r of replies.filter((x) => x.body.result === false))
      expectRefusal(r, 3545000, 'task already started')
    expect((await recordsOf(c, taskId)).filter((r) => r.operate_type === 'start').length).toBe(1)
  })

  it('a resume racing a revoke on a SUSPENDED task: both can win only in the order resume then revoke', async () => {
    const taskId = await taskIn(c, templateId, 'SUSPENDED')
    const [resume, revoke] = await Promise.all([
      c.post('operate_task', { task_id: taskId, action: 'resume' }),
      c.post('operate_task', { task_id: taskId, action: 'revoke' }),
    ])
    // revoke is legal from SUSPENDED and from RUNNING, so it always wins; resume wins only if it came first.
    ok(revoke)
    expect(await stateOf(h, taskId)).toBe('REVOKED')
    const types = (await recordsOf(c, taskId)).map((r) => r.operate_type)
    if (resume.body.result) {
      expect(types).toEqual(['create', 'start', 'pause', 'resume', 'revoke'])
    } else {
      expectRefusal(resume, 3545000, 'task with state REVOKED cannot be resumed')
      expect(types).toEqual(['create', 'start', 'pause', 'revoke'])
    }
  })
})

describe('operate_task and start_task on a FINISHED task', () => {
  let h: Harness
  let c: LegacyClient
  let taskId: number

  beforeAll(async () => {
    h = await startHarness({ env: { STDOPS_PUBLIC_URL: PUBLIC_URL } })
    c = legacyClient(h, await makeIdentity(h.deps, { role: 'admin' }))
    const templateId = await createTemplate(c, quickTree().tree)
    taskId = await createTask(c, templateId)
    ok(await c.post('operate_task', { task_id: taskId, action: 'start' }))
    await waitForState(c, taskId, 'FINISHED')
  })
  afterAll(async () => {
    await h?.close()
  })

  for (const action of ACTIONS) {
    it(`${action} of a FINISHED task ${describeOutcome(TABLE.FINISHED[action])}`, async () => {
      await checkOperation(h, c, taskId, 'FINISHED', action, 'operate_task')
    })
  }

  it('start_task on a FINISHED task is refused with "task already started"', async () => {
    await checkOperation(h, c, taskId, 'FINISHED', 'start', 'start_task')
  })

  it('an unknown action on a FINISHED task is refused with "task command is invalid"', async () => {
    expectRefusal(
      await c.post('operate_task', { task_id: taskId, action: 'bogus' }),
      3545000,
      'task command is invalid',
    )
  })

  it('the finished task has exactly the records create and start, written by the api', async () => {
    const records = await recordsOf(c, taskId)
    expect(records.map((r) => [r.operate_type, r.operate_source, r.operator])).toEqual([
      ['create', 'api', c.id.username],
      ['start', 'api', c.id.username],
    ])
  })
})
