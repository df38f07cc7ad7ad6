import {
  DISPLAYED_TASK_STATES,
  type DisplayedTaskState,
  roleAllows,
  TASK_ACTIONS,
  type TaskAction,
} from '@stdops/core'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { getRouteApi, Link, useNavigate } from '@tanstack/react-router'
import { useSubscription } from '@trpc/tanstack-react-query'
import { type FormEvent, useEffect, useMemo, useState } from 'react'
import { useTranslation } from 'react-i18next'
import { useApp } from '../app-context'
import { ErrorNote, Loading, StateBadge, Time } from '../components/common'
import { ConfirmDialog } from '../components/confirm'
import { useRole } from '../components/shell'
import { applicableTo } from '../lib/actions'
import { utcPreference } from '../lib/prefs'
import { dayBoundary } from '../lib/time'
import { useStoreValue } from '../lib/value-store'
import type { TasksSearch } from '../routes'
import { type Outputs, useTRPC } from '../trpc'

const route = getRouteApi('/projects/$bizId/tasks')
type SearchResult = Outputs['task']['search']
const BULK_ACTIONS = TASK_ACTIONS.filter((a): a is Exclude<TaskAction, 'start'> => a !== 'start')

/** The server's filter for what the URL says (days read in the zone the page shows). */
function filterOf(bizId: number, s: TasksSearch, utc: boolean) {
  const after = s.from ? dayBoundary(s.from, false, utc) : null
  const before = s.to ? dayBoundary(s.to, true, utc) : null
  return {
    bk_biz_id: bizId,
    ...(s.states && s.states.length > 0 ? { states: s.states } : {}),
    ...(s.template ? { template_id: s.template } : {}),
    ...(s.creator ? { creator: s.creator } : {}),
    ...(s.text ? { text: s.text } : {}),
    ...(after !== null ? { created_after: after } : {}),
    ...(before !== null ? { created_before: before } : {}),
  }
}

function Filters({ bizId, search }: { bizId: number; search: TasksSearch }) {
  const { t } = useTranslation()
  const trpc = useTRPC()
  const navigate = useNavigate({ from: '/projects/$bizId/tasks' })
  const templates = useQuery(trpc.template.list.queryOptions({ bk_biz_id: bizId }))
  const [draft, setDraft] = useState({
    text: search.text ?? '',
    creator: search.creator ?? '',
    template: search.template ? String(search.template) : '',
    from: search.from ?? '',
    to: search.to ?? '',
  })
  useEffect(() => {
    setDraft({
      text: search.text ?? '',
      creator: search.creator ?? '',
      template: search.template ? String(search.template) : '',
      from: search.from ?? '',
      to: search.to ?? '',
    })
  }, [search.text, search.creator, search.template, search.from, search.to])
  const apply = (e: FormEvent) => {
    e.preventDefault()
    void navigate({
      search: (prev) => ({
        ...prev,
        text: draft.text.trim() || undefined,
        creator: draft.creator.trim() || undefined,
        template: draft.template ? Number(draft.template) : undefined,
        from: draft.from || undefined,
        to: draft.to || undefined,
        page: undefined,
      }),
    })
  }
  return (
    <form className="filters" onSubmit={apply} aria-label={t('tasks.filters')}>
      <label>
        {t('tasks.text')}
        <input
          type="search"
          value={draft.text}
          onChange={(e) => setDraft({ ...draft, text: e.target.value })}
        />
      </label>
      <label>
        {t('tasks.template')}
        <select value={draft.template} onChange={(e) => setDraft({ ...draft, template: e.target.value })}>
          <option value="">{t('tasks.anyTemplate')}</option>
          {templates.data?.map((tp) => (
            <option key={tp.id} value={tp.id}>
              {tp.name}
            </option>
          ))}
        </select>
      </label>
      <label>
        {t('tasks.creator')}
        <input value={draft.creator} onChange={(e) => setDraft({ ...draft, creator: e.target.value })} />
      </label>
      <label>
        {t('tasks.from')}
        <input
          type="date"
          value={draft.from}
          onChange={(e) => setDraft({ ...draft, from: e.target.value })}
        />
      </label>
      <label>
        {t('tasks.to')}
        <input type="date" value={draft.to} onChange={(e) => setDraft({ ...draft, to: e.target.value })} />
      </label>
      <button type="submit" className="primary">
        {t('tasks.apply')}
      </button>
      <Link to="/projects/$bizId/tasks" params={{ bizId }} search={{}} className="button">
        {t('tasks.clear')}
      </Link>
    </form>
  )
}

function StateChips({ search, counts }: { search: TasksSearch; counts: SearchResult['counts'] | undefined }) {
  const { t } = useTranslation()
  const navigate = useNavigate({ from: '/projects/$bizId/tasks' })
  const chosen = new Set(search.states ?? [])
  const toggle = (s: DisplayedTaskState) => {
    const next = new Set(chosen)
    if (next.has(s)) next.delete(s)
    else next.add(s)
    void navigate({
      search: (prev) => ({
        ...prev,
        states: next.size > 0 ? DISPLAYED_TASK_STATES.filter((x) => next.has(x)) : undefined,
        page: undefined,
      }),
    })
  }
  return (
    <fieldset className="chips">
      <legend>{t('tasks.stateFilter')}</legend>
      {DISPLAYED_TASK_STATES.map((s) => (
        <button
          key={s}
          type="button"
          aria-pressed={chosen.has(s)}
          className={`chip state-${s}`}
          onClick={() => toggle(s)}
        >
          {s} <span className="chip-count">{counts?.[s] ?? '·'}</span>
        </button>
      ))}
    </fieldset>
  )
}

type BulkResult = Outputs['task']['operateMany']

export function TasksPage() {
  const { t } = useTranslation()
  const trpc = useTRPC()
  const queryClient = useQueryClient()
  const { connection } = useApp()
  const { bizId } = route.useParams()
  const search = route.useSearch()
  const navigate = useNavigate({ from: '/projects/$bizId/tasks' })
  const utc = useStoreValue(utcPreference, (v) => v)
  const role = useRole(bizId)
  const size = search.size ?? 20
  const page = search.page ?? 1
  const filter = useMemo(() => filterOf(bizId, search, utc), [bizId, search, utc])
  const listOptions = trpc.task.search.queryOptions({ ...filter, offset: (page - 1) * size, limit: size })
  const list = useQuery(listOptions)
  // The selection belongs to one page of one search: another page starts with none.
  const pageKey = JSON.stringify([page, size, filter])
  const [selection, setSelection] = useState<{ key: string; ids: Set<number> }>({
    key: pageKey,
    ids: new Set(),
  })
  const selected = selection.key === pageKey ? selection.ids : new Set<number>()
  const setSelected = (ids: Set<number>) => setSelection({ key: pageKey, ids })
  const [pending, setPending] = useState<Exclude<TaskAction, 'start'> | null>(null)
  const [results, setResults] = useState<BulkResult | null>(null)

  // Rows and counts stay current from the server's change stream (no polling), closed while the
  // browser says it is offline and opened again (with fresh rows and counts) when it is back.
  const browserOnline = useStoreValue(connection.browserOnline, (v) => v)
  const ids = list.data?.list.map((r) => r.id) ?? []
  const changes = useSubscription(
    trpc.task.changes.subscriptionOptions(
      { ...filter, task_ids: ids },
      {
        enabled: list.isSuccess && browserOnline,
        onData: (msg) => {
          if (msg.type === 'rows') {
            const byId = new Map(msg.rows.map((r) => [r.id, r]))
            queryClient.setQueryData(listOptions.queryKey, (old) =>
              old ? { ...old, list: old.list.map((r) => byId.get(r.id) ?? r) } : old,
            )
          } else {
            const old = queryClient.getQueryData(listOptions.queryKey)
            if (!old) return
            const chosen: readonly DisplayedTaskState[] = filter.states ?? DISPLAYED_TASK_STATES
            const matching = chosen.reduce((n, s) => n + msg.counts[s], 0)
            queryClient.setQueryData(listOptions.queryKey, { ...old, counts: msg.counts })
            if (matching !== old.count) void queryClient.invalidateQueries({ queryKey: listOptions.queryKey })
          }
        },
      },
    ),
  )
  useEffect(() => {
    if (changes.status === 'connecting' && changes.error) connection.offline('stream')
    if (changes.status === 'pending') connection.online('stream')
  }, [changes.status, changes.error, connection])
  useEffect(() => () => connection.online('stream'), [connection])

  const operate = useMutation(
    trpc.task.operateMany.mutationOptions({
      onSuccess: (r) => {
        setResults(r)
        setSelected(new Set())
        setPending(null)
        void queryClient.invalidateQueries({ queryKey: trpc.task.search.pathKey() })
      },
    }),
  )

  const rows = list.data?.list ?? []
  const pages = Math.max(1, Math.ceil((list.data?.count ?? 0) / size))
  const allOnPage = rows.length > 0 && rows.every((r) => selected.has(r.id))
  const canOperate = roleAllows(role, 'task_operate')
  const selectedStates = rows.filter((r) => selected.has(r.id)).map((r) => r.state)

  return (
    <div>
      <div className="page-head">
        <h1>{t('tasks.title')}</h1>
        <Link to="/projects/$bizId/templates" params={{ bizId }} className="button">
          {t('tasks.newTask')}
        </Link>
      </div>
      <Filters bizId={bizId} search={search} />
      <StateChips search={search} counts={list.data?.counts} />
      {list.error && <ErrorNote error={list.error} onRetry={() => void list.refetch()} />}
      <div className="bulkbar" role="toolbar" aria-label={t('tasks.bulk')}>
        <span>{t('tasks.selected', { count: selected.size })}</span>
        {BULK_ACTIONS.map((a) => (
          <button
            key={a}
            type="button"
            disabled={selected.size === 0 || !canOperate}
            title={canOperate ? undefined : role ? t('actions.whyRole', { role }) : t('actions.whyNoRole')}
            onClick={() => {
              setResults(null)
              setPending(a)
            }}
          >
            {t(`actions.${a}`)}
          </button>
        ))}
        <span className="spacer" />
        <output>{list.data ? t('tasks.total', { count: list.data.count }) : ''}</output>
      </div>
      {list.isPending ? (
        <Loading />
      ) : rows.length === 0 ? (
        <p>{t('tasks.empty')}</p>
      ) : (
        <table className="table" aria-label={t('tasks.table')}>
          <thead>
            <tr>
              <th scope="col">
                <input
                  type="checkbox"
                  aria-label={t('tasks.selectAll')}
                  checked={allOnPage}
                  onChange={(e) => setSelected(e.target.checked ? new Set(rows.map((r) => r.id)) : new Set())}
                />
              </th>
              <th scope="col">{t('common.id')}</th>
              <th scope="col">{t('common.name')}</th>
              <th scope="col">{t('common.state')}</th>
              <th scope="col">{t('common.template')}</th>
              <th scope="col">{t('common.creator')}</th>
              <th scope="col">{t('common.created')}</th>
              <th scope="col">{t('common.started')}</th>
              <th scope="col">{t('common.finished')}</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr key={r.id} data-task-id={r.id} data-state={r.state}>
                <td>
                  <input
                    type="checkbox"
                    aria-label={t('tasks.select', { id: r.id })}
                    checked={selected.has(r.id)}
                    onChange={(e) => {
                      const next = new Set(selected)
                      if (e.target.checked) next.add(r.id)
                      else next.delete(r.id)
                      setSelected(next)
                    }}
                  />
                </td>
                <td>{r.id}</td>
                <th scope="row">
                  <Link to="/projects/$bizId/tasks/$taskId" params={{ bizId, taskId: r.id }}>
                    {r.name}
                  </Link>
                </th>
                <td>
                  <StateBadge state={r.state} />
                </td>
                <td>{r.template_name ?? '—'}</td>
                <td>{r.creator}</td>
                <td>
                  <Time ms={r.created_at} />
                </td>
                <td>
                  <Time ms={r.started_at} />
                </td>
                <td>
                  <Time ms={r.finished_at} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <nav className="pager" aria-label={t('tasks.page', { page, pages })}>
        <button
          type="button"
          disabled={page <= 1}
          onClick={() =>
            void navigate({ search: (prev) => ({ ...prev, page: page - 1 > 1 ? page - 1 : undefined }) })
          }
        >
          {t('tasks.prev')}
        </button>
        <span>{t('tasks.page', { page, pages })}</span>
        <button
          type="button"
          disabled={page >= pages}
          onClick={() => void navigate({ search: (prev) => ({ ...prev, page: page + 1 }) })}
        >
          {t('tasks.next')}
        </button>
        <label>
          {t('tasks.pageSize')}
          <select
            value={size}
            onChange={(e) =>
              void navigate({
                search: (prev) => ({
                  ...prev,
                  size: Number(e.target.value) as 10 | 20 | 50 | 100,
                  page: undefined,
                }),
              })
            }
          >
            {[10, 20, 50, 100].map((n) => (
              <option key={n} value={n}>
                {n}
              </option>
            ))}
          </select>
        </label>
      </nav>
      {results && (
        <section aria-label={t('tasks.results')} className="results">
          <h2>{t('tasks.results')}</h2>
          <ul>
            {results.map((r) => (
              <li key={r.task_id} data-task-id={r.task_id} className={r.result ? 'ok' : 'refused'}>
                <Link to="/projects/$bizId/tasks/$taskId" params={{ bizId, taskId: r.task_id }}>
                  #{r.task_id}
                </Link>{' '}
                {r.result
                  ? t('tasks.resultOk', { state: r.state })
                  : t('common.refused', { code: r.code, message: r.message })}
              </li>
            ))}
          </ul>
        </section>
      )}
      <ConfirmDialog
        open={pending !== null}
        title={
          pending ? t('tasks.confirmTitle', { action: t(`actions.${pending}`), count: selected.size }) : ''
        }
        confirmLabel={pending ? t(`actions.${pending}`) : ''}
        danger={pending === 'revoke'}
        busy={operate.isPending}
        onClose={() => setPending(null)}
        onConfirm={() =>
          pending && operate.mutate({ bk_biz_id: bizId, task_ids: [...selected], action: pending })
        }
      >
        <p>
          {pending &&
            t('tasks.confirmBody', {
              applicable: applicableTo(pending, selectedStates),
            })}
        </p>
        {operate.error && <ErrorNote error={operate.error} />}
      </ConfirmDialog>
    </div>
  )
}
