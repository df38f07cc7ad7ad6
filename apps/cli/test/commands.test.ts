import { readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Harness, type Identity, makeIdentity, startHarness, waitFor } from '../../api/test/harness'
import { cleanUp, ESC, envFor, json, shortTree, stdops, tempDir, writeJson } from './helpers'

describe('stdops commands against a real server', () => {
  let h: Harness
  let id: Identity
  let env: Record<string, string>
  let dir: string
  let treeFile: string
  let project: string[]

  beforeAll(async () => {
    h = await startHarness()
    id = await makeIdentity(h.deps, { role: 'admin' })
    env = envFor(h, id)
    dir = tempDir('stdops-cli-')
    treeFile = writeJson(dir, 'tree.json', shortTree('0'))
    project = ['--project', String(id.bkBizId)]
  })
  afterAll(async () => {
    cleanUp()
    await h?.close()
  })

  describe('login and configuration', () => {
    it('login reads the secrets from stdin, checks them, and writes a 0600 profile that later commands use', async () => {
      const home = tempDir('stdops-home-')
      const login = await stdops(
        ['login', '--url', h.url, '--app-code', id.appCode, '--project', String(id.bkBizId)],
        {
          home,
          input: `${id.appSecret}\n${id.token}\n`,
        },
      )
      expect(login.code, login.stderr).toBe(0)
      expect(login.stdout).toBe('')
      expect(login.stderr).toContain(`logged in: ${h.url}`)
      const path = join(home, '.config', 'stdops', 'config.json')
      expect(statSync(path).mode & 0o777).toBe(0o600)
      const saved = JSON.parse(readFileSync(path, 'utf8')) as {
        profiles: Record<string, Record<string, unknown>>
      }
      expect(saved.profiles.default).toEqual({
        url: h.url,
        app_code: id.appCode,
        app_secret: id.appSecret,
        token: id.token,
        project: id.bkBizId,
      })
      // no environment at all: everything comes from the profile
      const list = await stdops(['template', 'list', '--json'], { home })
      expect(list.code, list.stderr).toBe(0)
      expect(json(list)).toEqual([])
    })

    it('login honours XDG_CONFIG_HOME and takes secrets from the environment', async () => {
      const home = tempDir('stdops-home-')
      const xdg = tempDir('stdops-xdg-')
      const login = await stdops(['login', '--profile', 'ci'], {
        home,
        env: { ...env, XDG_CONFIG_HOME: xdg },
      })
      expect(login.code, login.stderr).toBe(0)
      expect(login.stderr).toContain('no default project')
      const path = join(xdg, 'stdops', 'config.json')
      expect(statSync(path).mode & 0o777).toBe(0o600)
      expect(Object.keys((JSON.parse(readFileSync(path, 'utf8')) as { profiles: object }).profiles)).toEqual([
        'ci',
      ])
      const list = await stdops(['--profile', 'ci', 'template', 'list', ...project], {
        home,
        env: { XDG_CONFIG_HOME: xdg },
      })
      expect(list.code, list.stderr).toBe(0)
    })

    it('login with a wrong secret is refused with 1306000, exits 2, and saves nothing', async () => {
      const home = tempDir('stdops-home-')
      const login = await stdops(['login', '--url', h.url, '--app-code', id.appCode], {
        home,
        input: `wrong-secret\n${id.token}\n`,
      })
      expect(login.code).toBe(2)
      expect(login.stderr).toMatch(/error 1306000: APP Secret verification failed/)
      expect(() => statSync(join(home, '.config', 'stdops', 'config.json'))).toThrow()
    })

    it('login without a secret and nothing on stdin is a usage error', async () => {
      const login = await stdops(['login', '--url', h.url, '--app-code', id.appCode])
      expect(login.code).toBe(2)
      expect(login.stderr).toContain('no app secret')
    })

    it('login --no-verify saves without asking the server', async () => {
      const home = tempDir('stdops-home-')
      const login = await stdops(['login', '--no-verify', '--url', 'http://127.0.0.1:9', '--app-code', 'a'], {
        home,
        input: 's\nt\n',
      })
      expect(login.code, login.stderr).toBe(0)
      expect(login.stderr).toContain('saved (not checked)')
    })

    it('an app allowed to name users acts as STDOPS_USERNAME (or --username) without a token', async () => {
      const skip = await makeIdentity(h.deps, { userSkip: true, projectId: id.projectId, role: 'viewer' })
      const base = { STDOPS_URL: h.url, STDOPS_APP_CODE: skip.appCode, STDOPS_APP_SECRET: skip.appSecret }
      const byEnv = await stdops(['template', 'list', ...project], {
        env: { ...base, STDOPS_USERNAME: skip.username },
      })
      expect(byEnv.code, byEnv.stderr).toBe(0)
      const byFlag = await stdops(['template', 'list', '--username', skip.username, ...project], {
        env: base,
      })
      expect(byFlag.code, byFlag.stderr).toBe(0)
      const stranger = await stdops(['template', 'list', '--username', 'nobody-here', ...project], {
        env: base,
      })
      expect(stranger.code).toBe(1)
      expect(stranger.stderr).toContain('error 3599999: permission denied')
    })

    it('flags override the environment', async () => {
      const run = await stdops(['template', 'list', '--app-code', id.appCode, ...project], {
        env: { ...env, STDOPS_APP_CODE: 'nobody' },
      })
      expect(run.code, run.stderr).toBe(0)
    })

    it('a bad credential exits 2 with the legacy code and message on stderr', async () => {
      const run = await stdops(['template', 'list', ...project], {
        env: { ...env, STDOPS_APP_SECRET: 'wrong' },
      })
      expect(run.code).toBe(2)
      expect(run.stdout).toBe('')
      expect(run.stderr).toContain('error 1306000: APP Secret verification failed')
      const badToken = await stdops(['task', 'list', ...project], {
        env: { ...env, STDOPS_TOKEN: 'not-a-token' },
      })
      expect(badToken.code).toBe(2)
      expect(badToken.stderr).toContain('error 1306000: User authentication failed')
    })

    it('usage errors exit 2: an unknown flag, a bad id, a missing project, no configuration', async () => {
      const flag = await stdops(['task', 'list', '--bogus'], { env })
      expect(flag.code).toBe(2)
      expect(flag.stderr).toContain("unknown option '--bogus'")
      const badId = await stdops(['task', 'status', 'abc', ...project], { env })
      expect(badId.code).toBe(2)
      expect(badId.stderr).toContain('task id must be a positive integer')
      const noProject = await stdops(['task', 'list'], { env })
      expect(noProject.code).toBe(2)
      expect(noProject.stderr).toContain('no project')
      const nothing = await stdops(['template', 'list', ...project])
      expect(nothing.code).toBe(2)
      expect(nothing.stderr).toContain('no server URL')
      const badScope = await stdops(['task', 'list', '--scope', 'planet', ...project], { env })
      expect(badScope.code).toBe(2)
      const missingFile = await stdops(
        ['template', 'create', '-f', join(dir, 'nope.json'), '--name', 'x', ...project],
        { env },
      )
      expect(missingFile.code).toBe(2)
      expect(missingFile.stderr).toContain('cannot read')
    })

    it('--help exits 0 and prints on stdout', async () => {
      const help = await stdops(['task', '--help'])
      expect(help.code).toBe(0)
      expect(help.stdout).toContain('watch [options] <id>')
    })
  })

  describe('templates', () => {
    it('template create, list and show, as tables and as --json', async () => {
      const created = await stdops(
        ['template', 'create', '-f', treeFile, '--name', 'Short run', ...project],
        { env },
      )
      expect(created.code, created.stderr).toBe(0)
      const templateId = Number(/template_id\s+(\d+)/.exec(created.stdout)?.[1])
      expect(templateId).toBeGreaterThan(0)

      const createdJson = await stdops(
        ['template', 'create', '-f', treeFile, '--name', 'Short run 2', '--json', ...project],
        { env },
      )
      expect(json(createdJson)).toEqual({ template_id: templateId + 1, template_name: 'Short run 2' })

      const list = await stdops(['template', 'list', ...project], { env })
      expect(list.code).toBe(0)
      expect(list.stdout.split('\n')[0]).toMatch(/^ID\s+NAME\s+CREATOR\s+EDITED$/)
      expect(list.stdout).toContain('Short run 2')
      expect(list.stdout).not.toContain(ESC)
      const listJson = json<Array<{ id: number; name: string }>>(
        await stdops(['template', 'list', '--json', ...project], { env }),
      )
      expect(listJson.map((t) => [t.id, t.name])).toEqual([
        [templateId + 1, 'Short run 2'],
        [templateId, 'Short run'],
      ])

      const show = await stdops(['template', 'show', String(templateId), ...project], { env })
      expect(show.code).toBe(0)
      expect(show.stdout).toMatch(/name\s+Short run\n/)
      expect(show.stdout).toMatch(/n_set\s+Set variables\s+set_variables/)
      expect(show.stdout).toMatch(/n_sleep\s+Sleep\s+sleep_timer/)
      expect(show.stdout).toMatch(/\$\{wait\}\s+Seconds to wait\s+0/)
      const showJson = json(
        await stdops(['template', 'show', String(templateId), '--json', ...project], { env }),
      )
      expect(showJson).toMatchObject({ id: templateId, name: 'Short run', pipeline_tree: shortTree('0') })
    })

    it('a server refusal prints its legacy code and message and exits 1', async () => {
      const missing = await stdops(['template', 'show', '987654', ...project], { env })
      expect(missing.code).toBe(1)
      expect(missing.stderr).toContain(
        `error 3540400: template[id=987654] does not exist in project(${id.bkBizId})`,
      )
      const invalid = await stdops(
        [
          'template',
          'create',
          '-f',
          writeJson(dir, 'bad.json', { start_event: {} }),
          '--name',
          'bad',
          ...project,
        ],
        {
          env,
        },
      )
      expect(invalid.code).toBe(1)
      expect(invalid.stderr).toMatch(/error 3540000: invalid pipeline_tree/)
    })
  })

  describe('tasks', () => {
    let templateId: number
    beforeAll(async () => {
      const created = await stdops(
        ['template', 'create', '-f', treeFile, '--name', 'For tasks', '--json', ...project],
        { env },
      )
      templateId = json<{ template_id: number }>(created).template_id
    })

    it('task create with --constant, start, status, records and list, as tables and as --json', async () => {
      const created = await stdops(
        [
          'task',
          'create',
          '--template',
          String(templateId),
          '--name',
          'first',
          '--constant',
          'who=cli',
          '--constant',
          'wait=0',
          '--json',
          ...project,
        ],
        { env },
      )
      expect(created.code, created.stderr).toBe(0)
      const { task_id: taskId, task_url } = json<{ task_id: number; task_url: string }>(created)
      expect(Object.keys(json(created))).toEqual(['task_id', 'task_url'])
      expect(task_url).toContain(`instance_id=${taskId}`)
      const detail = await h.deps.db.prisma.task.findUniqueOrThrow({ where: { id: taskId } })
      expect(JSON.parse(detail.constants)['${who}'].value).toBe('cli')

      const before = await stdops(['task', 'status', String(taskId), ...project], { env })
      expect(before.code).toBe(0)
      expect(before.stdout).toMatch(/state\s+CREATED/)

      const started = await stdops(['task', 'start', String(taskId), ...project], { env })
      expect(started.code, started.stderr).toBe(0)
      expect(started.stdout).toMatch(/task_id\s+\d+\nstate\s+RUNNING\ntask_url\s+http/)

      await waitFor(async () => {
        const s = json<{ state: string }>(
          await stdops(['task', 'status', String(taskId), '--json', ...project], { env }),
        )
        return s.state === 'FINISHED' ? true : undefined
      })
      const statusJson = json<{ state: string; children: Record<string, { state: string }> }>(
        await stdops(['task', 'status', String(taskId), '--json', ...project], { env }),
      )
      expect(Object.keys(statusJson.children).sort()).toEqual(['n_end', 'n_set', 'n_sleep', 'n_start'])
      const status = await stdops(['task', 'status', String(taskId), ...project], { env })
      expect(status.stdout).toMatch(/state\s+FINISHED/)
      const rows = status.stdout.split('\n').filter((l) => /^FINISHED\s/.test(l))
      // the node table in run order, with labels and durations
      expect(rows.map((l) => l.split(/\s{2,}/)[1])).toEqual(['start', 'Set variables', 'Sleep', 'end'])
      expect(rows.every((l) => /\s\d+s\s/.test(l))).toBe(true)

      const records = await stdops(['task', 'records', String(taskId), ...project], { env })
      expect(records.code).toBe(0)
      expect(records.stdout).toMatch(/^ID\s+OPERATION\s+OPERATOR\s+APP\s+SOURCE\s+DATE\s+NODE/)
      // the app that acted is named beside the user
      expect(records.stdout.split('\n')[1]).toMatch(
        new RegExp(`\\s${id.username}\\s+${id.appCode}\\s+app\\s`),
      )
      const recordsJson = json<
        Array<{
          operate_type: string
          operator: string
          operate_source: string
          extra_info: { app_code: string }
        }>
      >(await stdops(['task', 'records', String(taskId), '--json', ...project], { env }))
      expect(
        recordsJson.map((r) => [r.operate_type, r.operator, r.extra_info.app_code, r.operate_source]),
      ).toEqual([
        ['create', id.username, id.appCode, 'app'],
        ['start', id.username, id.appCode, 'app'],
      ])

      const list = await stdops(['task', 'list', '--keyword', 'first', ...project], { env })
      expect(list.code).toBe(0)
      expect(list.stdout).toMatch(new RegExp(`^${taskId}\\s+first\\s+FINISHED\\s`, 'm'))
      expect(list.stderr).toContain('1 of 1 task(s)')
      const listJson = json<{ list: Array<{ id: number }>; count: number }>(
        await stdops(['task', 'list', '--finished', '--template', String(templateId), '--json', ...project], {
          env,
        }),
      )
      expect(listJson.count).toBe(1)
      expect(listJson.list.map((t) => t.id)).toEqual([taskId])
    })

    it('task list applies the legacy filters', async () => {
      const mk = async (name: string) =>
        json<{ task_id: number }>(
          await stdops(
            ['task', 'create', '--template', String(templateId), '--name', name, '--json', ...project],
            { env },
          ),
        ).task_id
      const a = await mk('filter-a')
      const b = await mk('filter-b')
      const ids = async (...args: string[]) =>
        json<{ list: Array<{ id: number }> }>(
          await stdops(['task', 'list', '--keyword', 'filter-', '--json', ...args, ...project], { env }),
        ).list.map((t) => t.id)
      expect(await ids()).toEqual([b, a])
      expect(await ids('--no-started')).toEqual([b, a])
      expect(await ids('--started')).toEqual([])
      expect(await ids('--no-finished', '--limit', '1')).toEqual([b])
      expect(await ids('--limit', '1', '--offset', '1')).toEqual([a])
      expect(await ids('--created-after', '2000-01-01', '--created-before', '2999-01-01 00:00:00')).toEqual([
        b,
        a,
      ])
      expect(await ids('--executor', 'nobody')).toEqual([])
      const badTime = await stdops(['task', 'list', '--created-after', 'yesterday', ...project], { env })
      expect(badTime.code).toBe(1)
      expect(badTime.stderr).toContain('error 3540000')
    })

    it('operations the task cannot take are refused with 3545000', async () => {
      const taskId = json<{ task_id: number }>(
        await stdops(
          ['task', 'create', '--template', String(templateId), '--name', 'not started', '--json', ...project],
          { env },
        ),
      ).task_id
      const pause = await stdops(['task', 'pause', String(taskId), ...project], { env })
      expect(pause.code).toBe(1)
      expect(pause.stderr).toContain('error 3545000: task not started')
      const missing = await stdops(['task', 'status', '999999', ...project], { env })
      expect(missing.code).toBe(1)
      expect(missing.stderr).toContain(
        `error 3540400: task[id=999999] does not exist in project(${id.bkBizId})`,
      )
    })

    it('a viewer may read but not operate (3599999)', async () => {
      const viewer = await makeIdentity(h.deps, { role: 'viewer', projectId: id.projectId })
      const taskId = json<{ task_id: number }>(
        await stdops(
          ['task', 'create', '--template', String(templateId), '--name', 'viewed', '--json', ...project],
          { env },
        ),
      ).task_id
      const status = await stdops(['task', 'status', String(taskId), ...project], { env: envFor(h, viewer) })
      expect(status.code, status.stderr).toBe(0)
      const start = await stdops(['task', 'start', String(taskId), ...project], { env: envFor(h, viewer) })
      expect(start.code).toBe(1)
      expect(start.stderr).toContain('error 3599999: permission denied')
    })
  })
})
