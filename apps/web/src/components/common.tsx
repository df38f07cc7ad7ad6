import type { ReactNode } from 'react'
import { useTranslation } from 'react-i18next'
import { utcPreference } from '../lib/prefs'
import { formatDuration, formatTime } from '../lib/time'
import { useStoreValue } from '../lib/value-store'
import { refusalOf } from '../trpc'

/** A time in the user's zone, or in UTC when they asked for it. */
export function Time({ ms }: { ms: number | null | undefined }) {
  const utc = useStoreValue(utcPreference, (v) => v)
  if (ms === null || ms === undefined) return <span className="muted">—</span>
  return <time dateTime={new Date(ms).toISOString()}>{formatTime(ms, utc)}</time>
}

export function Duration({ from, to }: { from: number | null | undefined; to: number | null | undefined }) {
  if (from === null || from === undefined) return <span className="muted">—</span>
  return <span>{formatDuration((to ?? Date.now()) - from)}</span>
}

/** A state exactly as the API names it, in its colour. */
export function StateBadge({ state }: { state: string | null | undefined }) {
  if (!state) return <span className="badge badge-none">—</span>
  return (
    <span className={`badge state-${state}`} data-state={state}>
      {state}
    </span>
  )
}

/** A refused or failed call: the legacy code and the server's message, as it sent them. */
export function ErrorNote({ error, onRetry }: { error: unknown; onRetry?: () => void }) {
  const { t } = useTranslation()
  if (!error) return null
  const r = refusalOf(error)
  return (
    <div className="error-note" role="alert">
      {r.network
        ? t('common.noAnswer', { message: r.message })
        : t('common.refused', { code: r.code ?? '—', message: r.message })}
      {onRetry && (
        <button type="button" className="link" onClick={onRetry}>
          {t('common.retry')}
        </button>
      )}
    </div>
  )
}

export function Loading() {
  const { t } = useTranslation()
  return <output className="muted loading">{t('app.loading')}</output>
}

export function JsonView({ value, label }: { value: unknown; label: string }) {
  return (
    <pre className="json" title={label}>
      {value === undefined ? '—' : JSON.stringify(value, null, 2)}
    </pre>
  )
}

export function Section({
  title,
  children,
  actions,
}: {
  title: string
  children: ReactNode
  actions?: ReactNode
}) {
  return (
    <section className="section" aria-label={title}>
      <div className="section-head">
        <h2>{title}</h2>
        {actions}
      </div>
      {children}
    </section>
  )
}
