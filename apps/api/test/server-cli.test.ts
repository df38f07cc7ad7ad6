import { execFile, spawn } from 'node:child_process'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { createTestDatabaseUrl } from '@stdops/db/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { quickTree } from './fixtures'

const BIN = join(resolve(dirname(fileURLToPath(import.meta.url)), '..'), 'bin/stdops-server.mjs')
const run = promisify(execFile)

let dbUrl: string
let drop: () => Promise<void>
const env = () => ({
  ...process.env,
  DATABASE_URL: dbUrl,
  STDOPS_SECRET_KEY: 'server-cli-test-key-0123456789',
  LOG_LEVEL: 'warn',
})

/** Runs `stdops-server <args>`; resolves with exit code, stdout and stderr (never rejects). */
async function server(...args: string[]) {
  try {
    const r = await run(process.execPath, [BIN, ...args], { env: env() })
    return { code: 0, stdout: r.stdout, stderr: r.stderr }
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string }
    return { code: err.code, stdout: err.stdout, stderr: err.stderr }
  }
}

beforeAll(async () => {
  ;({ url: dbUrl, drop } = await createTestDatabaseUrl())
})
afterAll(async () => {
  await drop()
})

describe('stdops-server admin commands', () => {
  it('adds an app, prints a generated secret once, and is safe to repeat', async () => {
    const first = await server('admin', 'app', 'add', 'ops-app')
    expect(first.code).toBe(0)
    expect(first.stdout).toMatch(/^app ops-app added\nsecret: \S{20,}\n$/)
    const again = await server('admin', 'app', 'add', 'ops-app', '--trusted')
    expect(again).toMatchObject({ code: 0, stdout: 'app ops-app updated\n' })
  })

  it('adds a user with a generated token, then reports it exists without issuing another', async () => {
    const first = await server('admin', 'user', 'add', 'alice')
    expect(first.code).toBe(0)
    expect(first.stdout).toMatch(/^user alice added\ntoken: \S{20,}\n$/)
    expect(await server('admin', 'user', 'add', 'alice')).toMatchObject({
      code: 0,
      stdout: 'user alice exists\n',
    })
  })

  it('adds a project, printing its own id, and returns the same id for the same bk_biz_id', async () => {
    const first = await server('admin', 'project', 'add', '--name', 'Ops', '--biz-id', '31')
    expect(first.code).toBe(0)
    const id = first.stdout.trim()
    expect(id).toMatch(/^\d+$/)
    expect((await server('admin', 'project', 'add', '--name', 'Ops', '--biz-id', '31')).stdout.trim()).toBe(
      id,
    )
    const grant = await server('admin', 'grant', 'alice', '--project', id, '--role', 'operator')
    expect(grant).toMatchObject({ code: 0, stdout: `alice is operator in project ${id}\n` })
    expect((await server('admin', 'grant', 'alice', '--project', id, '--role', 'operator')).code).toBe(0)
  })

  it.each([
    [
      ['admin', 'grant', 'alice', '--project', '1', '--role', 'owner'],
      /--role must be one of viewer, operator, admin/,
    ],
    [['admin', 'grant', 'nobody', '--project', '1', '--role', 'viewer'], /no such user: nobody/],
    [['admin', 'grant', 'alice', '--project', '999999', '--role', 'viewer'], /no such project id: 999999/],
    [['admin', 'project', 'add', '--name', 'X', '--biz-id', 'abc'], /--biz-id must be a positive integer/],
    [['admin', 'project', 'add', '--biz-id', '5'], /required option '--name <name>'/],
    [['admin', 'app', 'add', 'bad code!'], /app code must be 1-64 characters/],
    [['admin', 'app', 'add', 'short', '--secret', 'tiny'], /--secret must be at least 16 characters/],
    [['admin', 'token', 'add', 'alice', '--expires-in', 'soon'], /expected a duration/],
    [['admin', 'token', 'revoke', 'never-issued-token-xyz'], /no such token/],
    [['admin', 'frobnicate'], /unknown command 'frobnicate'/],
  ])('refuses %j with a one-line reason and a non-zero exit', async (args, reason) => {
    const r = await server(...args)
    expect(r.code).not.toBe(0)
    expect(r.stdout).toBe('')
    expect(r.stderr).toMatch(reason)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
  })

  it('adds a common template from a tree file (or a template as get_template_info answers it), printing its id', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'stdops-common-'))
    const tree = quickTree().tree
    await writeFile(join(dir, 'tree.json'), JSON.stringify(tree))
    await writeFile(join(dir, 'template.json'), JSON.stringify({ name: 'x', pipeline_tree: tree }))
    const first = await server(
      'admin',
      'template',
      'add-common',
      '--file',
      join(dir, 'tree.json'),
      '--name',
      'Shared',
    )
    expect(first.code, first.stderr).toBe(0)
    expect(first.stdout).toMatch(/^\d+\n$/)
    const second = await server(
      'admin',
      'template',
      'add-common',
      '--file',
      join(dir, 'template.json'),
      '--name',
      'Wrapped',
      '--category',
      'OpsTools',
    )
    expect(second.code, second.stderr).toBe(0)
    expect(Number(second.stdout)).toBe(Number(first.stdout) + 1)
    await writeFile(join(dir, 'bad.json'), JSON.stringify({ start_event: {} }))
    for (const [args, reason] of [
      [['--file', join(dir, 'bad.json'), '--name', 'Bad'], /invalid pipeline_tree/],
      [['--file', join(dir, 'missing.json'), '--name', 'Bad'], /cannot read --file/],
      [
        ['--file', join(dir, 'tree.json'), '--name', 'Bad', '--category', 'Toys'],
        /--category must be one of/,
      ],
      [['--file', join(dir, 'tree.json')], /required option '--name <name>'/],
    ] as const) {
      const r = await server('admin', 'template', 'add-common', ...args)
      expect(r.code).not.toBe(0)
      expect(r.stderr).toMatch(reason)
      expect(r.stderr.trim().split('\n')).toHaveLength(1)
    }
  })

  it('issues a token with an expiry and revokes it', async () => {
    const issued = await server(
      'admin',
      'token',
      'add',
      'alice',
      '--token',
      'alice-second-token-0123',
      '--expires-in',
      '7d',
    )
    expect(issued).toMatchObject({ code: 0, stdout: 'token issued to alice\n' })
    expect((await server('admin', 'token', 'revoke', 'alice-second-token-0123')).stdout).toBe(
      'token revoked\n',
    )
    expect((await server('admin', 'token', 'revoke', 'alice-second-token-0123')).stdout).toBe(
      'token was already revoked\n',
    )
  })
})

async function freePort(): Promise<number> {
  return new Promise((res) => {
    const s = createServer()
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => res(port))
    })
  })
}

describe('first start on an empty database', () => {
  it('creates demo data and prints a curl that creates and starts a task, and the console to sign in to', async () => {
    const fresh = await createTestDatabaseUrl()
    const port = await freePort()
    const child = spawn(process.execPath, [BIN, 'serve'], {
      env: { ...process.env, DATABASE_URL: fresh.url, PORT: String(port), LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    try {
      let out = ''
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString()
      })
      const deadline = Date.now() + 30_000
      while (!/Web console/.test(out) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
      const curl = /curl -s -X POST (\S+) -H 'X-Bkapi-Authorization: ([^']+)' -d '([^']+)'/.exec(out)
      expect(curl, out).not.toBeNull()
      // The console's address and how to sign in to it, once the token is printed.
      const token = /bk_token:\s+(\S+)/.exec(out)?.[1]
      expect(out).toContain(`Web console: http://127.0.0.1:${port}/`)
      expect(out).toContain(`sign in with the bk_token above (${token})`)
      const [, url, auth, body] = curl!
      let reply: Record<string, unknown> | null = null
      while (!reply && Date.now() < deadline) {
        // What `curl -d` sends: a form content type, the body as it is.
        const res = await fetch(url!, {
          method: 'POST',
          headers: { 'X-Bkapi-Authorization': auth!, 'content-type': 'application/x-www-form-urlencoded' },
          body: body!,
        }).catch(() => null)
        if (res) reply = (await res.json()) as Record<string, unknown>
        else await new Promise((r) => setTimeout(r, 100))
      }
      expect(reply).toMatchObject({ result: true, code: 0, message: 'success' })
      const taskId = (reply!.data as { task_id: number }).task_id
      const status = await fetch(
        `http://127.0.0.1:${port}/v2/sops/get_task_status/?bk_biz_id=2&task_id=${taskId}`,
        {
          headers: { 'X-Bkapi-Authorization': auth! },
        },
      ).then((r) => r.json() as Promise<{ data: { state: string } }>)
      expect(['RUNNING', 'FINISHED']).toContain(status.data.state)
    } finally {
      child.kill('SIGTERM')
      await new Promise((r) => child.once('exit', r))
      await fresh.drop()
    }
  })
})
