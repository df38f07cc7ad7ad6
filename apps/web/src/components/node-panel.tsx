import type { NodeState, Role, TaskState } from '@stdops/core'
import { useMutation, useQuery } from '@tanstack/react-query'
import { type FormEvent, useEffect, useId, useRef, useState, useSyncExternalStore } from 'react'
import { useTranslation } from 'react-i18next'
import type { DrawGraph, DrawNode } from '../lib/graph'
import { type NodeAvailability, nodeActions, type PanelAction, SENDS } from '../lib/node-actions'
import type { TaskStore } from '../lib/task-live'
import { parseLegacyTime } from '../lib/time'
import { type Outputs, useTRPC } from '../trpc'
import { Duration, ErrorNote, JsonView, StateBadge, Time } from './common'
import { ConfirmDialog } from './confirm'

type Detail = Outputs['node']['detail']
type History = Detail['histories'][number]

/** The attempt the panel shows: the node's current one, or an earlier one from its history. */
interface Shown {
  historyId: number | null
  state: string
  startedAt: number | null
  finishedAt: number | null
  inputs: unknown
  outputs: unknown
  error: string
  kind: 'first' | 'manual' | 'automatic' | 'current'
}

function fromHistory(h: History): Shown {
  return {
    historyId: h.history_id,
    state: h.state,
    startedAt: parseLegacyTime(h.start_time),
    finishedAt: parseLegacyTime(h.finish_time),
    inputs: h.inputs,
    outputs: h.outputs,
    error: h.ex_data,
    kind: h.auto_retry ? 'automatic' : h.retry === 0 ? 'first' : 'manual',
  }
}

const outputsOf = (outputs: unknown) =>
  Array.isArray(outputs)
    ? Object.fromEntries((outputs as Array<{ key: string; value: unknown }>).map((o) => [o.key, o.value]))
    : outputs

function whyText(t: ReturnType<typeof useTranslation>['t'], a: NodeAvailability): string | null {
  if (a.enabled) return null
  if (a.why.kind === 'role')
    return a.why.role ? t('actions.whyRole', { role: a.why.role }) : t('actions.whyNoRole')
  return t('actions.whyState', { message: a.why.message })
}

/** A JSON object typed into a textarea, or the reason it is not one. */
function parseObject(text: string): { ok: true; value: Record<string, unknown> } | { ok: false } {
  try {
    const v = JSON.parse(text) as unknown
    if (v !== null && typeof v === 'object' && !Array.isArray(v))
      return { ok: true, value: v as Record<string, unknown> }
  } catch {}
  return { ok: false }
}

/**
 * A conditional parallel gateway's converge gateway: the tree's `converge_gateway_id` (bk-sops's
 * editor writes it), else the nearest converge gateway downstream of its first branch.
 */
export function convergeOf(tree: unknown, graph: DrawGraph, gatewayId: string): string {
  const named = (tree as { gateways?: Record<string, { converge_gateway_id?: unknown }> }).gateways?.[
    gatewayId
  ]?.converge_gateway_id
  if (typeof named === 'string' && named !== '') return named
  const seen = new Set<string>()
  const queue = graph.edges.filter((e) => e.source === gatewayId).map((e) => e.target)
  while (queue.length > 0) {
    const id = queue.shift()!
    if (seen.has(id)) continue
    seen.add(id)
    if (graph.byId.get(id)?.kind === 'converge') return id
    for (const e of graph.edges) if (e.source === id) queue.push(e.target)
  }
  return ''
}

type Form = null | 'retry' | 'callback' | 'approve' | 'skip_exg' | 'skip_cpg'

/**
 * The node panel beside the canvas: state, times, the attempt picker (manual and automatic
 * retries told apart), inputs and outputs as JSON, the error, the attempt's log, and every node
 * action the engine has, each enabled exactly when the server would take it. The node's facts
 * come from `node.detail`, asked again whenever the node's own events move it.
 */
export function NodePanel({
  bizId,
  taskId,
  node,
  graph,
  tree,
  store,
  taskState,
  role,
  attempt,
  onAttempt,
  onClose,
}: {
  bizId: number
  taskId: number
  node: DrawNode
  graph: DrawGraph
  tree: unknown
  store: TaskStore
  taskState: TaskState | null
  role: Role | null
  /** the history id of the attempt shown (undefined: the current one) */
  attempt: number | undefined
  onAttempt: (historyId: number | undefined) => void
  onClose: () => void
}) {
  const { t } = useTranslation()
  const trpc = useTRPC()
  const live = useSyncExternalStore(store.subscribe, () => store.get().nodes[node.id])
  const wont = useSyncExternalStore(store.subscribe, () => store.derived().wontRun.has(node.id))
  const ref = { bk_biz_id: bizId, task_id: taskId, node_id: node.id }
  const detail = useQuery(trpc.node.detail.queryOptions(ref))
  // Asked again when the node's events move it (a new state, a retry, a new run).
  const { refetch } = detail
  const liveKey = live ? `${live.state}:${live.runs}:${live.retry}` : 'none'
  const taskKey = taskState ?? 'none'

  const histories = detail.data?.histories ?? []
  const picked = attempt === undefined ? undefined : histories.find((h) => h.history_id === attempt)
  const d = detail.data
  const shown: Shown | null = picked
    ? fromHistory(picked)
    : d
      ? {
          historyId: d.history_id,
          state: live?.state ?? d.state,
          startedAt: live?.startedAt ?? parseLegacyTime('start_time' in d ? d.start_time : null),
          finishedAt: live?.finishedAt ?? parseLegacyTime('finish_time' in d ? d.finish_time : null),
          inputs: d.inputs,
          outputs: d.outputs,
          error: d.ex_data,
          kind: 'current',
        }
      : null
  const log = useQuery({
    ...trpc.node.log.queryOptions({ ...ref, ...(shown?.historyId ? { history_id: shown.historyId } : {}) }),
    enabled: shown !== null && shown.historyId !== null,
  })
  const { refetch: refetchLog } = log
  const logEnabled = shown !== null && shown.historyId !== null && attempt === undefined
  const seen = useRef({ liveKey, taskKey })
  useEffect(() => {
    if (seen.current.liveKey === liveKey && seen.current.taskKey === taskKey) return
    seen.current = { liveKey, taskKey }
    void refetch()
    if (logEnabled) void refetchLog()
  }, [liveKey, taskKey, refetch, refetchLog, logEnabled])

  const title = node.name || t(`node.kinds.${node.kind}`)
  // Retries so far, told apart: the automatic ones the node's retry policy started, the rest by operators.
  const retries = d && 'retry' in d ? Number(d.retry ?? 0) : 0
  const automatic = d && 'auto_retry_info' in d ? Number(d.auto_retry_info?.auto_retry_times ?? 0) : 0
  const manual = Math.max(0, retries - automatic)
  const currentKind: Shown['kind'] =
    histories.length === 0
      ? 'first'
      : automatic > histories.filter((h) => h.auto_retry).length
        ? 'automatic'
        : 'manual'
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
            <StateBadge state={live?.state ?? (d && d.state !== 'READY' ? d.state : undefined)} />
            {d?.held && <span className="mark mark-held">{t('node.held')}</span>}
            {d && 'waiting_for' in d && d.waiting_for === 'callback' && (
              <span className="mark">{t('node.waitsCallback')}</span>
            )}
          </dd>
        </div>
        <div>
          <dt>{t('common.started')}</dt>
          <dd>
            <Time ms={shown?.startedAt} />
          </dd>
        </div>
        <div>
          <dt>{t('common.finished')}</dt>
          <dd>
            <Time ms={shown?.finishedAt} />
          </dd>
        </div>
        <div>
          <dt>{t('common.duration')}</dt>
          <dd>
            <Duration from={shown?.startedAt} to={shown?.finishedAt} />
          </dd>
        </div>
        {(manual > 0 || automatic > 0) && (
          <div>
            <dt>{t('node.retries')}</dt>
            <dd>{t('node.retryCounts', { manual, automatic })}</dd>
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
      {!live && !d?.held && <p className="muted">{wont ? t('node.wontRun') : t('node.notReached')}</p>}
      <ErrorNote error={detail.error} onRetry={() => void refetch()} />

      {histories.length > 0 && (
        <AttemptPicker histories={histories} current={currentKind} value={attempt} onChange={onAttempt} />
      )}

      <NodeActions
        bizId={bizId}
        taskId={taskId}
        node={node}
        graph={graph}
        tree={tree}
        taskState={taskState}
        role={role}
        state={live?.state ?? null}
        held={d?.held ?? false}
        wait={d && 'waiting_for' in d ? (d.waiting_for ?? null) : null}
        inputs={d?.inputs ?? {}}
        onDone={() => void refetch()}
      />

      {shown?.error && (
        <section aria-label={t('node.error')}>
          <h3>{t('node.error')}</h3>
          <pre className="error-text">{shown.error}</pre>
        </section>
      )}
      {shown && (
        <section aria-label={t('node.inputs')}>
          <h3>{t('node.inputs')}</h3>
          <JsonView value={shown.inputs} label={t('node.inputs')} />
        </section>
      )}
      {shown && (
        <section aria-label={t('node.outputs')}>
          <h3>{t('node.outputs')}</h3>
          <JsonView value={outputsOf(shown.outputs)} label={t('node.outputs')} />
        </section>
      )}
      {shown?.historyId != null && (
        <section aria-label={t('node.log')}>
          <h3>{t('node.log')}</h3>
          {log.data?.log ? (
            <pre className="log">{log.data.log}</pre>
          ) : (
            <p className="muted">{t('node.noLog')}</p>
          )}
          <ErrorNote error={log.error} />
        </section>
      )}
    </aside>
  )
}

function AttemptPicker({
  histories,
  current,
  value,
  onChange,
}: {
  histories: History[]
  current: Shown['kind']
  value: number | undefined
  onChange: (historyId: number | undefined) => void
}) {
  const { t } = useTranslation()
  const id = useId()
  const kindName = (k: Shown['kind']) =>
    t(k === 'automatic' ? 'node.automatic' : k === 'first' ? 'node.firstRun' : 'node.manual')
  const label = (h: History, i: number) =>
    t('node.attemptOf', {
      n: i + 1,
      kind: kindName(h.auto_retry ? 'automatic' : i === 0 ? 'first' : 'manual'),
      state: h.state,
    })
  return (
    <div className="field">
      <label htmlFor={id}>{t('node.attempt')}</label>
      <select
        id={id}
        value={value ?? ''}
        onChange={(e) => onChange(e.target.value === '' ? undefined : Number(e.target.value))}
      >
        <option value="">
          {t('node.currentAttempt', { n: histories.length + 1, kind: kindName(current) })}
        </option>
        {histories.map((h, i) => (
          <option
            key={h.history_id}
            value={h.history_id}
            data-retry-kind={h.auto_retry ? 'automatic' : 'manual'}
          >
            {label(h, i)}
          </option>
        ))}
      </select>
    </div>
  )
}

function NodeActions({
  bizId,
  taskId,
  node,
  graph,
  tree,
  taskState,
  role,
  state,
  held,
  wait,
  inputs,
  onDone,
}: {
  bizId: number
  taskId: number
  node: DrawNode
  graph: DrawGraph
  tree: unknown
  taskState: TaskState | null
  role: Role | null
  state: NodeState | null
  held: boolean
  wait: string | null
  inputs: unknown
  onDone: () => void
}) {
  const { t } = useTranslation()
  const trpc = useTRPC()
  const [form, setForm] = useState<Form>(null)
  const [confirming, setConfirming] = useState<PanelAction | null>(null)
  const [done, setDone] = useState<string | null>(null)
  const operate = useMutation(
    trpc.node.operate.mutationOptions({
      onSuccess: (r, v) => {
        setForm(null)
        setDone(t('node.done', { action: v.action, state: r.state }))
        onDone()
      },
    }),
  )
  const list = nodeActions(
    taskState,
    {
      id: node.id,
      kind: node.kind,
      code: node.code,
      retryable: node.retryable,
      skippable: node.skippable,
      state,
      held,
      wait,
    },
    role,
  )
  if (list.length === 0) return null
  const send = (action: PanelAction, extra: Record<string, unknown> = {}) => {
    setDone(null)
    operate.mutate({ bk_biz_id: bizId, task_id: taskId, node_id: node.id, action: SENDS[action], ...extra })
  }
  const click = (a: PanelAction) => {
    operate.reset()
    setDone(null)
    if (a === 'retry' || a === 'callback' || a === 'approve' || a === 'skip_exg' || a === 'skip_cpg')
      return setForm(form === a ? null : a)
    if (a === 'skip' || a === 'forced_fail' || a === 'reject') return setConfirming(a)
    send(a)
  }
  return (
    <section className="node-actions" aria-label={t('node.actionsTitle')}>
      <h3>{t('node.actionsTitle')}</h3>
      <div className="action-row">
        {list.map((a) => (
          <NodeActionButton key={a.action} a={a} open={form === a.action} onClick={() => click(a.action)} />
        ))}
      </div>
      {form === 'retry' && (
        <JsonForm
          label={t('node.retryInputs')}
          initial={JSON.stringify(inputs ?? {}, null, 2)}
          submit={t('node.actions.retryNow')}
          busy={operate.isPending}
          onSubmit={(value, changed) => send('retry', changed ? { inputs: value } : {})}
        />
      )}
      {form === 'callback' && (
        <JsonForm
          label={t('node.callbackData')}
          initial="{}"
          submit={t('node.actions.sendCallback')}
          busy={operate.isPending}
          onSubmit={(value) => send('callback', { data: value })}
        />
      )}
      {form === 'approve' && (
        <CommentForm
          busy={operate.isPending}
          onSubmit={(comment) => send('approve', { data: { approved: true, comment } })}
        />
      )}
      {form === 'skip_exg' && (
        <BranchForm
          graph={graph}
          node={node}
          many={false}
          busy={operate.isPending}
          onSubmit={(flows) => send('skip_exg', { flow_id: flows[0] })}
        />
      )}
      {form === 'skip_cpg' && (
        <BranchForm
          graph={graph}
          node={node}
          many
          busy={operate.isPending}
          onSubmit={(flows) =>
            send('skip_cpg', {
              flow_ids: flows,
              converge_gateway_id: convergeOf(tree, graph, node.id),
            })
          }
        />
      )}
      {done && <output className="ok-note">{done}</output>}
      <ErrorNote error={operate.error} />
      <ConfirmDialog
        open={confirming !== null}
        title={confirming ? t(`node.actions.${confirming}`) : ''}
        confirmLabel={confirming ? t(`node.actions.${confirming}`) : ''}
        danger
        busy={operate.isPending}
        onClose={() => setConfirming(null)}
        onConfirm={() => {
          if (confirming) send(confirming)
          setConfirming(null)
        }}
      >
        <p>{confirming ? t(`node.confirm.${confirming as 'skip' | 'forced_fail' | 'reject'}`) : ''}</p>
      </ConfirmDialog>
    </section>
  )
}

function NodeActionButton({ a, open, onClick }: { a: NodeAvailability; open: boolean; onClick: () => void }) {
  const { t } = useTranslation()
  const whyId = useId()
  const why = whyText(t, a)
  const opensForm = ['retry', 'callback', 'approve', 'skip_exg', 'skip_cpg'].includes(a.action)
  return (
    <span className="action">
      <button
        type="button"
        className={a.action === 'forced_fail' || a.action === 'reject' ? 'danger' : ''}
        disabled={!a.enabled}
        aria-describedby={why ? whyId : undefined}
        aria-expanded={opensForm ? open : undefined}
        title={why ?? undefined}
        onClick={onClick}
      >
        {t(`node.actions.${a.action}`)}
      </button>
      {why && (
        <span id={whyId} className="visually-hidden">
          {why}
        </span>
      )}
    </span>
  )
}

function JsonForm({
  label,
  initial,
  submit,
  busy,
  onSubmit,
}: {
  label: string
  initial: string
  submit: string
  busy: boolean
  onSubmit: (value: Record<string, unknown>, changed: boolean) => void
}) {
  const { t } = useTranslation()
  const id = useId()
  const [text, setText] = useState(initial)
  const [bad, setBad] = useState(false)
  return (
    <form
      className="node-form"
      onSubmit={(e: FormEvent) => {
        e.preventDefault()
        const parsed = parseObject(text)
        setBad(!parsed.ok)
        if (parsed.ok)
          onSubmit(parsed.value, JSON.stringify(parsed.value) !== JSON.stringify(JSON.parse(initial)))
      }}
    >
      <label htmlFor={id}>{label}</label>
      <textarea id={id} rows={6} value={text} onChange={(e) => setText(e.target.value)} aria-invalid={bad} />
      {bad && (
        <p role="alert" className="error-note">
          {t('node.notAnObject')}
        </p>
      )}
      <button type="submit" className="primary" disabled={busy}>
        {submit}
      </button>
    </form>
  )
}

function CommentForm({ busy, onSubmit }: { busy: boolean; onSubmit: (comment: string) => void }) {
  const { t } = useTranslation()
  const id = useId()
  const [comment, setComment] = useState('')
  return (
    <form
      className="node-form"
      onSubmit={(e) => {
        e.preventDefault()
        onSubmit(comment.trim())
      }}
    >
      <label htmlFor={id}>{t('node.comment')}</label>
      <textarea
        id={id}
        rows={3}
        maxLength={2000}
        value={comment}
        onChange={(e) => setComment(e.target.value)}
      />
      <button type="submit" className="primary" disabled={busy}>
        {t('node.actions.approveNow')}
      </button>
    </form>
  )
}

function BranchForm({
  graph,
  node,
  many,
  busy,
  onSubmit,
}: {
  graph: DrawGraph
  node: DrawNode
  many: boolean
  busy: boolean
  onSubmit: (flowIds: string[]) => void
}) {
  const { t } = useTranslation()
  const name = useId()
  const out = graph.edges.filter((e) => e.source === node.id)
  const [chosen, setChosen] = useState<string[]>([])
  const labelOf = (e: (typeof out)[number]) => {
    const target = graph.byId.get(e.target)
    const to = target?.name || e.target
    return e.isDefault
      ? t('node.branchDefault', { to })
      : e.condition
        ? t('node.branchIf', { to, condition: e.condition })
        : to
  }
  return (
    <form
      className="node-form"
      onSubmit={(e) => {
        e.preventDefault()
        if (chosen.length > 0) onSubmit(chosen)
      }}
    >
      <fieldset>
        <legend>{many ? t('node.pickBranches') : t('node.pickBranch')}</legend>
        {out.map((e) => (
          <label key={e.id} className="check">
            <input
              type={many ? 'checkbox' : 'radio'}
              name={name}
              value={e.id}
              checked={chosen.includes(e.id)}
              onChange={(ev) =>
                setChosen(
                  many ? (ev.target.checked ? [...chosen, e.id] : chosen.filter((c) => c !== e.id)) : [e.id],
                )
              }
            />
            {labelOf(e)}
          </label>
        ))}
      </fieldset>
      <button type="submit" className="primary" disabled={busy || chosen.length === 0}>
        {t('node.actions.takeBranch')}
      </button>
    </form>
  )
}
