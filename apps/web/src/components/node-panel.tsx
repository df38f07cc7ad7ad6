import { useSyncExternalStore } from 'react'
import { useTranslation } from 'react-i18next'
import type { DrawNode } from '../lib/graph'
import type { TaskStore } from '../lib/task-live'
import { Duration, JsonView, StateBadge, Time } from './common'

/**
 * The details of the selected node, beside the canvas: its live state, times, retries and
 * error, and what the tree gives it as inputs.
 */
export function NodePanel({
  node,
  store,
  tree,
  onClose,
}: {
  node: DrawNode
  store: TaskStore
  tree: unknown
  onClose: () => void
}) {
  const { t } = useTranslation()
  const live = useSyncExternalStore(store.subscribe, () => store.get().nodes[node.id])
  const wont = useSyncExternalStore(store.subscribe, () => store.derived().wontRun.has(node.id))
  const data = (tree as { activities?: Record<string, { component?: { data?: unknown } }> }).activities?.[
    node.id
  ]?.component?.data
  const title = node.name || t(`node.kinds.${node.kind}`)
  return (
    <aside className="node-panel" aria-label={t('node.panel')}>
      <div className="panel-head">
        <h2>{title}</h2>
        <button type="button" className="icon" aria-label={t('node.close')} onClick={onClose}>
          ×
        </button>
      </div>
      <dl className="facts">
        <div>
          <dt>{t('common.id')}</dt>
          <dd>
            <code>{node.id}</code>
          </dd>
        </div>
        <div>
          <dt>{t('node.kind')}</dt>
          <dd>{t(`node.kinds.${node.kind}`)}</dd>
        </div>
        {node.code && (
          <div>
            <dt>{t('node.code')}</dt>
            <dd>
              <code>{node.code}</code>
            </dd>
          </div>
        )}
        <div>
          <dt>{t('common.state')}</dt>
          <dd>
            <StateBadge state={live?.state} />
          </dd>
        </div>
        <div>
          <dt>{t('common.started')}</dt>
          <dd>
            <Time ms={live?.startedAt} />
          </dd>
        </div>
        <div>
          <dt>{t('common.finished')}</dt>
          <dd>
            <Time ms={live?.finishedAt} />
          </dd>
        </div>
        <div>
          <dt>{t('common.duration')}</dt>
          <dd>
            <Duration from={live?.startedAt} to={live?.finishedAt} />
          </dd>
        </div>
        {live && live.retry > 0 && (
          <div>
            <dt>{t('node.retries')}</dt>
            <dd>{live.retry}</dd>
          </div>
        )}
        {live?.skip && (
          <div>
            <dt>{t('node.skipped')}</dt>
            <dd>✓</dd>
          </div>
        )}
        {live?.errorIgnored && (
          <div>
            <dt>{t('node.errorIgnored')}</dt>
            <dd>✓</dd>
          </div>
        )}
      </dl>
      {!live && <p className="muted">{wont ? t('node.wontRun') : t('node.notReached')}</p>}
      {live?.error && (
        <section aria-label={t('node.error')}>
          <h3>{t('node.error')}</h3>
          <pre className="error-text">{live.error}</pre>
        </section>
      )}
      {data !== undefined && (
        <section aria-label={t('node.inputs')}>
          <h3>{t('node.inputs')}</h3>
          <JsonView value={data} label={t('node.inputs')} />
        </section>
      )}
    </aside>
  )
}
