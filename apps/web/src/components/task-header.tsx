import type { Role, TaskAction, TaskState } from '@stdops/core'
import { useMutation } from '@tanstack/react-query'
import { useId, useState } from 'react'
import { useTranslation } from 'react-i18next'
import { type Availability, taskActions } from '../lib/actions'
import { useTRPC } from '../trpc'
import { Duration, ErrorNote, StateBadge, Time } from './common'
import { ConfirmDialog } from './confirm'

export interface HeaderTask {
  id: number
  name: string
  creator: string
  executor: string
  state: TaskState | null
  displayed: TaskState | 'FAILED' | null
  createdAt: number | null
  startedAt: number | null
  finishedAt: number | null
}

function ActionButton({ a, onRun }: { a: Availability; onRun: (action: TaskAction) => void }) {
  const { t } = useTranslation()
  const whyId = useId()
  const why = a.enabled
    ? null
    : a.why.kind === 'role'
      ? a.why.role
        ? t('actions.whyRole', { role: a.why.role })
        : t('actions.whyNoRole')
      : t('actions.whyState', { message: a.why.message })
  return (
    <span className="action">
      <button
        type="button"
        className={a.action === 'revoke' ? 'danger' : a.action === 'start' ? 'primary' : ''}
        disabled={!a.enabled}
        aria-describedby={why ? whyId : undefined}
        title={why ?? undefined}
        onClick={() => onRun(a.action)}
      >
        {t(`actions.${a.action}`)}
      </button>
      {why && (
        <span id={whyId} className="visually-hidden">
          {why}
        </span>
      )}
    </span>
  )
}

/**
 * The task's header: state, times, people, and the four task actions, each enabled exactly when
 * the API would accept it (the state machine and the role check of core), a disabled one saying
 * why. Revoke asks first. A refusal shows the legacy code and message.
 */
export function TaskHeader({
  bizId,
  task,
  role,
  failedNode,
  onJumpToFailed,
  waitsOpen,
  onToggleWaits,
}: {
  bizId: number
  task: HeaderTask
  role: Role | null
  failedNode: string | null
  onJumpToFailed: () => void
  waitsOpen: boolean
  onToggleWaits: () => void
}) {
  const { t } = useTranslation()
  const trpc = useTRPC()
  const [confirming, setConfirming] = useState(false)
  const operate = useMutation(trpc.task.operate.mutationOptions())
  const start = useMutation(trpc.task.start.mutationOptions())
  const run = (action: TaskAction) => {
    operate.reset()
    start.reset()
    if (action === 'revoke') return setConfirming(true)
    if (action === 'start') start.mutate({ bk_biz_id: bizId, task_id: task.id })
    else operate.mutate({ bk_biz_id: bizId, task_id: task.id, action })
  }
  const live = task.state === 'RUNNING' || task.state === 'SUSPENDED'
  return (
    <section className="task-header" aria-label={t('task.header')}>
      <div className="task-title">
        <h1>{t('task.title', { id: task.id, name: task.name })}</h1>
        <StateBadge state={task.displayed} />
      </div>
      <dl className="facts">
        <div>
          <dt>{t('common.created')}</dt>
          <dd>
            <Time ms={task.createdAt} />
          </dd>
        </div>
        <div>
          <dt>{t('common.started')}</dt>
          <dd>
            <Time ms={task.startedAt} />
          </dd>
        </div>
        <div>
          <dt>{t('common.finished')}</dt>
          <dd>
            <Time ms={task.finishedAt} />
          </dd>
        </div>
        <div>
          <dt>{t('common.duration')}</dt>
          <dd>
            <Duration from={task.startedAt} to={task.finishedAt} />
          </dd>
        </div>
        <div>
          <dt>{t('common.creator')}</dt>
          <dd>{task.creator}</dd>
        </div>
        <div>
          <dt>{t('common.executor')}</dt>
          <dd>{task.executor || '—'}</dd>
        </div>
      </dl>
      <div className="task-actions">
        {taskActions(task.state, role).map((a) => (
          <ActionButton key={a.action} a={a} onRun={run} />
        ))}
        {failedNode && (
          <button type="button" onClick={onJumpToFailed}>
            {t('task.jumpToFailed')}
          </button>
        )}
        {live && (
          <button type="button" aria-expanded={waitsOpen} onClick={onToggleWaits}>
            {t('task.waitsButton')}
          </button>
        )}
      </div>
      <ErrorNote error={operate.error ?? start.error} />
      <ConfirmDialog
        open={confirming}
        title={t('actions.revoke')}
        confirmLabel={t('actions.revoke')}
        danger
        busy={operate.isPending}
        onClose={() => setConfirming(false)}
        onConfirm={() => {
          setConfirming(false)
          operate.mutate({ bk_biz_id: bizId, task_id: task.id, action: 'revoke' })
        }}
      >
        <p>{t('actions.confirmRevoke')}</p>
      </ConfirmDialog>
    </section>
  )
}
