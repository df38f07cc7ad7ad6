import { createTreeBuilder } from '@stdops/core/testing'
import { createTRPCClient, httpLink, httpSubscriptionLink, splitLink } from '@trpc/client'
import { EventSource } from 'eventsource'
import { expect } from 'vitest'
import type { AppRouter } from '../src/trpc/root'
import { authHeader, type EnvelopeReply, esb, type Harness, type Identity, waitFor } from './harness'

/** The six keys of every legacy reply, sorted. */
export const ENVELOPE_KEYS = ['code', 'data', 'message', 'request_id', 'result', 'trace_id']

/** `YYYY-MM-DD HH:MM:SS +ZZZZ`, the legacy replies' time format. */
export const LEGACY_TIME = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} [+-]\d{4}$/

export const HEX32 = /^[0-9a-f]{32}$/

export const PUBLIC_URL = 'https://sops.example.test'

/**
 * start → set_variables → end. The activity outputs `greeting`, which feeds the constant
 * `${result}` (component_outputs), named as the task's output. Finishes at once when run.
 */
export function quickTree() {
  const b = createTreeBuilder()
  const act = b.activity('set_variables', {
    name: 'say hello',
    data: { variables: { hook: false, value: { greeting: 'hello' } } },
  })
  b.chain(b.startId, act, b.endId)
  b.constant('result', '', { source_type: 'component_outputs', source_info: { [act]: ['greeting'] } })
  b.output('result')
  return { tree: b.build(), activityId: act, startId: b.startId, endId: b.endId }
}

/**
 * start → sleep_timer (`bk_timing` = constant `${wait}`, seconds) → set_variables → end. With a
 * long wait the task stays RUNNING as long as a test needs; with `wait` "0" it finishes quickly.
 */
export function sleepTree(wait = '600') {
  const b = createTreeBuilder()
  b.constant('wait', wait)
  const sleep = b.activity('sleep_timer', {
    name: 'wait a while',
    data: { bk_timing: { hook: true, value: '${wait}' } },
  })
  const after = b.activity('set_variables', {
    name: 'after the wait',
    data: { variables: { hook: false, value: { done: 'yes' } } },
  })
  b.chain(b.startId, sleep, after, b.endId)
  return { tree: b.build(), sleepId: sleep, afterId: after, startId: b.startId, endId: b.endId }
}

export type Reply = EnvelopeReply

/** Legacy calls as one identity: bk_biz_id of the identity's project and its credentials, unless overridden. */
export function legacyClient(h: Pick<Harness, 'url'>, id: Identity) {
  return {
    id,
    post: (api: string, body: Record<string, unknown> = {}, headers: Record<string, string> = {}) =>
      esb(h.url, api, {
        method: 'POST',
        body: { bk_biz_id: id.bkBizId, ...body },
        headers: { ...authHeader(id), ...headers },
      }),
    get: (
      api: string,
      query: Record<string, string | number | boolean> = {},
      headers: Record<string, string> = {},
    ) =>
      esb(h.url, api, {
        method: 'GET',
        query: { bk_biz_id: id.bkBizId, ...query },
        headers: { ...authHeader(id), ...headers },
      }),
  }
}
export type LegacyClient = ReturnType<typeof legacyClient>

/** Asserts a success envelope and returns its data. */
export function ok<T = Record<string, unknown>>(reply: Reply): T {
  expect(reply.body, JSON.stringify(reply.body)).toMatchObject({ result: true, code: 0, message: 'success' })
  expect(reply.status).toBe(200)
  return reply.body.data as T
}

/** Asserts a refusal: result false, the code, the exact message, data null, the HTTP status. */
export function expectRefusal(reply: Reply, code: number, message: string | RegExp, status = 200) {
  expect(reply.body.result, JSON.stringify(reply.body)).toBe(false)
  expect(reply.body.code, JSON.stringify(reply.body)).toBe(code)
  if (typeof message === 'string') expect(reply.body.message).toBe(message)
  else expect(reply.body.message).toMatch(message)
  expect(reply.body.data).toBeNull()
  expect(reply.status).toBe(status)
  expectEnvelope(reply)
}

/** All six keys, well-formed ids, and the headers that repeat them. */
export function expectEnvelope(reply: Reply, extraKeys: string[] = []) {
  expect(Object.keys(reply.body).sort()).toEqual([...ENVELOPE_KEYS, ...extraKeys].sort())
  expect(typeof reply.body.result).toBe('boolean')
  expect(typeof reply.body.code).toBe('number')
  expect(typeof reply.body.message).toBe('string')
  expect(reply.headers.get('x-request-id')).toBe(reply.body.request_id)
  expect(reply.headers.get('sops-trace-id')).toBe(reply.body.trace_id)
}

/** A refusal for a bad parameter: 3540000, HTTP 200, a message that names `field`, and no trace of a stack. */
export function expectParamInvalid(reply: Reply, field: string | RegExp) {
  expect(reply.status, JSON.stringify(reply.body)).toBe(200)
  expect(reply.body.result).toBe(false)
  expect(reply.body.code, JSON.stringify(reply.body)).toBe(3540000)
  expect(reply.body.data).toBeNull()
  if (typeof field === 'string') expect(reply.body.message).toContain(field)
  else expect(reply.body.message).toMatch(field)
  expectNoLeak(reply)
  expectEnvelope(reply)
}

/** No stack trace, file path or exception name in a message. */
export function expectNoLeak(reply: Reply) {
  const m = String(reply.body.message)
  expect(m).not.toMatch(
    /\n\s+at |node_modules|\.ts:\d+|Traceback|TypeError|ReferenceError|PrismaClient|SQLITE_|syntax error/,
  )
}

export async function createTemplate(c: LegacyClient, tree: unknown, name = 'a template'): Promise<number> {
  const reply = await c.post('create_template', { name, pipeline_tree: tree })
  return ok<{ template_id: number }>(reply).template_id
}

export async function createTask(
  c: LegacyClient,
  templateId: number,
  extra: Record<string, unknown> = {},
): Promise<number> {
  const reply = await c.post('create_task', { template_id: templateId, name: 'a task', ...extra })
  return ok<{ task_id: number }>(reply).task_id
}

export type ReachableState = 'CREATED' | 'RUNNING' | 'SUSPENDED' | 'REVOKED'

/** A new task of `templateId` brought to `state` through the API itself. */
export async function taskIn(
  c: LegacyClient,
  templateId: number,
  state: ReachableState,
  extra: Record<string, unknown> = {},
): Promise<number> {
  const taskId = await createTask(c, templateId, extra)
  if (state === 'CREATED') return taskId
  ok(await c.post('operate_task', { task_id: taskId, action: 'start' }))
  if (state === 'SUSPENDED') ok(await c.post('operate_task', { task_id: taskId, action: 'pause' }))
  if (state === 'REVOKED') ok(await c.post('operate_task', { task_id: taskId, action: 'revoke' }))
  return taskId
}

/** The task row's own state, read from the database. */
export async function stateOf(h: Pick<Harness, 'deps'>, taskId: number): Promise<string> {
  const t = await h.deps.db.prisma.task.findUniqueOrThrow({ where: { id: taskId } })
  return t.state
}

/** Waits until the task's displayed state (get_task_status) is `state`. */
export async function waitForState(c: LegacyClient, taskId: number, state: string, timeoutMs = 20_000) {
  return waitFor(async () => {
    const reply = await c.get('get_task_status', { task_id: taskId })
    const data = reply.body.data as { state?: string } | null
    return data?.state === state ? data : undefined
  }, timeoutMs)
}

export interface OperateRecord {
  operator: string
  operate_type: string
  operate_source: string
  operate_date: string
  node_id: string
  instance_id: number
  project_id: number
}

export async function recordsOf(
  c: LegacyClient,
  taskId: number,
  query: Record<string, string> = {},
): Promise<OperateRecord[]> {
  return ok<OperateRecord[]>(await c.get('get_task_operate_record', { task_id: taskId, ...query }))
}

/** Rows in the tables an API request writes (the engine's own tables move by themselves when a worker runs). */
export async function rowCounts(h: Pick<Harness, 'deps'>) {
  const p = h.deps.db.prisma
  const [tasks, templates, operateRecords] = await Promise.all([
    p.task.count(),
    p.template.count(),
    p.operateRecord.count(),
  ])
  return { tasks, templates, operateRecords }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** A tRPC client of the server at `url` as `id` (app code, secret and token), subscriptions over SSE with the same headers. */
export function clientFor(url: string, id: Pick<Identity, 'appCode' | 'appSecret' | 'token'>) {
  const headers = {
    'x-bk-app-code': id.appCode,
    'x-bk-app-secret': id.appSecret,
    authorization: `Bearer ${id.token}`,
  }
  return createTRPCClient<AppRouter>({
    links: [
      splitLink({
        condition: (op) => op.type === 'subscription',
        true: httpSubscriptionLink({
          url: `${url}/trpc`,
          EventSource,
          eventSourceOptions: {
            fetch: (input, init) => fetch(input, { ...init, headers: { ...init.headers, ...headers } }),
          },
        }),
        false: httpLink({ url: `${url}/trpc`, headers }),
      }),
    ],
  })
}
