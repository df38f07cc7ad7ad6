import { roleAllows } from '@stdops/core'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { getRouteApi, Link, useNavigate } from '@tanstack/react-router'
import { type FormEvent, useEffect, useId, useState } from 'react'
import { useTranslation } from 'react-i18next'
import { ErrorNote, Loading, Section, Time } from '../components/common'
import { ConfirmDialog } from '../components/confirm'
import { useConstantsForm } from '../components/constants-form'
import { useRole } from '../components/shell'
import { utcPreference } from '../lib/prefs'
import { parseLegacyTime, toLocalInput, toPlanStartTime } from '../lib/time'
import { useStoreValue } from '../lib/value-store'
import { type Outputs, useTRPC } from '../trpc'

const route = getRouteApi('/projects/$bizId/schedules')

type Periodic = Outputs['periodic']['list'][number]
type Clocked = Outputs['clocked']['list']['list'][number]

/** bk-sops's written cron `m h d dM MY (m/h/d/dM/MY)` → the crontab order people type. */
function crontab(cron: string): string {
  const [m, h, dow, dom, moy] = cron.replace(/\s*\(m\/h\/d\/dM\/MY\)\s*$/, '').split(/\s+/)
  return [m, h, dom, moy, dow].join(' ')
}

/**
 * Asks the lists again just after the next due time shown on the page has passed (a schedule
 * fires, a clocked task starts), instead of polling: nothing changes a schedule between due
 * times but an operator, whose own change refetches.
 */
function useRefetchAfter(dues: Array<number | null>, refetch: () => void) {
  const next = dues.filter((d): d is number => d !== null && d > Date.now()).sort((a, b) => a - b)[0]
  useEffect(() => {
    if (next === undefined) return
    // Timers past ~24.8 days overflow; a page open that long refetches on focus anyway.
    const wait = Math.min(next - Date.now() + 1500, 2 ** 31 - 1)
    const timer = setTimeout(refetch, wait)
    return () => clearTimeout(timer)
  }, [next, refetch])
}

function TemplatePicker({
  bizId,
  value,
  onChange,
}: {
  bizId: number
  value: number | null
  onChange: (id: number) => void
}) {
  const { t } = useTranslation()
  const trpc = useTRPC()
  const id = useId()
  const templates = useQuery(trpc.template.list.queryOptions({ bk_biz_id: bizId }))
  return (
    <div className="field">
      <label htmlFor={id}>{t('common.template')}</label>
      <select
        id={id}
        required
        value={value ?? ''}
        onChange={(e) => e.target.value && onChange(Number(e.target.value))}
      >
        <option value="">{t('schedules.pickTemplate')}</option>
        {templates.data?.map((tp) => (
          <option key={tp.id} value={tp.id}>
            {tp.id} · {tp.name}
          </option>
        ))}
      </select>
    </div>
  )
}

/** Name, template, then the template's constants: what both kinds of schedule are made of. */
function useScheduleForm(bizId: number) {
  const trpc = useTRPC()
  const [templateId, setTemplateId] = useState<number | null>(null)
  const template = useQuery({
    ...trpc.template.get.queryOptions({ bk_biz_id: bizId, template_id: templateId ?? 0 }),
    enabled: templateId !== null,
  })
  const constants = useConstantsForm(template.data?.pipeline_tree)
  const picker = (
    <>
      <TemplatePicker
        bizId={bizId}
        value={templateId}
        onChange={(id) => {
          setTemplateId(id)
          constants.reset()
        }}
      />
      {template.data && constants.view}
      <ErrorNote error={template.error} />
    </>
  )
  return { templateId, picker, collect: constants.collect, template: template.data }
}

function NewPeriodic({ bizId, onDone }: { bizId: number; onDone: (id: number) => void }) {
  const { t } = useTranslation()
  const trpc = useTRPC()
  const queryClient = useQueryClient()
  const form = useScheduleForm(bizId)
  const [name, setName] = useState('')
  const [cron, setCron] = useState('0 * * * *')
  const [invalid, setInvalid] = useState<string | null>(null)
  const nameId = useId()
  const cronId = useId()
  const cronHelp = useId()
  const create = useMutation(
    trpc.periodic.create.mutationOptions({
      onSuccess: (p) => {
        void queryClient.invalidateQueries({ queryKey: trpc.periodic.list.pathKey() })
        onDone(p.id)
      },
    }),
  )
  const submit = (e: FormEvent) => {
    e.preventDefault()
    setInvalid(null)
    if (form.templateId === null) return
    const collected = form.collect()
    if (!collected.ok) return setInvalid(collected.message)
    create.mutate({
      bk_biz_id: bizId,
      template_id: form.templateId,
      name: name.trim(),
      cron: cron.trim(),
      constants: collected.constants,
      template_source: 'project',
    })
  }
  return (
    <form onSubmit={submit} aria-label={t('schedules.newPeriodic')}>
      <div className="field">
        <label htmlFor={nameId}>{t('common.name')}</label>
        <input id={nameId} required maxLength={100} value={name} onChange={(e) => setName(e.target.value)} />
      </div>
      <div className="field">
        <label htmlFor={cronId}>{t('schedules.cron')}</label>
        <input
          id={cronId}
          required
          value={cron}
          aria-describedby={cronHelp}
          onChange={(e) => setCron(e.target.value)}
        />
        <span id={cronHelp} className="muted">
          {t('schedules.cronHelp')}
        </span>
      </div>
      {form.picker}
      {invalid && (
        <p role="alert" className="error-note">
          {invalid}
        </p>
      )}
      <p className="muted">{t('schedules.createdDisabled')}</p>
      <div className="form-actions">
        <button type="submit" className="primary" disabled={create.isPending || form.templateId === null}>
          {t('schedules.createPeriodic')}
        </button>
      </div>
      <ErrorNote error={create.error} />
    </form>
  )
}

function NewClocked({ bizId, onDone }: { bizId: number; onDone: () => void }) {
  const { t } = useTranslation()
  const trpc = useTRPC()
  const queryClient = useQueryClient()
  const utc = useStoreValue(utcPreference, (v) => v)
  const form = useScheduleForm(bizId)
  const [name, setName] = useState('')
  const [at, setAt] = useState(() => toLocalInput(Date.now() + 10 * 60_000, utc).slice(0, 16))
  const [invalid, setInvalid] = useState<string | null>(null)
  const nameId = useId()
  const atId = useId()
  const create = useMutation(
    trpc.clocked.create.mutationOptions({
      onSuccess: () => {
        void queryClient.invalidateQueries({ queryKey: trpc.clocked.list.pathKey() })
        onDone()
      },
    }),
  )
  const submit = (e: FormEvent) => {
    e.preventDefault()
    setInvalid(null)
    if (form.templateId === null) return
    const plan = toPlanStartTime(at, utc)
    if (plan === null) return setInvalid(t('schedules.badTime'))
    const collected = form.collect()
    if (!collected.ok) return setInvalid(collected.message)
    create.mutate({
      bk_biz_id: bizId,
      template_id: form.templateId,
      task_name: name.trim(),
      plan_start_time: plan,
      task_parameters: { constants: collected.constants, template_schemes_id: [] },
      template_source: 'project',
    })
  }
  return (
    <form onSubmit={submit} aria-label={t('schedules.newClocked')}>
      <div className="field">
        <label htmlFor={nameId}>{t('schedules.taskName')}</label>
        <input id={nameId} required maxLength={100} value={name} onChange={(e) => setName(e.target.value)} />
      </div>
      <div className="field">
        <label htmlFor={atId}>
          {t('schedules.planStart', { zone: utc ? 'UTC' : t('schedules.yourZone') })}
        </label>
        <input
          id={atId}
          type="datetime-local"
          step={1}
          required
          value={at}
          onChange={(e) => setAt(e.target.value)}
        />
      </div>
      {form.picker}
      {invalid && (
        <p role="alert" className="error-note">
          {invalid}
        </p>
      )}
      <div className="form-actions">
        <button type="submit" className="primary" disabled={create.isPending || form.templateId === null}>
          {t('schedules.createClocked')}
        </button>
      </div>
      <ErrorNote error={create.error} />
    </form>
  )
}

function PeriodicDetails({ bizId, id, canEdit }: { bizId: number; id: number; canEdit: boolean }) {
  const { t } = useTranslation()
  const trpc = useTRPC()
  const queryClient = useQueryClient()
  const info = useQuery(trpc.periodic.get.queryOptions({ bk_biz_id: bizId, task_id: id }))
  const firings = useQuery(trpc.periodic.firings.queryOptions({ bk_biz_id: bizId, task_id: id, limit: 10 }))
  const [cron, setCron] = useState<string | null>(null)
  const cronId = useId()
  const setCronM = useMutation(
    trpc.periodic.setCron.mutationOptions({
      onSuccess: () => {
        setCron(null)
        void queryClient.invalidateQueries({ queryKey: trpc.periodic.pathKey() })
      },
    }),
  )
  const refetch = () => {
    void info.refetch()
    void firings.refetch()
  }
  useRefetchAfter(info.data?.next_run_times.map(parseLegacyTime) ?? [], refetch)
  if (info.isPending) return <Loading />
  if (info.error) return <ErrorNote error={info.error} onRetry={refetch} />
  const p = info.data
  return (
    <Section title={t('schedules.detailsOf', { name: p.name })}>
      <dl className="facts">
        <div>
          <dt>{t('schedules.cron')}</dt>
          <dd>
            <code>{crontab(p.cron)}</code>
          </dd>
        </div>
        <div>
          <dt>{t('common.creator')}</dt>
          <dd>{p.creator}</dd>
        </div>
        <div>
          <dt>{t('schedules.lastRun')}</dt>
          <dd>
            <Time ms={parseLegacyTime(p.last_run_at)} />
          </dd>
        </div>
        <div>
          <dt>{t('schedules.runs')}</dt>
          <dd>{p.total_run_count}</dd>
        </div>
      </dl>
      <h3>{t('schedules.nextTimes')}</h3>
      {p.next_run_times.length === 0 ? (
        <p className="muted">{t('schedules.noNextTimes')}</p>
      ) : (
        <ol aria-label={t('schedules.nextTimes')}>
          {p.next_run_times.map((s) => (
            <li key={s}>
              <Time ms={parseLegacyTime(s)} />
            </li>
          ))}
        </ol>
      )}
      {canEdit && (
        <form
          className="inline-form"
          onSubmit={(e) => {
            e.preventDefault()
            if (cron !== null) setCronM.mutate({ bk_biz_id: bizId, task_id: id, cron: cron.trim() })
          }}
        >
          <label htmlFor={cronId}>{t('schedules.changeCron')}</label>
          <input id={cronId} value={cron ?? crontab(p.cron)} onChange={(e) => setCron(e.target.value)} />
          <button type="submit" disabled={cron === null || setCronM.isPending}>
            {t('schedules.saveCron')}
          </button>
          <ErrorNote error={setCronM.error} />
        </form>
      )}
      <h3>{t('schedules.firings')}</h3>
      {firings.data && firings.data.length === 0 && <p className="muted">{t('schedules.noFirings')}</p>}
      {firings.data && firings.data.length > 0 && (
        <table className="table" aria-label={t('schedules.firings')}>
          <thead>
            <tr>
              <th scope="col">{t('schedules.due')}</th>
              <th scope="col">{t('schedules.task')}</th>
              <th scope="col">{t('common.state')}</th>
            </tr>
          </thead>
          <tbody>
            {firings.data.map((f) => (
              <tr key={f.due_time}>
                <td>
                  <Time ms={parseLegacyTime(f.due_time)} />
                </td>
                <td>
                  {f.task_id !== null ? (
                    <Link to="/projects/$bizId/tasks/$taskId" params={{ bizId, taskId: f.task_id }}>
                      {f.task_name ?? f.task_id}
                    </Link>
                  ) : (
                    <span className="error-text">{f.error}</span>
                  )}
                </td>
                <td>{f.task_state ?? '—'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Section>
  )
}

function PeriodicList({
  bizId,
  canEdit,
  selected,
  onSelect,
}: {
  bizId: number
  canEdit: boolean
  selected: number | undefined
  onSelect: (id: number | undefined) => void
}) {
  const { t } = useTranslation()
  const trpc = useTRPC()
  const queryClient = useQueryClient()
  const list = useQuery(trpc.periodic.list.queryOptions({ bk_biz_id: bizId }))
  const setEnabled = useMutation(
    trpc.periodic.setEnabled.mutationOptions({
      onSettled: () => void queryClient.invalidateQueries({ queryKey: trpc.periodic.pathKey() }),
    }),
  )
  const { refetch } = list
  useRefetchAfter(list.data?.map((p) => parseLegacyTime(p.next_run_at)) ?? [], () => void refetch())
  if (list.isPending) return <Loading />
  if (list.error) return <ErrorNote error={list.error} onRetry={() => void refetch()} />
  if (list.data.length === 0) return <p>{t('schedules.noPeriodic')}</p>
  return (
    <>
      <table className="table" aria-label={t('schedules.periodic')}>
        <thead>
          <tr>
            <th scope="col">{t('common.id')}</th>
            <th scope="col">{t('common.name')}</th>
            <th scope="col">{t('common.template')}</th>
            <th scope="col">{t('schedules.cron')}</th>
            <th scope="col">{t('schedules.enabled')}</th>
            <th scope="col">{t('schedules.nextRun')}</th>
            <th scope="col">{t('schedules.lastRun')}</th>
            <th scope="col">{t('schedules.runs')}</th>
          </tr>
        </thead>
        <tbody>
          {list.data.map((p: Periodic) => (
            <tr key={p.id} data-periodic-id={p.id} aria-selected={selected === p.id}>
              <td>{p.id}</td>
              <th scope="row">
                <button
                  type="button"
                  className="link"
                  aria-expanded={selected === p.id}
                  onClick={() => onSelect(selected === p.id ? undefined : p.id)}
                >
                  {p.name}
                </button>
              </th>
              <td>{p.template_id}</td>
              <td>
                <code>{crontab(p.cron)}</code>
              </td>
              <td>
                <label className="check">
                  <input
                    type="checkbox"
                    role="switch"
                    aria-label={t('schedules.enable', { name: p.name })}
                    checked={p.enabled}
                    aria-checked={p.enabled}
                    disabled={!canEdit || setEnabled.isPending}
                    title={canEdit ? undefined : t('schedules.whyNot')}
                    onChange={(e) =>
                      setEnabled.mutate({ bk_biz_id: bizId, task_id: p.id, enabled: e.target.checked })
                    }
                  />
                  {p.enabled ? t('schedules.on') : t('schedules.off')}
                </label>
              </td>
              <td>
                <Time ms={parseLegacyTime(p.next_run_at)} />
              </td>
              <td>
                <Time ms={parseLegacyTime(p.last_run_at)} />
              </td>
              <td>{p.total_run_count}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <ErrorNote error={setEnabled.error} />
    </>
  )
}

function ClockedList({ bizId, canEdit }: { bizId: number; canEdit: boolean }) {
  const { t } = useTranslation()
  const trpc = useTRPC()
  const queryClient = useQueryClient()
  const list = useQuery(trpc.clocked.list.queryOptions({ bk_biz_id: bizId, offset: 0, limit: 100 }))
  const [deleting, setDeleting] = useState<Clocked | null>(null)
  const remove = useMutation(
    trpc.clocked.delete.mutationOptions({
      onSettled: () => void queryClient.invalidateQueries({ queryKey: trpc.clocked.list.pathKey() }),
    }),
  )
  const { refetch } = list
  useRefetchAfter(
    list.data?.list.filter((c) => c.state === 'not_started').map((c) => parseLegacyTime(c.plan_start_time)) ??
      [],
    () => void refetch(),
  )
  if (list.isPending) return <Loading />
  if (list.error) return <ErrorNote error={list.error} onRetry={() => void refetch()} />
  return (
    <>
      {list.data.list.length === 0 ? (
        <p>{t('schedules.noClocked')}</p>
      ) : (
        <table className="table" aria-label={t('schedules.clocked')}>
          <thead>
            <tr>
              <th scope="col">{t('common.id')}</th>
              <th scope="col">{t('schedules.taskName')}</th>
              <th scope="col">{t('common.template')}</th>
              <th scope="col">{t('schedules.planStartShort')}</th>
              <th scope="col">{t('common.state')}</th>
              <th scope="col">{t('schedules.task')}</th>
              <th scope="col">
                <span className="visually-hidden">{t('common.actions')}</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {list.data.list.map((c) => (
              <tr key={c.id} data-clocked-id={c.id} data-state={c.state}>
                <td>{c.id}</td>
                <th scope="row">{c.task_name}</th>
                <td>{c.template_name || c.template_id}</td>
                <td>
                  <Time ms={parseLegacyTime(c.plan_start_time)} />
                </td>
                <td>
                  {t(`schedules.clockedStates.${c.state}`)}
                  {c.error && <span className="error-text"> — {c.error}</span>}
                </td>
                <td>
                  {c.task_id !== null && (
                    <Link to="/projects/$bizId/tasks/$taskId" params={{ bizId, taskId: c.task_id }}>
                      {t('schedules.openTask', { id: c.task_id })}
                    </Link>
                  )}
                </td>
                <td className="row-actions">
                  <button
                    type="button"
                    className="danger"
                    disabled={!canEdit}
                    title={canEdit ? undefined : t('schedules.whyNot')}
                    aria-label={t('schedules.deleteClocked', { name: c.task_name })}
                    onClick={() => setDeleting(c)}
                  >
                    {t('schedules.delete')}
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <ErrorNote error={remove.error} />
      <ConfirmDialog
        open={deleting !== null}
        title={t('schedules.deleteClocked', { name: deleting?.task_name ?? '' })}
        confirmLabel={t('schedules.delete')}
        danger
        busy={remove.isPending}
        onClose={() => setDeleting(null)}
        onConfirm={() => {
          if (deleting) remove.mutate({ bk_biz_id: bizId, task_id: deleting.id })
          setDeleting(null)
        }}
      >
        <p>{deleting?.state === 'not_started' ? t('schedules.deleteBefore') : t('schedules.deleteAfter')}</p>
      </ConfirmDialog>
    </>
  )
}

/**
 * Periodic tasks (a cron that creates and starts a task at each due time) and clocked tasks (one
 * task at one time) of a project: list, create, enable or disable, next due times, the latest
 * firings with their tasks. The selected periodic task and the open form live in the URL.
 */
export function SchedulesPage() {
  const { t } = useTranslation()
  const { bizId } = route.useParams()
  const search = route.useSearch()
  const navigate = useNavigate({ from: '/projects/$bizId/schedules' })
  const role = useRole(bizId)
  const canEdit = roleAllows(role, 'create_task')
  const set = (patch: Partial<typeof search>) =>
    void navigate({ search: (prev) => ({ ...prev, ...patch }), replace: true })
  return (
    <div className="schedules">
      <div className="page-head">
        <h1>{t('schedules.title')}</h1>
      </div>
      <Section
        title={t('schedules.periodic')}
        actions={
          <button
            type="button"
            aria-expanded={search.create === 'periodic'}
            disabled={!canEdit}
            title={canEdit ? undefined : t('schedules.whyNot')}
            onClick={() => set({ create: search.create === 'periodic' ? undefined : 'periodic' })}
          >
            {t('schedules.newPeriodic')}
          </button>
        }
      >
        {search.create === 'periodic' && (
          <NewPeriodic bizId={bizId} onDone={(id) => set({ create: undefined, periodic: id })} />
        )}
        <PeriodicList
          bizId={bizId}
          canEdit={canEdit}
          selected={search.periodic}
          onSelect={(id) => set({ periodic: id })}
        />
      </Section>
      {search.periodic !== undefined && (
        <PeriodicDetails key={search.periodic} bizId={bizId} id={search.periodic} canEdit={canEdit} />
      )}
      <Section
        title={t('schedules.clocked')}
        actions={
          <button
            type="button"
            aria-expanded={search.create === 'clocked'}
            disabled={!canEdit}
            title={canEdit ? undefined : t('schedules.whyNot')}
            onClick={() => set({ create: search.create === 'clocked' ? undefined : 'clocked' })}
          >
            {t('schedules.newClocked')}
          </button>
        }
      >
        {search.create === 'clocked' && (
          <NewClocked bizId={bizId} onDone={() => set({ create: undefined })} />
        )}
        <ClockedList bizId={bizId} canEdit={canEdit} />
      </Section>
    </div>
  )
}
