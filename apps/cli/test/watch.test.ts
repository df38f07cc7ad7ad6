import { spawnSync } from 'node:child_process'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Harness, type Identity, makeIdentity, startHarness, waitFor } from '../../api/test/harness'
import {
  cleanUp,
  ESC,
  envFor,
  failingTree,
  json,
  type Run,
  shortTree,
  stdops,
  stdopsOnTty,
  tempDir,
  writeJson,
} from './helpers'

const hasScript = spawnSync('script', ['--version']).status === 0

describe('stdops task watch and pause --wait on real runs', () => {
  let h: Harness
  let id: Identity
  let env: Record<string, string>
  let project: string[]
  let templates: { short: number; long: number; failing: number }

  const cli = (...args: string[]) => stdops([...args, ...project], { env })
  const newTask = async (template: number, name: string, ...constants: string[]) =>
    json<{ task_id: number }>(
      await cli(
        'task',
        'create',
        '--template',
        String(template),
        '--name',
        name,
        '--json',
        ...constants.flatMap((c) => ['--constant', c]),
      ),
    ).task_id
  /** The task_events table, the truth a watch is compared with. */
  const tableEvents = async (taskId: number) =>
    (await h.deps.db.prisma.taskEvent.findMany({ where: { taskId }, orderBy: { seq: 'asc' } })).map((r) => ({
      seq: r.seq,
      type: r.type,
      node_id: r.nodeId,
      state: r.state,
    }))
  /** A node's state, read from the database (quicker than a CLI round trip while a timer runs). */
  const nodeState = async (taskId: number, nodeId: string) =>
    (await h.deps.db.prisma.nodeState.findFirst({ where: { taskId, nodeId } }))?.state
  /** `#seq  task N  STATE` / `#seq  node ID (label)  STATE` lines → events. */
  const parseLines = (run: Run) =>
    run.stdout
      .trim()
      .split('\n')
      .map((line) => {
        const m = /#(\d+)\s+(?:task \d+|node (\S+)(?: \([^)]*\))?)\s+([A-Z]+)/.exec(line)
        if (!m) throw new Error(`not an event line: ${line}`)
        return {
          seq: Number(m[1]),
          type: m[2] ? 'node_state' : 'task_state',
          node_id: m[2] ?? null,
          state: m[3],
        }
      })

  beforeAll(async () => {
    h = await startHarness()
    id = await makeIdentity(h.deps, { role: 'admin' })
    env = envFor(h, id)
    project = ['--project', String(id.bkBizId)]
    const dir = tempDir('stdops-watch-')
    const create = async (tree: unknown, name: string) =>
      json<{ template_id: number }>(
        await cli('template', 'create', '-f', writeJson(dir, `${name}.json`, tree), '--name', name, '--json'),
      ).template_id
    templates = {
      short: await create(shortTree('1'), 'short'),
      long: await create(shortTree('30'), 'long'),
      failing: await create(failingTree('disk full on host-7'), 'failing'),
    }
  })
  afterAll(async () => {
    cleanUp()
    await h?.close()
  })

  it('task watch prints every transition of a real run in order, one line each, and exits 0 on FINISHED', async () => {
    const taskId = await newTask(templates.short, 'watched')
    const watching = cli('task', 'watch', String(taskId))
    // The watch is following before the task starts: it sees the run happen live.
    await new Promise((r) => setTimeout(r, 500))
    expect((await cli('task', 'start', String(taskId))).code).toBe(0)
    const watch = await watching
    expect(watch.code, watch.stderr).toBe(0)
    expect(watch.stderr).toContain(`task ${taskId} finished`)
    const events = await tableEvents(taskId)
    expect(parseLines(watch)).toEqual(events)
    expect(events.at(-1)).toMatchObject({ type: 'task_state', state: 'FINISHED' })
    // set_variables then sleep_timer, each READY → RUNNING → FINISHED, in that order
    const nodeLines = parseLines(watch).filter((e) => e.node_id === 'n_set' || e.node_id === 'n_sleep')
    expect(nodeLines.map((e) => `${e.node_id}:${e.state}`)).toEqual([
      'n_set:READY',
      'n_set:RUNNING',
      'n_set:FINISHED',
      'n_sleep:READY',
      'n_sleep:RUNNING',
      'n_sleep:FINISHED',
    ])
    expect(watch.stdout).toMatch(/node n_sleep \(Sleep\)\s+FINISHED/)
  })

  it('task watch --json prints each event as one JSON line; a finished task replays and exits at once', async () => {
    const taskId = await newTask(templates.short, 'watched as json')
    await cli('task', 'start', String(taskId))
    const live = await cli('task', 'watch', String(taskId), '--json')
    expect(live.code, live.stderr).toBe(0)
    const lines = live.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
    const events = await tableEvents(taskId)
    expect(lines.map((e) => ({ seq: e.seq, type: e.type, node_id: e.node_id, state: e.state }))).toEqual(
      events,
    )
    expect(lines[0]).toMatchObject({ task_id: taskId, seq: 1, type: 'task_state', state: 'CREATED' })
    expect(typeof lines[0]!.created_at).toBe('number')
    const again = await cli('task', 'watch', String(taskId), '--json')
    expect(again.code).toBe(0)
    expect(again.stdout).toBe(live.stdout)
  })

  it('task watch survives a dropped connection: it reconnects and misses or repeats no event', async () => {
    const taskId = await newTask(templates.short, 'dropped', 'wait=5')
    await cli('task', 'start', String(taskId))
    let following!: () => void
    const sleeping = new Promise<void>((resolve) => {
      following = resolve
    })
    // Drop only once the watch is connected and has seen the sleep start: half way through the run.
    const watching = stdops(['task', 'watch', String(taskId), ...project], {
      env,
      onStdout: (soFar) => {
        if (/node n_sleep \(Sleep\)\s+RUNNING/.test(soFar)) following()
      },
    })
    await sleeping
    // Cut every open connection, the SSE stream among them, as a proxy or a network blip would.
    h.server.app.server.closeAllConnections()
    const watch = await watching
    expect(watch.code, watch.stderr).toBe(0)
    expect(watch.stderr).toContain('reconnecting')
    expect(parseLines(watch)).toEqual(await tableEvents(taskId))
  })

  it('task watch exits 1 when the task is revoked, after the revoked nodes', async () => {
    const taskId = await newTask(templates.long, 'revoked')
    await cli('task', 'start', String(taskId))
    const watching = cli('task', 'watch', String(taskId))
    await waitFor(async () => ((await nodeState(taskId, 'n_sleep')) === 'RUNNING' ? true : undefined))
    const revoke = await cli('task', 'revoke', String(taskId), '--json')
    expect(revoke.code, revoke.stderr).toBe(0)
    expect(json(revoke)).toEqual({ task_id: taskId, state: 'REVOKED' })
    const watch = await watching
    expect(watch.code).toBe(1)
    expect(watch.stderr).toContain(`task ${taskId} was revoked`)
    const lines = parseLines(watch)
    expect(lines).toEqual(await tableEvents(taskId))
    expect(lines.slice(-2).map((e) => `${e.node_id ?? 'task'}:${e.state}`)).toEqual([
      'task:REVOKED',
      'n_sleep:REVOKED',
    ])
  })

  it('task watch exits 1 when a node fails, naming the node and its error; task status shows it', async () => {
    const taskId = await newTask(templates.failing, 'failing')
    await cli('task', 'start', String(taskId))
    const watch = await cli('task', 'watch', String(taskId))
    expect(watch.code).toBe(1)
    expect(watch.stderr).toContain(`task ${taskId} failed`)
    expect(watch.stderr).toContain('node n_fail (Break here) failed: disk full on host-7')
    expect(watch.stdout).toMatch(/node n_fail \(Break here\)\s+FAILED\s+error: disk full on host-7/)

    const status = await cli('task', 'status', String(taskId))
    expect(status.code).toBe(0)
    expect(status.stdout).toMatch(/state\s+FAILED/)
    expect(status.stdout).toMatch(/^FAILED\s+Break here\s+\d+s\s/m)
    expect(status.stdout).toContain('n_fail (Break here) failed: disk full on host-7')
    const tree = json<{ state: string; children: Record<string, { state: string; ex_data?: string }> }>(
      await cli('task', 'status', String(taskId), '--json'),
    )
    expect(tree.state).toBe('FAILED')
    expect(tree.children.n_fail).toMatchObject({ state: 'FAILED', ex_data: 'disk full on host-7' })
  })

  it('pause --wait returns once no node runs; nothing starts until resume, then the run finishes', async () => {
    // The sleep has to outlast the time it takes to spawn the CLI and pause, on a busy machine too.
    const taskId = await newTask(templates.short, 'paused', 'wait=4')
    await cli('task', 'start', String(taskId))
    await waitFor(async () => ((await nodeState(taskId, 'n_sleep')) === 'RUNNING' ? true : undefined))
    const paused = await cli('task', 'pause', String(taskId), '--wait', '--json')
    expect(paused.code, paused.stderr).toBe(0)
    expect(json(paused)).toEqual({ task_id: taskId, state: 'SUSPENDED', running_nodes: 0 })
    // the sleeping node carried on and finished; the end event is held back
    expect(await nodeState(taskId, 'n_sleep')).toBe('FINISHED')
    await new Promise((r) => setTimeout(r, 500))
    expect(['READY', undefined]).toContain(await nodeState(taskId, 'n_end')) // held, not started

    const resumed = await cli('task', 'resume', String(taskId))
    expect(resumed.code, resumed.stderr).toBe(0)
    expect(resumed.stdout).toMatch(/state\s+RUNNING/)
    const watch = await cli('task', 'watch', String(taskId))
    expect(watch.code, watch.stderr).toBe(0)
    const records = json<Array<{ operate_type: string }>>(
      await cli('task', 'records', String(taskId), '--json'),
    )
    expect(records.map((r) => r.operate_type)).toEqual(['create', 'start', 'pause', 'resume'])
  })

  it('pause --wait --timeout gives up with exit 1 while a node still runs', async () => {
    const taskId = await newTask(templates.long, 'slow to quiet')
    await cli('task', 'start', String(taskId))
    await waitFor(async () => ((await nodeState(taskId, 'n_sleep')) === 'RUNNING' ? true : undefined))
    const paused = await cli('task', 'pause', String(taskId), '--wait', '--timeout', '0.5')
    expect(paused.code).toBe(1)
    expect(paused.stderr).toContain('still has 1 running node(s)')
    await cli('task', 'revoke', String(taskId))
  })

  describe.skipIf(!hasScript)('on a terminal', () => {
    it('task watch redraws the node table in place, in colour', async () => {
      const taskId = await newTask(templates.short, 'on a tty', 'wait=3')
      await cli('task', 'start', String(taskId))
      const run = await stdopsOnTty(['task', 'watch', String(taskId), ...project], env)
      expect(run.code, run.stdout).toBe(0)
      expect(run.stdout).toMatch(new RegExp(`${ESC}\\[\\d+F${ESC}\\[J`)) // cursor up over the last drawing, clear
      expect(run.stdout).toContain(`${ESC}[32mFINISHED`) // green
      expect(run.stdout).toMatch(/Sleep\s+\d+s\s+n_sleep/)
      expect(run.stdout).not.toMatch(/#\d+\s+node/) // not the line-per-event form
    })

    it('NO_COLOR turns colour off on a terminal too', async () => {
      const run = await stdopsOnTty(['template', 'list', ...project], { ...env, NO_COLOR: '1' })
      expect(run.code, run.stdout).toBe(0)
      expect(run.stdout).toContain('short')
      expect(run.stdout).not.toContain(ESC)
      const coloured = await stdopsOnTty(['template', 'list', ...project], env)
      expect(coloured.stdout).toContain(`${ESC}[1mID`)
    })
  })
})
