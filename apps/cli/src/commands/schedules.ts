import { UsageError } from '../errors'
import { dash } from '../output/format'
import { printJson } from '../output/json'
import { renderRecord, renderTable } from '../output/table'
import { type CommandContext, connect, parseId } from './context'
import { parseConstants } from './task'

/** A constant's value as the tables show it: text as is, anything else as JSON. */
const shown = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v ?? null))

/** `--constant` pairs as the API takes them, or nothing when none were given. */
const constantsOf = (pairs: readonly string[]) => {
  const constants = parseConstants(pairs)
  return Object.keys(constants).length > 0 ? { constants } : {}
}

// ---- periodic ----------------------------------------------------------------------------------

export async function periodicList(ctx: CommandContext, o: { json?: boolean }) {
  const { client, project } = connect(ctx)
  const list = await client.periodic.list.query(project())
  if (o.json) return printJson(ctx.io, list)
  if (list.length === 0) {
    ctx.io.err.write('no periodic tasks in this project\n')
    return
  }
  const c = ctx.io.color.out
  ctx.io.out.write(
    renderTable(c, list, [
      { header: 'ID', value: (p) => String(p.id) },
      { header: 'NAME', value: (p) => p.name },
      { header: 'CRON', value: (p) => p.cron.replace(/\s*\(m\/h\/d\/dM\/MY\)$/, '') },
      {
        header: 'ENABLED',
        value: (p) => (p.enabled ? 'yes' : 'no'),
        paint: (s, p) => (p.enabled ? c.green(s) : c.dim(s)),
      },
      { header: 'NEXT RUN', value: (p) => dash(p.next_run_at) },
      { header: 'LAST RUN', value: (p) => dash(p.last_run_at) },
      { header: 'RUNS', value: (p) => String(p.total_run_count) },
      { header: 'TEMPLATE', value: (p) => p.template_id },
    ]),
  )
}

export async function periodicShow(ctx: CommandContext, id: string, o: { json?: boolean }) {
  const taskId = parseId(id, 'periodic task id')
  const { client, project } = connect(ctx)
  const ref = { ...project(), task_id: taskId }
  const [p, firings] = await Promise.all([
    client.periodic.get.query(ref),
    client.periodic.firings.query({ ...ref, limit: 10 }),
  ])
  if (o.json) return printJson(ctx.io, { ...p, recent_firings: firings })
  const c = ctx.io.color.out
  let text = renderRecord(c, [
    ['id', String(p.id)],
    ['name', p.name],
    ['cron', p.cron],
    ['enabled', p.enabled ? c.green('yes') : c.dim('no')],
    ['next run', dash(p.next_run_at)],
    ['last run', dash(p.last_run_at)],
    ['runs', String(p.total_run_count)],
    ['template', p.template_id],
    ['creator', p.creator],
    ['editor', dash(p.editor)],
    ['created', dash(p.create_time)],
    ['edited', dash(p.edit_time)],
  ])
  if (p.next_run_times.length > 0) {
    text += `\n${renderTable(
      c,
      p.next_run_times.map((t, i) => ({ n: i + 1, t })),
      [
        { header: 'UPCOMING', value: (r) => String(r.n) },
        { header: 'DUE', value: (r) => r.t },
      ],
    )}`
  }
  if (firings.length > 0) {
    text += `\n${renderTable(c, firings, [
      { header: 'RECENT RUNS', value: (f) => f.due_time },
      { header: 'TASK', value: (f) => dash(f.task_id) },
      { header: 'STATE', value: (f) => dash(f.task_state) },
      { header: 'ERROR', value: (f) => dash(f.error), paint: (s, f) => (f.error ? c.red(s) : s) },
    ])}`
  }
  const constants = Object.values(p.form) as Array<Record<string, unknown>>
  if (constants.length > 0) {
    text += `\n${renderTable(c, constants, [
      { header: 'CONSTANT', value: (k) => String(k.key) },
      { header: 'NAME', value: (k) => dash(k.name) },
      { header: 'VALUE', value: (k) => shown(k.value) },
    ])}`
  }
  ctx.io.out.write(text)
}

export async function periodicCreate(
  ctx: CommandContext,
  o: { template: string; name: string; cron: string; constant: string[]; json?: boolean },
) {
  const templateId = parseId(o.template, '--template')
  const extra = constantsOf(o.constant)
  const { client, project } = connect(ctx)
  const p = await client.periodic.create.mutate({
    ...project(),
    template_id: templateId,
    name: o.name,
    cron: o.cron,
    ...extra,
  })
  const created = { id: p.id, name: p.name, cron: p.cron, enabled: p.enabled }
  if (o.json) return printJson(ctx.io, created)
  ctx.io.out.write(
    renderRecord(ctx.io.color.out, [
      ['id', String(created.id)],
      ['name', created.name],
      ['cron', created.cron],
      ['enabled', 'no'],
    ]),
  )
  ctx.io.err.write(`created disabled: \`stdops periodic enable ${p.id}\` starts it\n`)
}

export async function periodicSetEnabled(
  ctx: CommandContext,
  id: string,
  enabled: boolean,
  o: { json?: boolean },
) {
  const taskId = parseId(id, 'periodic task id')
  const { client, project } = connect(ctx)
  const ref = { ...project(), task_id: taskId }
  await client.periodic.setEnabled.mutate({ ...ref, enabled })
  const p = await client.periodic.get.query(ref)
  const state = { id: p.id, enabled: p.enabled, next_run_at: p.next_run_at }
  if (o.json) return printJson(ctx.io, state)
  const c = ctx.io.color.out
  ctx.io.out.write(
    renderRecord(c, [
      ['id', String(state.id)],
      ['enabled', state.enabled ? c.green('yes') : c.dim('no')],
      ['next run', dash(state.next_run_at)],
    ]),
  )
}

export async function periodicSetCron(ctx: CommandContext, id: string, cron: string, o: { json?: boolean }) {
  const taskId = parseId(id, 'periodic task id')
  const { client, project } = connect(ctx)
  const ref = { ...project(), task_id: taskId }
  await client.periodic.setCron.mutate({ ...ref, cron })
  const p = await client.periodic.get.query(ref)
  const state = { id: p.id, cron: p.cron, enabled: p.enabled, next_run_at: p.next_run_at }
  if (o.json) return printJson(ctx.io, state)
  ctx.io.out.write(
    renderRecord(ctx.io.color.out, [
      ['id', String(state.id)],
      ['cron', state.cron],
      ['next run', dash(state.next_run_at)],
    ]),
  )
}

export async function periodicSetConstants(
  ctx: CommandContext,
  id: string,
  o: { constant: string[]; json?: boolean },
) {
  const taskId = parseId(id, 'periodic task id')
  if (o.constant.length === 0) throw new UsageError('set-constants needs at least one --constant key=value')
  const constants = parseConstants(o.constant)
  const { client, project } = connect(ctx)
  const all = await client.periodic.setConstants.mutate({ ...project(), task_id: taskId, constants })
  if (o.json) return printJson(ctx.io, all)
  const rows = Object.entries(all).map(([key, c]) => ({ key, c: c as Record<string, unknown> }))
  if (rows.length === 0) {
    ctx.io.err.write('this periodic task has no constants\n')
    return
  }
  ctx.io.out.write(
    renderTable(ctx.io.color.out, rows, [
      { header: 'CONSTANT', value: (r) => r.key },
      { header: 'NAME', value: (r) => dash(r.c.name) },
      { header: 'VALUE', value: (r) => shown(r.c.value) },
    ]),
  )
}

// ---- clocked -----------------------------------------------------------------------------------

export async function clockedList(ctx: CommandContext, o: { state?: string; name?: string; json?: boolean }) {
  const { client, project } = connect(ctx)
  const page = await client.clocked.list.query({
    ...project(),
    ...(o.name !== undefined ? { task_name: o.name } : {}),
    ...(o.state !== undefined ? { state: o.state as 'not_started' | 'started' | 'failed' } : {}),
  })
  if (o.json) return printJson(ctx.io, page)
  const c = ctx.io.color.out
  if (page.list.length > 0) {
    ctx.io.out.write(
      renderTable(c, page.list, [
        { header: 'ID', value: (t) => String(t.id) },
        { header: 'NAME', value: (t) => t.task_name },
        { header: 'PLANNED', value: (t) => t.plan_start_time },
        {
          header: 'STATE',
          value: (t) => t.state,
          paint: (s, t) => (t.state === 'started' ? c.green(s) : t.state === 'failed' ? c.red(s) : c.dim(s)),
        },
        { header: 'TASK', value: (t) => dash(t.task_id) },
        { header: 'TEMPLATE', value: (t) => `${t.template_id} ${t.template_name}`.trim() },
        { header: 'ERROR', value: (t) => dash(t.error) },
      ]),
    )
  }
  ctx.io.err.write(`${page.list.length} of ${page.count} clocked task(s)\n`)
}

export async function clockedCreate(
  ctx: CommandContext,
  o: { template: string; name: string; at: string; constant: string[]; json?: boolean },
) {
  const templateId = parseId(o.template, '--template')
  const constants = parseConstants(o.constant)
  const { client, project } = connect(ctx)
  const t = await client.clocked.create.mutate({
    ...project(),
    template_id: templateId,
    task_name: o.name,
    plan_start_time: o.at,
    task_parameters: { constants, template_schemes_id: [] },
  })
  const created = { id: t.id, task_name: t.task_name, plan_start_time: t.plan_start_time, state: t.state }
  if (o.json) return printJson(ctx.io, created)
  ctx.io.out.write(
    renderRecord(ctx.io.color.out, [
      ['id', String(created.id)],
      ['name', created.task_name],
      ['planned', created.plan_start_time],
      ['state', created.state],
    ]),
  )
}

export async function clockedDelete(ctx: CommandContext, id: string, o: { json?: boolean }) {
  const taskId = parseId(id, 'clocked task id')
  const { client, project } = connect(ctx)
  const r = await client.clocked.delete.mutate({ ...project(), task_id: taskId })
  if (o.json) return printJson(ctx.io, r)
  ctx.io.out.write(
    renderRecord(ctx.io.color.out, [
      ['id', String(r.id)],
      ['deleted', 'yes'],
      ['state', r.state],
      ['task', dash(r.task_id)],
    ]),
  )
  if (r.task_id !== null) ctx.io.err.write(`task ${r.task_id} it started is kept\n`)
}
