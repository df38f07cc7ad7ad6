import { TASK_ACTIONS, type TaskAction, type TaskState, transitionTask } from '@stdops/core'
import { createTreeBuilder } from '@stdops/core/testing'
import { sql } from '@stdops/db'
import fc from 'fast-check'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { RateLimiter } from '../src/services/rate-limit'
import { authHeader, type Harness, type Identity, makeIdentity, startHarness } from './harness'

/**
 * Property-based fuzzing of every legacy API: whatever the body, query and
 * headers, the reply is HTTP 200 or 4xx with the six-key envelope, never a 5xx, never a stack trace
 * or a file path, and a refused request writes no row (tasks, templates, operate_records,
 * task_events). With valid credentials and with random ones. The harness runs without a worker, so
 * only requests write rows. Runs are bounded so that the file takes well under 30 s.
 */

// ---- the APIs ------------------------------------------------------------------------------------

type Method = 'GET' | 'POST'
type Field =
  | 'task_id'
  | 'action'
  | 'template_id'
  | 'name'
  | 'constants'
  | 'pipeline_tree'
  | 'description'
  | 'callback_url'
  | 'task_id_list'
  | 'include_children_status'
  | 'keyword'
  | 'is_started'
  | 'is_finished'
  | 'executor'
  | 'create_time_start'
  | 'create_time_end'
  | 'offset'
  | 'limit'
  | 'node_id'

const CREATE: Field[] = ['template_id', 'name', 'constants', 'pipeline_tree', 'description', 'callback_url']
const APIS: Record<string, { method: Method; fields: Field[] }> = {
  operate_task: { method: 'POST', fields: ['task_id', 'action'] },
  start_task: { method: 'POST', fields: ['task_id'] },
  create_task: { method: 'POST', fields: CREATE },
  create_and_start_task: { method: 'POST', fields: CREATE },
  get_task_status: { method: 'GET', fields: ['task_id'] },
  get_tasks_status: { method: 'POST', fields: ['task_id_list', 'include_children_status'] },
  get_task_detail: { method: 'GET', fields: ['task_id'] },
  get_task_list: {
    method: 'GET',
    fields: [
      'keyword',
      'is_started',
      'is_finished',
      'executor',
      'template_id',
      'create_time_start',
      'create_time_end',
      'offset',
      'limit',
    ],
  },
  get_task_operate_record: { method: 'GET', fields: ['task_id', 'node_id'] },
  create_template: { method: 'POST', fields: ['name', 'pipeline_tree', 'description'] },
  get_template_list: { method: 'GET', fields: [] },
  get_template_info: { method: 'GET', fields: ['template_id'] },
}
const API_NAMES = Object.keys(APIS)
const REQUIRED: Record<string, Field[]> = {
  operate_task: ['task_id', 'action'],
  start_task: ['task_id'],
  create_task: ['template_id', 'name'],
  create_and_start_task: ['template_id', 'name'],
  create_template: ['name', 'pipeline_tree'],
}

const ENVELOPE_KEYS = ['code', 'data', 'message', 'request_id', 'result', 'trace_id']
const CODES = new Set([0, 1306000, 1306404, 1306405, 1306429, 3540000, 3540400, 3545000, 3599999])

/** What a stack trace, a file path or a driver's error looks like in a message. */
const LEAKS: RegExp[] = [
  /\n\s+at\s/,
  /\bat\s+\S+\s+\(.*:\d+:\d+\)/,
  /\bat\s+(file|node):/,
  /node_modules/,
  /\/work\//,
  /\/(apps|packages)\/\w+\/src\//,
  /\.[cm]?[jt]s:\d+/,
  /Error:/,
  /Traceback/,
  /Prisma/,
  /SQLITE_/,
  /duplicate key|violates|syntax error at|invalid byte sequence/,
]

// ---- arbitraries ---------------------------------------------------------------------------------

const EDGE_STRINGS = [
  '',
  ' ',
  '0',
  '-1',
  '1.5',
  '1e3',
  '0x10',
  'NaN',
  'Infinity',
  'null',
  'undefined',
  'true',
  '9007199254740991',
  '9007199254740992',
  '2147483647',
  '2147483648',
  '00012',
  ' 12',
  '12 ',
  '١٢',
  '\u0000',
  'a\u0000b',
  '%00',
  '../../etc/passwd',
  '${x}',
  '${',
  '{{7*7}}',
  "' OR 1=1 --",
  '"; DROP TABLE tasks; --',
  '<script>alert(1)</script>',
  '__proto__',
  'constructor',
  '\ud800',
  '\udfff\ud800',
  'é'.repeat(60),
  'x'.repeat(101),
  '\n\r\t',
]

/** Any JSON-ish value, with the edge cases of every parser. */
const junk: fc.Arbitrary<unknown> = fc.oneof(
  { arbitrary: fc.constantFrom(...EDGE_STRINGS), weight: 4 },
  { arbitrary: fc.string({ maxLength: 20 }), weight: 2 },
  { arbitrary: fc.string({ unit: 'binary', maxLength: 12 }), weight: 2 },
  { arbitrary: fc.integer(), weight: 2 },
  {
    arbitrary: fc.constantFrom(0, -1, 1, 2 ** 31, 2 ** 53, 2 ** 53 + 2, -(2 ** 53), 1e308, 5e-324, 0.5, -0),
    weight: 2,
  },
  { arbitrary: fc.double(), weight: 1 },
  { arbitrary: fc.boolean(), weight: 1 },
  { arbitrary: fc.constant(null), weight: 1 },
  { arbitrary: fc.jsonValue({ maxDepth: 2 }), weight: 2 },
)

/** Values that pass each field's type, mixed with junk, so that requests get past validation too. */
function fieldArb(field: Field, pools: Pools): fc.Arbitrary<unknown> {
  const taskIds = fc.oneof(
    { arbitrary: fc.constantFrom(...pools.ownTasks), weight: 4 },
    { arbitrary: fc.constantFrom(...pools.ownTasks).map(String), weight: 1 },
    { arbitrary: fc.constantFrom(...pools.foreignTasks), weight: 1 },
    { arbitrary: fc.constantFrom(...FRESH_STATES).map((s) => new Fresh(s)), weight: 3 },
  )
  const templateIds = fc.oneof(
    { arbitrary: fc.constantFrom(...pools.ownTemplates), weight: 4 },
    { arbitrary: fc.constantFrom(...pools.ownTemplates).map(String), weight: 1 },
    { arbitrary: fc.constantFrom(...pools.foreignTemplates), weight: 1 },
  )
  const flag = fc.oneof(fc.boolean(), fc.constantFrom('true', 'false', '1', '0', 'True', 'yes', ''))
  const text = fc.oneof(fc.string({ maxLength: 30 }), fc.string({ unit: 'binary', maxLength: 30 }))
  const mix = (good: fc.Arbitrary<unknown>, goodWeight = 6) =>
    fc.oneof({ arbitrary: good, weight: goodWeight }, { arbitrary: junk, weight: 1 })
  switch (field) {
    case 'task_id':
      return mix(taskIds)
    case 'template_id':
      return mix(templateIds)
    case 'action':
      return mix(
        fc.oneof(
          { arbitrary: fc.constantFrom('start', 'pause', 'resume', 'revoke'), weight: 4 },
          {
            arbitrary: fc.constantFrom(
              'START',
              ' pause',
              'finish',
              'retry',
              'skip',
              'constructor',
              'toString',
              '__proto__',
            ),
            weight: 2,
          },
        ),
      )
    case 'name':
    case 'description':
      return mix(fc.oneof(text, fc.string({ minLength: 95, maxLength: 105 })))
    case 'constants':
      return mix(
        fc.oneof(
          fc.dictionary(
            fc.constantFrom('x', '${x}', 'flag', '${flag}', 'nope', '${nope}', '__proto__'),
            junk,
            { maxKeys: 3 },
          ),
          fc.constant({ '${flag}': { deep: deep(6000) } }),
          fc.constant({ '${flag}': deep(6000) }),
        ),
      )
    case 'pipeline_tree':
      return mix(treeArb(pools), 4)
    case 'callback_url':
      return mix(
        fc.constantFrom(
          'http://127.0.0.1:9/cb',
          'https://example.test/x',
          'http://',
          'ftp://x.y',
          'http://a b',
        ),
      )
    case 'task_id_list':
      return mix(
        fc.oneof(
          fc.array(taskIds, { maxLength: 8 }),
          fc.array(fc.integer({ min: 1, max: 1e6 }), { minLength: 49, maxLength: 52 }),
        ),
      )
    case 'include_children_status':
    case 'is_started':
    case 'is_finished':
      return mix(flag)
    case 'keyword':
    case 'executor':
    case 'node_id':
      return mix(text)
    case 'create_time_start':
    case 'create_time_end':
      return mix(
        fc.constantFrom(
          '2020-01-01',
          '2020-01-01 00:00:00',
          '2099-12-31 23:59:59',
          '2020-02-30 00:00:00',
          '2020-13-01',
          '1970-01-01 00:00:00',
        ),
      )
    case 'offset':
      return mix(
        fc.oneof(
          fc.integer({ min: -2, max: 300 }),
          fc.constantFrom('0', '5', '9007199254740991', '9007199254740992'),
        ),
      )
    case 'limit':
      return mix(fc.oneof(fc.integer({ min: -1, max: 250 }), fc.constantFrom('1', '200', '201', '0')))
  }
}

/**
 * `[[[…]]]` nested `n` deep: a parser's, a renderer's or JSON.stringify's recursion (V8's
 * JSON.stringify gives up at about 4000 levels). Kept as a marker and spliced into the request text,
 * because the test itself cannot JSON.stringify it either.
 */
class Deep {
  constructor(readonly n: number) {}
  toJSON() {
    return `__DEEP_${this.n}__`
  }
  toString() {
    return `${'['.repeat(this.n)}"bottom"${']'.repeat(this.n)}`
  }
}
const deep = (n: number) => new Deep(n)
const spliceDeep = (json: string) =>
  json.replace(/"__DEEP_(\d+)__"/g, (_, n: string) => new Deep(Number(n)).toString())

/** A valid tree with gateways, conditions and constants, then mutated at a few random places. */
function baseTree() {
  const b = createTreeBuilder()
  b.constant('flag', 'a')
  b.constant('x', '${flag}-x')
  const fork = b.gateway('ParallelGateway')
  const join = b.gateway('ConvergeGateway')
  const choice = b.gateway('ExclusiveGateway')
  const merge = b.gateway('ConvergeGateway')
  const one = b.activity('set_variables', { data: { variables: { hook: false, value: { x: '${x}' } } } })
  const two = b.activity('sleep_timer', { data: { bk_timing: { hook: false, value: '0' } } })
  const three = b.activity('set_variables', { data: { variables: { hook: false, value: {} } } })
  const four = b.activity('fail', { data: { message: { hook: false, value: 'no' } }, errorIgnorable: true })
  b.flow(b.startId, fork)
  b.chain(fork, one, join)
  b.chain(fork, two, join)
  b.flow(join, choice)
  b.flow(choice, three, { condition: '${flag} == "a" and ${x} != "z"' })
  b.flow(choice, four, { isDefault: true })
  b.flow(three, merge)
  b.flow(four, merge)
  b.flow(merge, b.endId)
  return b.build() as unknown as Record<string, unknown>
}

/** Every path (list of keys) into a JSON value. */
function paths(v: unknown, prefix: string[] = [], out: string[][] = []): string[][] {
  if (v && typeof v === 'object') {
    for (const k of Object.keys(v)) {
      const p = [...prefix, k]
      out.push(p)
      paths((v as Record<string, unknown>)[k], p, out)
    }
  }
  return out
}

function mutate(
  tree: unknown,
  edits: Array<{ at: number; op: 'delete' | 'set' | 'dup'; value: unknown }>,
): unknown {
  const copy = JSON.parse(JSON.stringify(tree)) as Record<string, unknown>
  for (const e of edits) {
    const all = paths(copy)
    if (all.length === 0) break
    const path = all[e.at % all.length]!
    let parent: Record<string, unknown> = copy
    for (const k of path.slice(0, -1)) parent = parent[k] as Record<string, unknown>
    const key = path.at(-1)!
    if (e.op === 'delete') {
      if (Array.isArray(parent)) parent.splice(Number(key), 1)
      else delete parent[key]
    } else if (e.op === 'set') parent[key] = e.value
    else parent[`${key}_copy`] = parent[key]
  }
  return copy
}

function treeArb(pools: Pools): fc.Arbitrary<unknown> {
  const edit = fc.record({
    at: fc.nat(),
    op: fc.constantFrom('delete' as const, 'set' as const, 'dup' as const),
    value: junk,
  })
  return fc.oneof(
    { arbitrary: fc.constant(pools.tree), weight: 1 },
    {
      arbitrary: fc.array(edit, { minLength: 1, maxLength: 3 }).map((edits) => mutate(pools.tree, edits)),
      weight: 6,
    },
    {
      arbitrary: fc.constant({
        ...pools.tree,
        constants: { '${flag}': { key: '${flag}', value: deep(6000) } },
      }),
      weight: 1,
    },
    { arbitrary: fc.constant({ ...pools.tree, location: deep(6000) }), weight: 1 },
    { arbitrary: fc.constant({ deep: deep(20_000) }), weight: 1 },
  )
}

/** A task created just before the request, in the given state (materialised by the test). */
const ABSENT = Symbol('absent')

class Fresh {
  constructor(readonly state: 'CREATED' | 'RUNNING' | 'SUSPENDED' | 'REVOKED') {}
  toJSON() {
    return `<fresh ${this.state} task>`
  }
}
const FRESH_STATES = ['CREATED', 'RUNNING', 'SUSPENDED', 'REVOKED'] as const

interface Pools {
  ownTasks: number[]
  foreignTasks: number[]
  ownTemplates: number[]
  foreignTemplates: number[]
  tree: Record<string, unknown>
}

/** Strings that survive as HTTP header values (Node's parser refuses control characters and DEL). */
const headerChar = fc
  .oneof(
    { arbitrary: fc.integer({ min: 0x20, max: 0x7e }), weight: 8 },
    { arbitrary: fc.integer({ min: 0x80, max: 0xff }), weight: 1 },
    { arbitrary: fc.constant(0x09), weight: 1 },
  )
  .map((c) => String.fromCharCode(c))
const headerString = (maxLength = 60) => fc.string({ unit: headerChar, maxLength })
/** JSON with everything beyond ASCII escaped, so that it is a legal header value. */
const asciiJson = (v: unknown) =>
  (JSON.stringify(v) ?? 'null').replace(
    /[\u007f-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  )

// ---- requests ----------------------------------------------------------------------------------

interface Sent {
  api: string
  method: string
  url: string
  headers: Record<string, string>
  body?: string | Uint8Array
  /** Every string the request carried, for the leak check. */
  inputText: string
}

interface Got {
  status: number
  headers: Headers
  text: string
  body: Record<string, unknown> | null
}

async function send(r: Sent): Promise<Got> {
  const res = await fetch(r.url, {
    method: r.method,
    headers: r.headers,
    ...(r.body === undefined ? {} : { body: r.body }),
  })
  const text = await res.text()
  let body: Record<string, unknown> | null = null
  try {
    const parsed = JSON.parse(text) as unknown
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed))
      body = parsed as Record<string, unknown>
  } catch {}
  return { status: res.status, headers: res.headers, text, body }
}

function stringsOf(v: unknown, out: string[] = []): string[] {
  if (typeof v === 'string') out.push(v)
  else if (v instanceof Fresh) out.push(v.state)
  else if (v instanceof Deep) out.push('deep')
  else if (v && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) {
      out.push(k)
      stringsOf(x, out)
    }
  } else if (v !== undefined) out.push(String(v))
  return out
}

/** A query string from params: arrays become repeated keys, objects their JSON, the rest their text. */
function queryString(params: Record<string, unknown>): string {
  const q = new URLSearchParams()
  for (const [k, v] of Object.entries(params)) {
    if (Array.isArray(v))
      for (const x of v) q.append(k, typeof x === 'string' ? x : (JSON.stringify(x) ?? ''))
    else if (v instanceof Deep) q.append(k, v.toString())
    else if (v !== null && typeof v === 'object') q.append(k, spliceDeep(JSON.stringify(v)))
    else q.append(k, String(v))
  }
  const s = q.toString()
  return s ? `?${s}` : ''
}

// ---- the checks --------------------------------------------------------------------------------

interface Counts {
  tasks: number
  templates: number
  records: number
  events: number
}

function checkEnvelope(sent: Sent, got: Got) {
  const shown = `${sent.method} ${sent.url}\nheaders ${JSON.stringify(sent.headers)}\nbody ${typeof sent.body === 'string' ? sent.body.slice(0, 400) : sent.body ? '<bytes>' : ''}\n→ ${got.status} ${got.text.slice(0, 400)}`
  expect(got.status >= 200 && got.status < 500, shown).toBe(true)
  expect(got.status === 200 || got.status >= 400, shown).toBe(true)
  expect(got.body, shown).not.toBeNull()
  const body = got.body!
  const extra = Object.keys(body).filter((k) => !ENVELOPE_KEYS.includes(k))
  expect(
    ENVELOPE_KEYS.every((k) => k in body),
    shown,
  ).toBe(true)
  // keys beside the six, on success only: get_task_list's count, start_task's task_url (as bk-sops sends it)
  expect(
    extra.every((k) => k === 'count' || k === 'task_url') && (extra.length === 0 || body.result === true),
    shown,
  ).toBe(true)
  expect(typeof body.result, shown).toBe('boolean')
  expect(typeof body.code, shown).toBe('number')
  expect(CODES.has(body.code as number), shown).toBe(true)
  expect(body.result, shown).toBe(body.code === 0)
  expect(typeof body.message, shown).toBe('string')
  if (body.result === false) expect(body.data, shown).toBeNull()
  expect(body.request_id, shown).toMatch(/^[A-Za-z0-9._-]{1,64}$/)
  expect(body.trace_id, shown).toMatch(/^[0-9a-f]{32}$/)
  expect(got.headers.get('x-request-id'), shown).toBe(body.request_id)
  expect(got.headers.get('sops-trace-id'), shown).toBe(body.trace_id)
  // the status agrees with the code
  const statusOf: Record<number, number[]> = {
    1306404: [404],
    1306405: [405],
    1306429: [429],
    3540000: [200, 413],
  }
  expect(statusOf[body.code as number] ?? [200], shown).toContain(got.status)
  // 3599999 is a permission denial here; an internal error is a bug
  if (body.code === 3599999)
    expect(body.message, shown).toMatch(/^permission denied: action \w+ on project\(\d+\) for user /)
  // no stack trace, file path or driver error, unless the request itself carried that text (echoed names)
  const message = body.message as string
  for (const leak of LEAKS) {
    if (!leak.test(sent.inputText)) expect(leak.test(message), `${leak} in ${shown}`).toBe(false)
  }
  expect(got.text, shown).not.toMatch(/"stack"\s*:/)
  return body
}

/** With FUZZ_STATS=1, the file prints how often each (api, code, message) was seen: is the fuzzer getting past validation? */
const STATS = new Map<string, number>()

/**
 * `numRuns`, cut short after `ms` on a loaded machine so that the whole file stays under 30 s: the
 * runs after the deadline return at once (see timeUp). Not fast-check's interruptAfterTimeLimit,
 * which abandons the run in flight, so that its request would still be writing while the next
 * property counts rows.
 */
let deadline = Number.POSITIVE_INFINITY
const runs = (numRuns: number, ms: number) => {
  deadline = Date.now() + ms
  return { numRuns }
}
const timeUp = () => Date.now() > deadline

describe('legacy API fuzzing (fast-check)', () => {
  let h: Harness
  let id: Identity
  let other: Identity
  let pools: Pools
  const validTokens = new Set<string>()
  const apps = new Map<string, string>()

  async function counts(): Promise<Counts> {
    const [row] = await h.deps.db.query<Record<string, number | string>>(sql`SELECT
      (SELECT COUNT(*) FROM tasks) AS tasks, (SELECT COUNT(*) FROM templates) AS templates,
      (SELECT COUNT(*) FROM operate_records) AS records, (SELECT COUNT(*) FROM task_events) AS events`)
    return {
      tasks: Number(row!.tasks),
      templates: Number(row!.templates),
      records: Number(row!.records),
      events: Number(row!.events),
    }
  }

  async function admin(api: string, body: Record<string, unknown>) {
    const got = await send({
      api,
      method: 'POST',
      url: `${h.url}/v2/sops/${api}/`,
      headers: { 'content-type': 'application/json', ...authHeader(id) },
      body: JSON.stringify({ bk_biz_id: id.bkBizId, ...body }),
      inputText: '',
    })
    if (got.body?.code !== 0) throw new Error(`setup ${api} failed: ${got.text}`)
    return got.body.data as Record<string, unknown>
  }

  async function taskIn(state: Fresh['state'], as: Identity = id): Promise<number> {
    const got = await send({
      api: 'create_task',
      method: 'POST',
      url: `${h.url}/v2/sops/create_task/`,
      headers: authHeader(as),
      body: JSON.stringify({
        bk_biz_id: as.bkBizId,
        template_id: as === id ? pools.ownTemplates[0] : pools.foreignTemplates[0],
        name: 'pool',
      }),
      inputText: '',
    })
    if (got.body?.code !== 0) throw new Error(`setup create_task failed: ${got.text}`)
    const taskId = (got.body.data as { task_id: number }).task_id
    const ops = {
      CREATED: [],
      RUNNING: ['start'],
      SUSPENDED: ['start', 'pause'],
      REVOKED: ['start', 'revoke'],
    }[state]
    for (const action of ops) {
      const r = await send({
        api: 'operate_task',
        method: 'POST',
        url: `${h.url}/v2/sops/operate_task/`,
        headers: authHeader(as),
        body: JSON.stringify({ bk_biz_id: as.bkBizId, task_id: taskId, action }),
        inputText: '',
      })
      if (r.body?.code !== 0) throw new Error(`setup ${action} failed: ${r.text}`)
    }
    return taskId
  }

  /** Replaces Fresh markers by new tasks (before the row counts are taken). */
  async function materialize(v: unknown): Promise<unknown> {
    if (v instanceof Fresh) return taskIn(v.state)
    if (Array.isArray(v)) return Promise.all(v.map(materialize))
    return v
  }

  async function taskState(taskId: number): Promise<TaskState | null> {
    const [row] = await h.deps.db.query<{ state: TaskState }>(
      sql`SELECT state FROM tasks WHERE id = ${taskId} AND project_id = ${id.projectId}`,
    )
    return row?.state ?? null
  }

  /** The request for `api` with `params`, credentials as given (header value, or fields merged into params). */
  function build(
    api: string,
    method: string,
    params: Record<string, unknown>,
    opts: {
      header?: string | null
      prefix?: string
      slash?: boolean
      contentType?: string | null
      extraHeaders?: Record<string, string>
    } = {},
  ): Sent {
    const headers: Record<string, string> = { ...opts.extraHeaders }
    if (opts.header !== null && opts.header !== undefined) headers['X-Bkapi-Authorization'] = opts.header
    const path = `${h.url}${opts.prefix ?? '/v2/sops'}/${api}${opts.slash === false ? '' : '/'}`
    const inputText = [...stringsOf(params), ...Object.values(headers), api].join('\n')
    if (method === 'GET') return { api, method, url: `${path}${queryString(params)}`, headers, inputText }
    if (opts.contentType !== null) headers['content-type'] = opts.contentType ?? 'application/json'
    return { api, method, url: path, headers, body: spliceDeep(JSON.stringify(params)), inputText }
  }

  /** Sends, checks the envelope, and checks that a refusal wrote nothing. */
  async function exchange(sent: Sent): Promise<Record<string, unknown>> {
    const before = await counts()
    const got = await send(sent)
    const body = checkEnvelope(sent, got)
    if (process.env.FUZZ_STATS) {
      const k = `${sent.api} ${body.code} ${String(body.message).slice(0, 60)}`
      STATS.set(k, (STATS.get(k) ?? 0) + 1)
    }
    if (body.result === false)
      expect(await counts(), `a refused request wrote rows: ${sent.url} ${got.text}`).toEqual(before)
    return body
  }

  beforeAll(async () => {
    h = await startHarness({ worker: false })
    id = await makeIdentity(h.deps, { role: 'admin' })
    other = await makeIdentity(h.deps, { role: 'admin' })
    for (const x of [id, other]) {
      validTokens.add(x.token)
      apps.set(x.appCode, x.appSecret)
    }
    const tree = baseTree()
    pools = { ownTasks: [], foreignTasks: [], ownTemplates: [], foreignTemplates: [], tree }
    pools.ownTemplates.push(
      (await admin('create_template', { name: 'fuzz', pipeline_tree: tree })).template_id as number,
    )
    const foreign = await send({
      api: 'create_template',
      method: 'POST',
      url: `${h.url}/v2/sops/create_template/`,
      headers: authHeader(other),
      body: JSON.stringify({ bk_biz_id: other.bkBizId, name: 'theirs', pipeline_tree: tree }),
      inputText: '',
    })
    pools.foreignTemplates.push((foreign.body!.data as { template_id: number }).template_id)
    for (const state of FRESH_STATES) pools.ownTasks.push(await taskIn(state))
    pools.foreignTasks.push(await taskIn('RUNNING', other), await taskIn('CREATED', other))
  })

  afterAll(async () => {
    if (process.env.FUZZ_STATS)
      console.log(
        [...STATS]
          .sort((x, y) => y[1] - x[1])
          .map(([k, n]) => `${n}\t${k}`)
          .join('\n'),
      )
    await h?.close()
  })

  beforeEach(() => {
    h.deps.authFailures = new RateLimiter()
  })

  /** Params for one API: each of its fields present or not, mostly well-typed, sometimes junk, plus stray keys. */
  const paramsArb = (api: string, opts: { wellFormed?: boolean } = {}) => {
    const spec = APIS[api]!
    const model: Record<string, fc.Arbitrary<unknown>> = {
      bk_biz_id: fc.oneof(
        { arbitrary: fc.constant(() => id.bkBizId), weight: 8 },
        { arbitrary: fc.constant(() => String(id.bkBizId)), weight: 1 },
        { arbitrary: fc.constant(() => other.bkBizId), weight: 1 },
        { arbitrary: junk.map((v) => () => v), weight: 1 },
      ),
      scope: fc.constantFrom('cmdb_biz', 'project', 'PROJECT', '', 'biz'),
    }
    for (const f of spec.fields) model[f] = fieldArb(f, pools)
    // each field is present five times in six; an absent one is ABSENT, dropped below
    const present: Record<string, fc.Arbitrary<unknown>> = {}
    for (const [k, arb] of Object.entries(model)) {
      // well-formed: the fields an API needs are always there, the optional ones now and then
      const required = k === 'bk_biz_id' || (REQUIRED[api] ?? []).includes(k as Field)
      present[k] = opts.wellFormed
        ? required
          ? arb
          : fc.oneof({ arbitrary: fc.constant(ABSENT), weight: 3 }, { arbitrary: arb, weight: 1 })
        : fc.option(arb, { freq: 6, nil: ABSENT })
    }
    return fc
      .tuple(
        fc.record(present),
        fc.float({ min: 0, max: 1, noNaN: true }),
        fc.dictionary(fc.string({ maxLength: 10 }), junk, { maxKeys: opts.wellFormed ? 1 : 2 }),
      )
      .map(([record, keepScope, stray]) => {
        const p: Record<string, unknown> = { ...stray }
        for (const [k, v] of Object.entries(record)) {
          if (v === ABSENT || (k === 'scope' && keepScope < 0.8)) continue
          p[k] = typeof v === 'function' ? (v as () => unknown)() : v
        }
        return p
      })
  }

  const anyApi = fc.constantFrom(...API_NAMES)

  /** One request with valid credentials: the envelope, no write on refusal, and operate_task exactly as the state table says. */
  async function validCredentialsRun(
    [api, raw]: [string, Record<string, unknown>],
    prefix: string,
    slash: boolean,
  ) {
    if (timeUp()) return
    const params: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(raw)) params[k] = await materialize(v)
    const sent = build(api, APIS[api]!.method, params, {
      header: authHeader(id)['X-Bkapi-Authorization']!,
      prefix,
      slash,
    })
    const target =
      api === 'operate_task' &&
      params.bk_biz_id === id.bkBizId &&
      Number.isInteger(params.task_id) &&
      (params.task_id as number) >= 1 &&
      (params.task_id as number) < 2 ** 31
        ? await taskState(params.task_id as number)
        : null
    const body = await exchange(sent)
    expect([1306000, 1306429], 'valid credentials were refused').not.toContain(body.code)
    if (target !== null && (params.scope === undefined || params.scope === 'cmdb_biz')) {
      const action = params.action
      if (action === undefined || typeof action === 'string') {
        // The four actions go through core's transition; anything else is an invalid command
        const t = TASK_ACTIONS.includes(action as TaskAction)
          ? transitionTask(target, action as TaskAction)
          : { ok: false as const, message: 'task command is invalid' }
        expect(
          { code: body.code, message: body.message },
          `operate_task ${String(action)} on ${target}`,
        ).toEqual(t.ok ? { code: 0, message: 'success' } : { code: 3545000, message: t.message })
      }
    }
  }

  const prefixArb = fc.constantFrom('/v2/sops', '/api/c/compapi/v2/sops')

  it('with valid credentials: every API answers any body or query with 200/4xx and the envelope; refusals write nothing', async () => {
    await fc.assert(
      fc.asyncProperty(
        anyApi.chain((api) => fc.tuple(fc.constant(api), paramsArb(api))),
        prefixArb,
        fc.boolean(),
        validCredentialsRun,
      ),
      runs(360, 7000),
    )
  })

  it('with valid credentials, the writing APIs (create, start, operate, create_template) on mostly well-formed input', async () => {
    const writers = fc.constantFrom(
      'operate_task',
      'start_task',
      'create_task',
      'create_and_start_task',
      'create_template',
    )
    await fc.assert(
      fc.asyncProperty(
        writers.chain((api) => fc.tuple(fc.constant(api), paramsArb(api, { wellFormed: true }))),
        prefixArb,
        fc.boolean(),
        validCredentialsRun,
      ),
      runs(240, 6000),
    )
  })

  /** What authentication should conclude from a parsed credentials object, given the known apps and tokens. */
  const shouldAuthenticate = (source: unknown): boolean => {
    if (!source || typeof source !== 'object' || Array.isArray(source)) return false
    const s = source as Record<string, unknown>
    const str = (v: unknown) => (typeof v === 'string' && v.length > 0 ? v : undefined)
    const code = str(s.bk_app_code) ?? str(s.app_code)
    const secret = str(s.bk_app_secret) ?? str(s.app_secret)
    const token = str(s.bk_token)
    return (
      code !== undefined &&
      Object.hasOwn(Object.fromEntries(apps), code) &&
      apps.get(code) === secret &&
      token !== undefined &&
      validTokens.has(token)
    )
  }

  /** Credential objects: each key from the right value, another identity's, junk or absent, under its name or alias. */
  const credsArb = () => {
    const pick = (good: () => string, otherGood: () => string) =>
      fc
        .oneof(
          { arbitrary: fc.constant('good'), weight: 5 },
          { arbitrary: fc.constant('other'), weight: 2 },
          { arbitrary: junk.map((v) => ({ junk: v })), weight: 2 },
        )
        .map((c) => (c === 'good' ? good() : c === 'other' ? otherGood() : c.junk))
    return fc
      .record(
        {
          bk_app_code: pick(
            () => id.appCode,
            () => other.appCode,
          ),
          app_code: pick(
            () => id.appCode,
            () => other.appCode,
          ),
          bk_app_secret: pick(
            () => id.appSecret,
            () => other.appSecret,
          ),
          app_secret: pick(
            () => id.appSecret,
            () => other.appSecret,
          ),
          bk_token: pick(
            () => id.token,
            () => other.token,
          ),
          bk_username: pick(
            () => id.username,
            () => other.username,
          ),
          username: pick(
            () => id.username,
            () => other.username,
          ),
        },
        { requiredKeys: [] },
      )
      .map((r) => r as Record<string, unknown>)
  }

  const headerValueArb = () =>
    fc.oneof(
      { arbitrary: credsArb().map((c) => ({ value: asciiJson(c), parsed: c as unknown })), weight: 6 },
      {
        arbitrary: fc.jsonValue({ maxDepth: 2 }).map((v) => ({ value: asciiJson(v), parsed: v as unknown })),
        weight: 2,
      },
      {
        arbitrary: headerString().map((s) => {
          let parsed: unknown = null
          try {
            parsed = JSON.parse(s.trim())
          } catch {}
          return { value: s, parsed }
        }),
        weight: 2,
      },
    )

  it('with random X-Bkapi-Authorization values: authentication succeeds exactly for the right app, secret and token; refusals write nothing', async () => {
    await fc.assert(
      fc.asyncProperty(
        anyApi.chain((api) => fc.tuple(fc.constant(api), paramsArb(api))),
        headerValueArb(),
        async ([api, raw], header) => {
          if (timeUp()) return
          const params: Record<string, unknown> = {}
          for (const [k, v] of Object.entries(raw)) params[k] = await materialize(v)
          // an empty header counts as absent; a header of blanks is trimmed to empty on the way
          const value = header.value.trim() === '' ? 'x' : header.value
          const parsed = value === 'x' ? null : header.parsed
          const body = await exchange(build(api, APIS[api]!.method, params, { header: value }))
          const authenticated = ![1306000, 1306429].includes(body.code as number)
          expect(authenticated, `header ${value} → ${JSON.stringify(body)}`).toBe(shouldAuthenticate(parsed))
        },
      ),
      runs(220, 4500),
    )
  })

  it('with credentials in the body or query (no header): the same rule, the same envelope', async () => {
    await fc.assert(
      fc.asyncProperty(
        anyApi.chain((api) => fc.tuple(fc.constant(api), paramsArb(api))),
        credsArb(),
        async ([api, raw], creds) => {
          if (timeUp()) return
          const params: Record<string, unknown> = { ...raw }
          for (const [k, v] of Object.entries(params)) params[k] = await materialize(v)
          Object.assign(params, creds)
          const method = APIS[api]!.method
          const body = await exchange(build(api, method, params))
          const authenticated = ![1306000, 1306429].includes(body.code as number)
          // GET credentials arrive as query text: what was not a string becomes one on the way
          const seen =
            method === 'GET'
              ? Object.fromEntries(
                  Object.entries(creds).map(([k, v]) => [
                    k,
                    Array.isArray(v)
                      ? v.length === 1
                        ? typeof v[0] === 'string'
                          ? v[0]
                          : JSON.stringify(v[0])
                        : v
                      : v !== null && typeof v === 'object'
                        ? JSON.stringify(v)
                        : String(v),
                  ]),
                )
              : creds
          expect(authenticated, `${api} creds ${JSON.stringify(creds)} → ${JSON.stringify(body)}`).toBe(
            shouldAuthenticate(seen),
          )
        },
      ),
      runs(120, 3000),
    )
  })

  it('X-Request-Id and traceparent: kept when well-formed, replaced otherwise; never an error', async () => {
    const hex = (n: number) =>
      fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: n, maxLength: n })
    const traceparent = fc.oneof(
      fc.tuple(hex(2), hex(32), hex(16), hex(2)).map(([v, t, s, f]) => `${v}-${t}-${s}-${f}`),
      fc.constant('00-00000000000000000000000000000000-0000000000000001-01'),
      fc.constant('00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01'),
      headerString(80),
    )
    const requestId = fc.oneof(
      fc.stringMatching(/^[A-Za-z0-9._-]{1,64}$/),
      fc.stringMatching(/^[A-Za-z0-9._-]{65,70}$/),
      headerString(80),
    )
    await fc.assert(
      fc.asyncProperty(anyApi, fc.option(requestId), fc.option(traceparent), async (api, rid, tp) => {
        if (timeUp()) return
        const extraHeaders: Record<string, string> = {}
        if (rid !== null) extraHeaders['X-Request-Id'] = rid
        if (tp !== null) extraHeaders.traceparent = tp
        const method = APIS[api]!.method
        const params = {
          bk_biz_id: id.bkBizId,
          task_id: pools.ownTasks[0]!,
          template_id: pools.ownTemplates[0]!,
        }
        const body = await exchange(
          build(api, method, params, { header: authHeader(id)['X-Bkapi-Authorization']!, extraHeaders }),
        )
        const sentRid = rid?.trim()
        if (sentRid !== undefined && /^[A-Za-z0-9._-]{1,64}$/.test(sentRid))
          expect(body.request_id).toBe(sentRid)
        else expect(body.request_id).toMatch(/^[0-9a-f]{32}$/)
        const m = tp === null ? null : /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/.exec(tp.trim())
        if (m && m[1] !== '0'.repeat(32)) expect(body.trace_id).toBe(m[1])
        else if (tp !== null) expect(body.trace_id).not.toBe('0'.repeat(32))
      }),
      runs(100, 2000),
    )
  })

  it('any Content-Type and any raw body on the POST APIs: the envelope, and JSON objects only', async () => {
    const postApis = API_NAMES.filter((n) => APIS[n]!.method === 'POST')
    const contentType = fc.oneof(
      fc.constantFrom(
        null,
        'application/json',
        'application/json; charset=utf-8',
        'application/json; charset=latin1',
        'text/plain',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=xyz',
        'application/xml',
        '*/*',
        '',
        'application/json; charset=',
        ';;;',
      ),
      headerString(40),
    )
    const rawBody = fc.oneof(
      { arbitrary: fc.string({ maxLength: 200 }), weight: 2 },
      { arbitrary: fc.json({ maxDepth: 3 }), weight: 2 },
      { arbitrary: fc.uint8Array({ maxLength: 200 }), weight: 2 },
      {
        arbitrary: fc.constantFrom(
          '',
          ' ',
          '{}',
          '[]',
          'null',
          '"{}"',
          '{"bk_biz_id": 1,}',
          '{"bk_biz_id": 1} {"x": 2}',
          '\ufeff{"bk_biz_id": 1}',
          '{"__proto__": {"bk_biz_id": 1}}',
          '{"constructor": {"prototype": {"admin": true}}}',
          `${'['.repeat(100_000)}${']'.repeat(100_000)}`,
          `{"a":${'{"a":'.repeat(50_000)}1${'}'.repeat(50_000)}}`,
          'bk_biz_id=1&task_id=2',
        ),
        weight: 2,
      },
      {
        arbitrary: paramsArb('create_task').map((p) =>
          JSON.stringify(Object.fromEntries(Object.entries(p).filter(([, v]) => !(v instanceof Fresh)))),
        ),
        weight: 2,
      },
    )
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...postApis),
        contentType,
        rawBody,
        fc.boolean(),
        async (api, ct, raw, withAuth) => {
          if (timeUp()) return
          const headers: Record<string, string> = withAuth ? { ...authHeader(id) } : {}
          if (ct !== null) headers['content-type'] = ct
          const inputText = [
            typeof raw === 'string' ? raw : Buffer.from(raw).toString('latin1'),
            ...Object.values(headers),
          ].join('\n')
          const body = await exchange({
            api,
            method: 'POST',
            url: `${h.url}/v2/sops/${api}/`,
            headers,
            body: raw,
            inputText,
          })
          let parsed: unknown
          try {
            parsed = JSON.parse(typeof raw === 'string' ? raw : Buffer.from(raw).toString('utf8'))
          } catch {}
          if (withAuth && !(parsed && typeof parsed === 'object' && !Array.isArray(parsed))) {
            expect(body, `${api} ${ct} ${String(raw).slice(0, 100)}`).toMatchObject({
              code: 3540000,
              message: 'invalid param format',
            })
          }
        },
      ),
      runs(140, 2500),
    )
  })

  it('unknown APIs and wrong methods: 404 / 405 with the envelope, nothing written', async () => {
    const segment = fc.oneof(
      fc.stringMatching(/^[A-Za-z0-9_~-]{1,40}$/),
      fc.string({ maxLength: 30 }).map(encodeURIComponent),
      fc.constantFrom('OPERATE_NODE', 'node_callbacks', 'OPERATE_TASK', 'operate_task%00', 'x'.repeat(300)),
    )
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          segment
            .filter(
              (s) =>
                !API_NAMES.includes(s) &&
                !['.', '..', '%2e', '%2E', '.%2e', '%2e.', '%2e%2e', '%2E%2E'].includes(s),
            )
            .map((s) => ({ api: s, method: 'GET' })),
          fc
            .tuple(anyApi, fc.constantFrom('PUT', 'PATCH', 'DELETE', 'GET', 'POST'))
            .map(([api, method]) => ({ api, method })),
        ),
        fc.boolean(),
        async ({ api, method }, withAuth) => {
          if (timeUp()) return
          const headers: Record<string, string> = withAuth ? { ...authHeader(id) } : {}
          const known = API_NAMES.includes(api)
          const body = await exchange({
            api,
            method,
            url: `${h.url}/v2/sops/${api}/`,
            headers,
            ...(method === 'GET'
              ? {}
              : { body: JSON.stringify({ bk_biz_id: id.bkBizId, task_id: pools.ownTasks[1] }) }),
            inputText: decodeURIComponentSafe(api),
          })
          if (!known) expect(body.code).toBe(1306404)
          else if (method !== APIS[api]!.method) expect(body.code).toBe(1306405)
        },
      ),
      runs(80, 1500),
    )
  })
})

function decodeURIComponentSafe(s: string) {
  try {
    return `${s}\n${decodeURIComponent(s)}`
  } catch {
    return s
  }
}
