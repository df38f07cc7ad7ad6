import {
  Background,
  Controls,
  type Edge,
  Handle,
  MarkerType,
  MiniMap,
  type Node,
  type NodeProps,
  type NodeTypes,
  Position,
  ReactFlow,
  ReactFlowProvider,
  useReactFlow,
} from '@xyflow/react'
import {
  createContext,
  type KeyboardEvent,
  memo,
  useContext,
  useEffect,
  useMemo,
  useSyncExternalStore,
} from 'react'
import { useTranslation } from 'react-i18next'
import type { DrawGraph, DrawNode } from '../lib/graph'
import { layoutGraph, nodeSize } from '../lib/layout'
import type { NodeLive, TaskStore } from '../lib/task-live'
import { createValueStore, useStoreValue, type ValueStore } from '../lib/value-store'

/**
 * The canvas of a task (live) or of a template (read-only). The layout is computed once per
 * tree; React Flow gets the same node and edge arrays for the life of the page. Each node reads
 * its own live state from the task store, so an event repaints the nodes it touched and nothing
 * is laid out again.
 */

interface CanvasContextValue {
  store: TaskStore | null
  selection: ValueStore<string | null>
  onSelect: (id: string) => void
}
const CanvasContext = createContext<CanvasContextValue | null>(null)

const NO_STORE = { subscribe: () => () => {}, get: () => undefined }

function useLiveNode(id: string): NodeLive | undefined {
  const { store } = useContext(CanvasContext)!
  const s = store ?? NO_STORE
  return useSyncExternalStore(s.subscribe, () => store?.get().nodes[id])
}

function useWontRun(id: string): boolean {
  const { store } = useContext(CanvasContext)!
  return useSyncExternalStore(
    store?.subscribe ?? NO_STORE.subscribe,
    () => store?.derived().wontRun.has(id) ?? false,
  )
}

type DrawData = { node: DrawNode }
type CanvasNode = Node<DrawData>

function useNodeFace(id: string, node: DrawNode) {
  const { t } = useTranslation()
  const ctx = useContext(CanvasContext)!
  const live = useLiveNode(id)
  const wont = useWontRun(id)
  const selected = useStoreValue(ctx.selection, (s) => s === id)
  const state = live?.state ?? null
  const shown = state ?? (ctx.store ? (wont ? t('canvas.wontRun') : t('canvas.notReached')) : null)
  const title = node.name || t(`node.kinds.${node.kind}`)
  const className = [
    'node',
    `node-${node.kind}`,
    state ? `state-${state}` : 'state-none',
    wont ? 'wont-run' : '',
    selected ? 'selected' : '',
  ].join(' ')
  const props = {
    role: 'button',
    tabIndex: 0,
    'aria-label': shown ? t('canvas.node', { name: title, state: shown }) : title,
    'aria-pressed': selected,
    'aria-description': t('canvas.nodeHelp'),
    'data-node-id': id,
    'data-state': state ?? (wont ? 'WONT_RUN' : 'NONE'),
    className,
    onKeyDown: (e: KeyboardEvent) => {
      if (e.key === 'Enter' || e.key === ' ') {
        e.preventDefault()
        ctx.onSelect(id)
      }
    },
  }
  return { live, wont, state, shown, title, props }
}

const ActivityNode = memo(function ActivityNode({ id, data }: NodeProps<CanvasNode>) {
  const { t } = useTranslation()
  const { live, shown, title, props } = useNodeFace(id, data.node)
  const { width, height } = nodeSize(data.node)
  return (
    <div {...props} style={{ width, height }}>
      <Handle type="target" position={Position.Left} isConnectable={false} />
      <div className="node-name" title={title}>
        {title}
      </div>
      <div className="node-meta">
        {shown && <span className="node-state">{shown}</span>}
        {live && live.retry > 0 && (
          <span className="mark mark-retry">{t('canvas.retried', { count: live.retry })}</span>
        )}
        {live?.skip && <span className="mark mark-skip">{t('canvas.skipped')}</span>}
        {live?.errorIgnored && <span className="mark mark-ignored">{t('canvas.errorIgnored')}</span>}
      </div>
      <Handle type="source" position={Position.Right} isConnectable={false} />
    </div>
  )
})

const GATEWAY_SYMBOL: Record<string, string> = {
  parallel: '+',
  exclusive: '×',
  conditional_parallel: '◇',
  converge: '⊕',
}

const GatewayNode = memo(function GatewayNode({ id, data }: NodeProps<CanvasNode>) {
  const { props } = useNodeFace(id, data.node)
  const { width, height } = nodeSize(data.node)
  return (
    <div {...props} style={{ width, height }}>
      <Handle type="target" position={Position.Left} isConnectable={false} />
      <div className="gateway-shape" aria-hidden="true">
        <span>{GATEWAY_SYMBOL[data.node.kind] ?? '?'}</span>
      </div>
      <Handle type="source" position={Position.Right} isConnectable={false} />
    </div>
  )
})

const EventNode = memo(function EventNode({ id, data }: NodeProps<CanvasNode>) {
  const { props } = useNodeFace(id, data.node)
  const { width, height } = nodeSize(data.node)
  return (
    <div {...props} style={{ width, height }}>
      {data.node.kind === 'end' && <Handle type="target" position={Position.Left} isConnectable={false} />}
      {data.node.kind === 'start' && <Handle type="source" position={Position.Right} isConnectable={false} />}
    </div>
  )
})

const NODE_TYPES: NodeTypes = { activity: ActivityNode, gateway: GatewayNode, event: EventNode }

const typeOf = (n: DrawNode) =>
  n.kind === 'activity' ? 'activity' : n.kind === 'start' || n.kind === 'end' ? 'event' : 'gateway'

/** Centres the view on a node whenever `request` changes (jump to the failed node, a deep link). */
function FocusOn({ request, graph }: { request: { id: string; n: number } | null; graph: DrawGraph }) {
  const flow = useReactFlow()
  useEffect(() => {
    if (!request) return
    const node = flow.getNode(request.id)
    const d = graph.byId.get(request.id)
    if (!node || !d) return
    const { width, height } = nodeSize(d)
    void flow.setCenter(node.position.x + width / 2, node.position.y + height / 2, {
      zoom: 1.2,
      duration: 300,
    })
  }, [request, flow, graph])
  return null
}

/** Memoised: the page around it re-renders on task events; the canvas only when its props change. */
export const PipelineCanvas = memo(function PipelineCanvas({
  graph,
  store,
  selected,
  onSelect,
  label,
  focus,
}: {
  graph: DrawGraph
  store: TaskStore | null
  selected: string | null
  onSelect: (id: string) => void
  label: string
  focus?: { id: string; n: number } | null
}) {
  const { t } = useTranslation()
  const selection = useMemo(() => createValueStore<string | null>(null), [])
  useEffect(() => selection.set(selected), [selection, selected])
  const nodes = useMemo<CanvasNode[]>(() => {
    const positions = layoutGraph(graph)
    return graph.nodes.map((n) => ({
      id: n.id,
      type: typeOf(n),
      position: positions.get(n.id)!,
      data: { node: n },
      ...nodeSize(n),
      draggable: false,
      connectable: false,
    }))
  }, [graph])
  const edges = useMemo<Edge[]>(
    () =>
      graph.edges.map((e) => ({
        id: e.id,
        source: e.source,
        target: e.target,
        type: 'smoothstep',
        markerEnd: { type: MarkerType.ArrowClosed },
        ...(e.isDefault ? { label: t('canvas.defaultFlow') } : e.condition ? { label: e.condition } : {}),
        ...(e.isDefault ? { className: 'edge-default' } : {}),
      })),
    [graph, t],
  )
  const context = useMemo(() => ({ store, selection, onSelect }), [store, selection, onSelect])
  const ariaLabelConfig = useMemo(
    () => ({
      'controls.ariaLabel': t('canvas.controls'),
      'controls.zoomIn.ariaLabel': t('canvas.zoomIn'),
      'controls.zoomOut.ariaLabel': t('canvas.zoomOut'),
      'controls.fitView.ariaLabel': t('canvas.fitView'),
      'controls.interactive.ariaLabel': t('canvas.interactive'),
      'minimap.ariaLabel': t('canvas.minimap'),
    }),
    [t],
  )
  return (
    <section className="canvas" aria-label={label}>
      <CanvasContext.Provider value={context}>
        <ReactFlowProvider>
          <ReactFlow
            nodes={nodes}
            edges={edges}
            nodeTypes={NODE_TYPES}
            onNodeClick={(_, n) => onSelect(n.id)}
            nodesDraggable={false}
            nodesConnectable={false}
            nodesFocusable={false}
            edgesFocusable={false}
            elementsSelectable={false}
            onlyRenderVisibleElements
            fitView
            fitViewOptions={{ maxZoom: 1, padding: 0.15 }}
            minZoom={0.05}
            maxZoom={2}
            proOptions={{ hideAttribution: true }}
            ariaLabelConfig={ariaLabelConfig}
          >
            <Background gap={24} />
            <Controls showInteractive={false} />
            <MiniMap pannable zoomable nodeStrokeWidth={3} />
            <FocusOn request={focus ?? null} graph={graph} />
          </ReactFlow>
        </ReactFlowProvider>
      </CanvasContext.Provider>
    </section>
  )
})
