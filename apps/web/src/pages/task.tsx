import type { TaskState } from '@stdops/core'
import { useQuery } from '@tanstack/react-query'
import { getRouteApi, useNavigate } from '@tanstack/react-router'
import { useCallback, useEffect, useMemo, useRef, useState, useSyncExternalStore } from 'react'
import { useTranslation } from 'react-i18next'
import { PipelineCanvas } from '../components/canvas'
import { ErrorNote, Loading } from '../components/common'
import { NodePanel } from '../components/node-panel'
import { useRole } from '../components/shell'
import { TaskHeader } from '../components/task-header'
import { TaskTabs } from '../components/task-tabs'
import { WaitsPanel } from '../components/waits'
import { toDrawGraph } from '../lib/graph'
import { createTaskStore } from '../lib/task-live'
import { parseLegacyTime } from '../lib/time'
import { useTaskEvents, useThrottled } from '../lib/use-task-events'
import { useTRPC } from '../trpc'

const route = getRouteApi('/projects/$bizId/tasks/$taskId')

/**
 * The task page: header with the actions allowed now, the live canvas with the selected node's
 * panel beside it, and the events, records and data tabs. Everything live comes from the task's
 * event stream; the queries are asked again only when events say something changed.
 */
export function TaskPage() {
  const { t } = useTranslation()
  const trpc = useTRPC()
  const { bizId, taskId } = route.useParams()
  const search = route.useSearch()
  const navigate = useNavigate({ from: '/projects/$bizId/tasks/$taskId' })
  const role = useRole(bizId)
  const detail = useQuery(trpc.task.detail.queryOptions({ bk_biz_id: bizId, task_id: taskId }))
  // Query results share structure across refetches: the tree keeps its identity, so the graph,
  // its layout and the store are made once per task.
  const tree = detail.data?.pipeline_tree
  const graph = useMemo(() => (tree === undefined ? null : toDrawGraph(tree)), [tree])
  const store = useMemo(() => (graph ? createTaskStore(graph) : null), [graph])
  const stream = useTaskEvents(store, bizId, taskId)
  const [focus, setFocus] = useState<{ id: string; n: number } | null>(null)

  const select = useCallback(
    (id: string | null) =>
      void navigate({ search: (prev) => ({ ...prev, node: id ?? undefined, attempt: undefined }) }),
    [navigate],
  )
  const selectAndShow = useCallback(
    (id: string) => {
      select(id)
      setFocus((f) => ({ id, n: (f?.n ?? 0) + 1 }))
    },
    [select],
  )

  const { refetch } = detail
  const refetchDetail = useCallback(() => void refetch(), [refetch])
  if (detail.isPending) return <Loading />
  if (detail.error) return <ErrorNote error={detail.error} onRetry={() => void detail.refetch()} />
  if (!graph || !store)
    return (
      <p role="alert" className="error-note">
        {t('task.noTree')}
      </p>
    )
  return (
    <TaskView
      bizId={bizId}
      taskId={taskId}
      detail={detail.data}
      graph={graph}
      store={store}
      stream={stream}
      role={role}
      search={search}
      focus={focus}
      onSelect={select}
      onShow={selectAndShow}
      onToggleWaits={() =>
        void navigate({ search: (prev) => ({ ...prev, waits: prev.waits ? undefined : true }) })
      }
      onAttempt={(attempt) => void navigate({ search: (prev) => ({ ...prev, attempt }), replace: true })}
      refetchDetail={refetchDetail}
      streamEndedLabel={t('task.streamEnded')}
    />
  )
}

type Detail = NonNullable<ReturnType<typeof useQuery<import('../trpc').Outputs['task']['detail']>>['data']>

function TaskView(props: {
  bizId: number
  taskId: number
  detail: Detail
  graph: NonNullable<ReturnType<typeof toDrawGraph>>
  store: ReturnType<typeof createTaskStore>
  stream: ReturnType<typeof useTaskEvents>
  role: ReturnType<typeof useRole>
  search: ReturnType<typeof route.useSearch>
  focus: { id: string; n: number } | null
  onSelect: (id: string | null) => void
  onShow: (id: string) => void
  onToggleWaits: () => void
  onAttempt: (historyId: number | undefined) => void
  refetchDetail: () => void
  streamEndedLabel: string
}) {
  const { t } = useTranslation()
  const { bizId, taskId, detail, graph, store, search } = props
  const live = useSyncExternalStore(store.subscribe, store.get)
  const derived = useSyncExternalStore(store.subscribe, store.derived)
  const eventCount = useThrottled(live.events.length, 500)
  // The task's own facts (executor, times, outputs) move with its state: ask again when it moves.
  const { refetchDetail } = props
  useEffect(() => {
    if (live.taskState !== null) refetchDetail()
  }, [live.taskState, refetchDetail])
  const selected = search.node ? (graph.byId.get(search.node) ?? null) : null
  // The node to centre the view on: one asked for (jump to the failed node), else the deep link's
  // node once. Kept stable across renders, so that events never move the view.
  const deepLinked = useRef(search.node ?? null)
  const focus = useMemo(
    () => props.focus ?? (deepLinked.current ? { id: deepLinked.current, n: 0 } : null),
    [props.focus],
  )
  const state = (live.taskState ?? detail.state) as TaskState
  return (
    <div className="task-page">
      <TaskHeader
        bizId={bizId}
        role={props.role}
        task={{
          id: taskId,
          name: detail.name,
          creator: detail.creator,
          executor: detail.executor,
          state,
          displayed: derived.displayed ?? state,
          createdAt: live.createdAt ?? parseLegacyTime(detail.create_time),
          startedAt: live.startedAt ?? parseLegacyTime(detail.start_time),
          finishedAt: live.finishedAt ?? parseLegacyTime(detail.finish_time),
        }}
        failedNode={derived.failed[0] ?? null}
        onJumpToFailed={() => derived.failed[0] && props.onShow(derived.failed[0])}
        waitsOpen={search.waits ?? false}
        onToggleWaits={props.onToggleWaits}
      />
      {typeof props.stream === 'object' && <ErrorNote error={props.stream.refused} />}
      {props.stream === 'ended' && <output className="muted block">{props.streamEndedLabel}</output>}
      {search.waits && (state === 'RUNNING' || state === 'SUSPENDED') && (
        <WaitsPanel bizId={bizId} taskId={taskId} eventCount={eventCount} onSelect={props.onShow} />
      )}
      <div className="task-body">
        <PipelineCanvas
          graph={graph}
          store={store}
          selected={search.node ?? null}
          onSelect={props.onSelect}
          label={t('task.canvas')}
          focus={focus}
        />
        {selected && (
          <NodePanel
            key={selected.id}
            bizId={bizId}
            taskId={taskId}
            node={selected}
            graph={graph}
            tree={detail.pipeline_tree}
            store={store}
            taskState={state}
            role={props.role}
            attempt={search.attempt}
            onAttempt={props.onAttempt}
            onClose={() => props.onSelect(null)}
          />
        )}
      </div>
      <TaskTabs bizId={bizId} taskId={taskId} store={store} graph={graph} search={search} />
    </div>
  )
}
