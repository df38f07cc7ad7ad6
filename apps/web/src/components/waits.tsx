import { useQuery } from '@tanstack/react-query'
import { useEffect } from 'react'
import { useTranslation } from 'react-i18next'
import { utcPreference } from '../lib/prefs'
import { formatTime } from '../lib/time'
import { useStoreValue } from '../lib/value-store'
import { useTRPC } from '../trpc'
import { ErrorNote, Loading, Section } from './common'

/** "Why is it waiting?": per node in line to run, what it waits for, asked again after each burst of events. */
export function WaitsPanel({
  bizId,
  taskId,
  eventCount,
  onSelect,
}: {
  bizId: number
  taskId: number
  /** refetch when it changes */
  eventCount: number
  onSelect: (nodeId: string) => void
}) {
  const { t } = useTranslation()
  const trpc = useTRPC()
  const utc = useStoreValue(utcPreference, (v) => v)
  const waits = useQuery(trpc.task.waits.queryOptions({ bk_biz_id: bizId, task_id: taskId }))
  const { refetch } = waits
  useEffect(() => {
    if (eventCount > 0) void refetch()
  }, [eventCount, refetch])
  const at = (ms: number | null) => formatTime(ms, utc)
  return (
    <Section title={t('waits.title')}>
      {waits.isPending ? (
        <Loading />
      ) : waits.error ? (
        <ErrorNote error={waits.error} onRetry={() => void refetch()} />
      ) : (
        <div className="waits" aria-live="polite">
          <p className="muted">{t('waits.checked', { at: at(waits.data.checked_at) })}</p>
          {waits.data.state === 'SUSPENDED' && <p>{t('waits.paused')}</p>}
          {waits.data.state !== 'RUNNING' && waits.data.state !== 'SUSPENDED' ? (
            <p>{t('waits.notLive', { state: waits.data.state })}</p>
          ) : waits.data.waits.length === 0 ? (
            <p>{t('waits.nothing')}</p>
          ) : (
            <ul>
              {waits.data.waits.map((w) => (
                <li key={w.node_id} data-reason={w.reason}>
                  <button type="button" className="link" onClick={() => onSelect(w.node_id)}>
                    {w.name || w.node_id}
                  </button>
                  : {t(`waits.${w.reason}`, { since: at(w.since), due: at(w.due_at) })}
                  {w.error && <span className="error-text"> — {w.error}</span>}
                </li>
              ))}
            </ul>
          )}
        </div>
      )}
    </Section>
  )
}
