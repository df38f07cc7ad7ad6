import { useQuery } from '@tanstack/react-query'
import { Link, useNavigate } from '@tanstack/react-router'
import { useDeferredValue, useEffect, useId, useMemo, useState, useSyncExternalStore } from 'react'
import { useTranslation } from 'react-i18next'
import type { DrawGraph } from '../lib/graph'
import type { LiveEvent, TaskStore } from '../lib/task-live'
import { parseLegacyTime } from '../lib/time'
import { useThrottled } from '../lib/use-task-events'
import { TASK_TABS, type TaskSearch, type TaskTab } from '../routes'
import { useTRPC } from '../trpc'
import { ErrorNote, JsonView, Loading, StateBadge, Time } from './common'

function eventDetail(e: LiveEvent): string {
  if (e.data === null || e.data === undefined) return ''
  const err = (e.data as { error?: unknown }).error
  if (typeof err === 'string') return err
  return JSON.stringify(e.data)
}

function EventsTab({ store, graph, search }: { store: TaskStore; graph: DrawGraph; search: TaskSearch }) {
  const { t } = useTranslation()
  const navigate = useNavigate({ from: '/projects/$bizId/tasks/$taskId' })
  const events = useDeferredValue(useSyncExternalStore(store.subscribe, () => store.get().events))
  const [q, setQ] = useState(search.q ?? '')
  useEffect(() => setQ(search.q ?? ''), [search.q])
  const setSearch = (patch: Partial<TaskSearch>) =>
    void navigate({ search: (prev) => ({ ...prev, ...patch }), replace: true })
  const nameOf = (id: string | null) => (id === null ? t('events.theTask') : graph.byId.get(id)?.name || id)
  const shown = useMemo(() => {
    const needle = (search.q ?? '').toLowerCase()
    const name = (id: string | null) => (id === null ? '' : (graph.byId.get(id)?.name ?? ''))
    return events.filter((e) => {
      if (search.failures && e.state !== 'FAILED') return false
      if (search.nodeEvents && search.node && e.node_id !== search.node) return false
      if (!needle) return true
      return `${e.node_id ?? ''} ${name(e.node_id)} ${e.state} ${eventDetail(e)}`
        .toLowerCase()
        .includes(needle)
    })
  }, [events, search.failures, search.nodeEvents, search.node, search.q, graph])
  return (
    <div>
      <div className="tab-tools">
        <label className="check">
          <input
            type="checkbox"
            checked={search.failures ?? false}
            onChange={(e) => setSearch({ failures: e.target.checked || undefined })}
          />
          {t('events.failuresOnly')}
        </label>
        <label className="check">
          <input
            type="checkbox"
            disabled={!search.node}
            checked={search.nodeEvents ?? false}
            onChange={(e) => setSearch({ nodeEvents: e.target.checked || undefined })}
          />
          {t('events.onlyNode')}
        </label>
        <form
          onSubmit={(e) => {
            e.preventDefault()
            setSearch({ q: q.trim() || undefined })
          }}
        >
          <input
            type="search"
            aria-label={t('events.filter')}
            placeholder={t('events.filter')}
            value={q}
            onChange={(e) => setQ(e.target.value)}
            onBlur={() => setSearch({ q: q.trim() || undefined })}
          />
        </form>
        <output className="muted">{t('events.count', { shown: shown.length, count: events.length })}</output>
      </div>
      {shown.length === 0 ? (
        <p>{t('events.empty')}</p>
      ) : (
        <table className="table events" aria-label={t('task.tabEvents')}>
          <thead>
            <tr>
              <th scope="col">{t('events.seq')}</th>
              <th scope="col">{t('events.time')}</th>
              <th scope="col">{t('events.subject')}</th>
              <th scope="col">{t('common.state')}</th>
              <th scope="col">{t('events.detail')}</th>
            </tr>
          </thead>
          <tbody>
            {shown.map((e) => (
              <tr key={e.seq} data-seq={e.seq}>
                <td className="seq">{e.seq}</td>
                <td>
                  <Time ms={e.created_at} />
                </td>
                <td>
                  {e.node_id === null ? (
                    nameOf(null)
                  ) : (
                    <Link
                      from="/projects/$bizId/tasks/$taskId"
                      search={(prev) => ({ ...prev, node: e.node_id ?? undefined })}
                    >
                      {nameOf(e.node_id)}
                    </Link>
                  )}
                </td>
                <td>
                  <StateBadge state={e.state} />
                </td>
                <td className="detail">{eventDetail(e)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  )
}

function RecordsTab({ bizId, taskId, eventCount }: { bizId: number; taskId: number; eventCount: number }) {
  const { t } = useTranslation()
  const trpc = useTRPC()
  const records = useQuery(trpc.task.records.queryOptions({ bk_biz_id: bizId, task_id: taskId }))
  const { refetch } = records
  const tick = useThrottled(eventCount, 500)
  useEffect(() => {
    if (tick > 0) void refetch()
  }, [tick, refetch])
  if (records.isPending) return <Loading />
  if (records.error) return <ErrorNote error={records.error} onRetry={() => void refetch()} />
  if (records.data.length === 0) return <p>{t('records.empty')}</p>
  return (
    <table className="table" aria-label={t('task.tabRecords')}>
      <thead>
        <tr>
          <th scope="col">{t('common.id')}</th>
          <th scope="col">{t('records.type')}</th>
          <th scope="col">{t('records.operator')}</th>
          <th scope="col">{t('records.node')}</th>
          <th scope="col">{t('records.source')}</th>
          <th scope="col">{t('records.date')}</th>
        </tr>
      </thead>
      <tbody>
        {records.data.map((r) => (
          <tr key={r.id}>
            <td>{r.id}</td>
            <td>{r.operate_type}</td>
            <td>{r.operator}</td>
            <td>{r.node_id || '—'}</td>
            <td>{r.operate_source}</td>
            <td>
              <Time ms={parseLegacyTime(r.operate_date)} />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  )
}

function DataTab({ bizId, taskId, eventCount }: { bizId: number; taskId: number; eventCount: number }) {
  const { t } = useTranslation()
  const trpc = useTRPC()
  const detail = useQuery(trpc.task.detail.queryOptions({ bk_biz_id: bizId, task_id: taskId }))
  const { refetch } = detail
  const tick = useThrottled(eventCount, 1000)
  useEffect(() => {
    if (tick > 0) void refetch()
  }, [tick, refetch])
  if (detail.isPending) return <Loading />
  if (detail.error) return <ErrorNote error={detail.error} onRetry={() => void refetch()} />
  const constants = Object.values(
    (detail.data.constants ?? {}) as Record<string, { key?: string; name?: string; value?: unknown }>,
  )
  const outputs = detail.data.outputs ?? []
  return (
    <div className="data-tab">
      <section aria-label={t('data.constants')}>
        <h3>{t('data.constants')}</h3>
        {constants.length === 0 ? (
          <p>{t('data.empty')}</p>
        ) : (
          <table className="table">
            <thead>
              <tr>
                <th scope="col">{t('data.key')}</th>
                <th scope="col">{t('common.name')}</th>
                <th scope="col">{t('data.value')}</th>
              </tr>
            </thead>
            <tbody>
              {constants.map((c) => (
                <tr key={c.key}>
                  <td>
                    <code>{c.key}</code>
                  </td>
                  <td>{c.name ?? ''}</td>
                  <td>
                    <code>{typeof c.value === 'string' ? c.value : JSON.stringify(c.value)}</code>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      <section aria-label={t('data.outputs')}>
        <h3>{t('data.outputs')}</h3>
        {outputs.length === 0 ? (
          <p>{t('data.empty')}</p>
        ) : (
          <JsonView value={detail.data.outputs} label={t('data.outputs')} />
        )}
      </section>
    </div>
  )
}

/** Events, operate records, constants and outputs; the chosen tab is in the URL. */
export function TaskTabs({
  bizId,
  taskId,
  store,
  graph,
  search,
}: {
  bizId: number
  taskId: number
  store: TaskStore
  graph: DrawGraph
  search: TaskSearch
}) {
  const { t } = useTranslation()
  const id = useId()
  const tab: TaskTab = search.tab ?? 'events'
  const eventCount = useSyncExternalStore(store.subscribe, () => store.get().events.length)
  const labels: Record<TaskTab, string> = {
    events: t('task.tabEvents'),
    records: t('task.tabRecords'),
    data: t('task.tabData'),
  }
  return (
    <section className="tabs">
      <div role="tablist" aria-label={t('task.tabs')}>
        {TASK_TABS.map((k) => (
          <Link
            key={k}
            role="tab"
            id={`${id}-${k}`}
            aria-selected={tab === k}
            aria-controls={`${id}-panel`}
            from="/projects/$bizId/tasks/$taskId"
            search={(prev) => ({ ...prev, tab: k === 'events' ? undefined : k })}
            replace
          >
            {labels[k]}
          </Link>
        ))}
      </div>
      <div role="tabpanel" id={`${id}-panel`} aria-labelledby={`${id}-${tab}`}>
        {tab === 'events' && <EventsTab store={store} graph={graph} search={search} />}
        {tab === 'records' && <RecordsTab bizId={bizId} taskId={taskId} eventCount={eventCount} />}
        {tab === 'data' && <DataTab bizId={bizId} taskId={taskId} eventCount={eventCount} />}
      </div>
    </section>
  )
}
