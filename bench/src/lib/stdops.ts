/**
 * A bench identity in a fresh stdops database (created with the API's own admin use cases, as
 * `stdops-server admin …` would), and the legacy HTTP calls the bench makes besides the measured
 * ones.
 */
import { createDb } from '@stdops/db'
import * as admin from '../../../apps/api/src/services/admin'
import { SECRET_KEY } from './proc'

export interface Identity {
  appCode: string
  appSecret: string
  username: string
  token: string
  bkBizId: number
  /** The X-Bkapi-Authorization header, as JSON. */
  header: string
}

/** Migrates the database and adds an app, a user with a token, a project and an admin role in it. */
export async function bootstrap(dbUrl: string): Promise<Identity> {
  const db = createDb(dbUrl, { poolSize: 2 })
  try {
    await db.migrate()
    const deps = { db, secretKey: SECRET_KEY, now: Date.now }
    const id = {
      appCode: 'bench',
      appSecret: 'bench-app-secret-0123456789',
      username: 'bench_user',
      token: 'bench-token-0123456789abcdef',
      bkBizId: 4242,
    }
    // Not a trusted app: every operate call authenticates and checks the role, as a real caller's.
    await admin.addApp(deps, id.appCode, { secret: id.appSecret, trusted: false, userSkip: false })
    await admin.addUser(deps, id.username, { token: id.token })
    const project = await admin.addProject(deps, 'bench', id.bkBizId)
    await admin.grant(deps, id.username, project.id, 'admin')
    return {
      ...id,
      header: JSON.stringify({ bk_app_code: id.appCode, bk_app_secret: id.appSecret, bk_token: id.token }),
    }
  } finally {
    await db.close()
  }
}

export interface Envelope<T = unknown> {
  result: boolean
  code: number
  data: T
  message: string
}

export class LegacyClient {
  constructor(
    readonly base: string,
    readonly id: Identity,
  ) {}

  async call<T>(api: string, params: Record<string, unknown>, method: 'GET' | 'POST' = 'POST'): Promise<T> {
    const body = { bk_biz_id: this.id.bkBizId, ...params }
    const qs =
      method === 'GET'
        ? `?${new URLSearchParams(Object.entries(body).map(([k, v]): [string, string] => [k, String(v)])).toString()}`
        : ''
    const res = await fetch(`${this.base}/v2/sops/${api}/${qs}`, {
      method,
      headers: { 'content-type': 'application/json', 'x-bkapi-authorization': this.id.header },
      ...(method === 'POST' ? { body: JSON.stringify(body) } : {}),
    })
    const env = (await res.json()) as Envelope<T>
    if (env.code !== 0)
      throw new Error(`${api} ${JSON.stringify(params).slice(0, 200)}: code ${env.code}: ${env.message}`)
    return env.data
  }

  async createTemplate(name: string, tree: unknown): Promise<number> {
    const d = await this.call<{ template_id: number }>('create_template', { name, pipeline_tree: tree })
    return d.template_id
  }

  async createTask(templateId: number, name: string, tree?: unknown, start = false): Promise<number> {
    const d = await this.call<{ task_id: number }>(start ? 'create_and_start_task' : 'create_task', {
      template_id: templateId,
      name,
      ...(tree === undefined ? {} : { pipeline_tree: tree }),
    })
    return d.task_id
  }

  start(taskId: number) {
    return this.call('start_task', { task_id: taskId })
  }

  operate(taskId: number, action: string) {
    return this.call('operate_task', { task_id: taskId, action })
  }

  status(taskId: number) {
    return this.call<{ state: string; running_nodes?: number; children: Record<string, { state: string }> }>(
      'get_task_status',
      { task_id: taskId },
      'GET',
    )
  }
}

/** Runs `fn` over `items` with at most `limit` at once, keeping the order of results. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, i: number) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array(items.length)
  let next = 0
  const worker = async () => {
    for (;;) {
      const i = next++
      if (i >= items.length) return
      out[i] = await fn(items[i]!, i)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return out
}
