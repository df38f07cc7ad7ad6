import { displayedStatusState, type NodeState, type TaskState } from './states'

export type StatusTreeInput = {
  task: { id: number; name: string; state: TaskState; startedAt: Date | null; finishedAt: Date | null }
  nodes: Array<{
    nodeId: string
    state: NodeState
    retry: number
    skip: boolean
    loop: number
    version: number
    errorIgnorable: boolean
    errorIgnored: boolean
    startedAt: Date | null
    finishedAt: Date | null
  }>
  /** node id → name from the tree ("" or absent for events and gateways) */
  names: Record<string, string>
  /** child node id → the SubProcess node holding it: such nodes nest in its `children`. */
  parentOf?: ReadonlyMap<string, string> | undefined
  now: Date
}

type Timing = { elapsed_time: number; start_time: Date | null; finish_time: Date | null }

export type NodeStatus = Timing & {
  id: string
  name: string
  state: NodeState
  retry: number
  skip: boolean
  loop: number
  version: number
  error_ignorable: boolean
  error_ignored: boolean
  /** A SubProcess's: its child tree's nodes (empty for every other node). */
  children: Record<string, NodeStatus>
}

/** A task that has not started: exactly bk-sops's shape. */
export type CreatedStatusTree = {
  id: number
  name: string
  state: 'CREATED'
  retry: 0
  skip: 0
  elapsed_time: 0
  start_time: null
  finish_time: null
  children: Record<string, never>
}

export type StartedStatusTree = Timing & {
  id: number
  name: string
  state: Exclude<TaskState, 'CREATED'> | 'FAILED' | 'NODE_SUSPENDED'
  retry: 0
  skip: false
  loop: 1
  version: 0
  error_ignorable: false
  error_ignored: false
  /** beyond bk-sops: how many nodes are RUNNING now (0 after a pause means the task is quiet) */
  running_nodes: number
  children: Record<string, NodeStatus>
}

export type StatusTree = CreatedStatusTree | StartedStatusTree

/** Whole seconds from start until the end, or until `now` while it has not ended. */
function timing(startedAt: Date | null, finishedAt: Date | null, now: Date): Timing {
  const elapsedMs = startedAt === null ? 0 : (finishedAt ?? now).getTime() - startedAt.getTime()
  return {
    elapsed_time: Math.max(0, Math.floor(elapsedMs / 1000)),
    start_time: startedAt,
    finish_time: finishedAt,
  }
}

/** get_task_status's tree. Times stay Dates: the API formats them. */
export function buildStatusTree({ task, nodes, names, parentOf, now }: StatusTreeInput): StatusTree {
  const { id, name } = task
  if (task.state === 'CREATED') {
    return {
      id,
      name,
      state: 'CREATED',
      retry: 0,
      skip: 0,
      elapsed_time: 0,
      start_time: null,
      finish_time: null,
      children: {},
    }
  }
  const flat = Object.fromEntries(
    nodes.map((node): [string, NodeStatus] => [
      node.nodeId,
      {
        id: node.nodeId,
        name: Object.hasOwn(names, node.nodeId) ? names[node.nodeId]! : '',
        state: node.state,
        retry: node.retry,
        skip: node.skip,
        loop: node.loop,
        version: node.version,
        error_ignorable: node.errorIgnorable,
        error_ignored: node.errorIgnored,
        ...timing(node.startedAt, node.finishedAt, now),
        children: {},
      },
    ]),
  )
  const containers = new Set(parentOf?.values() ?? [])
  // Nodes inside subprocesses nest under their SubProcess node, as bk-sops nests them.
  const children: Record<string, NodeStatus> = {}
  for (const [nodeId, status] of Object.entries(flat)) {
    const parent = parentOf?.get(nodeId)
    const holder = parent === undefined ? undefined : flat[parent]
    if (holder) holder.children[nodeId] = status
    else children[nodeId] = status
  }
  // A running SubProcess whose child tree holds a FAILED node displays FAILED (bk-sops's view).
  const failedWithin = (status: NodeStatus): boolean =>
    Object.values(status.children).some((c) => c.state === 'FAILED' || failedWithin(c))
  for (const status of Object.values(flat)) {
    if (status.state === 'RUNNING' && Object.keys(status.children).length > 0 && failedWithin(status))
      status.state = 'FAILED'
  }
  return {
    id,
    name,
    state: displayedStatusState(
      task.state,
      nodes.map((node) => node.state),
    ),
    retry: 0,
    skip: false,
    loop: 1,
    version: 0,
    error_ignorable: false,
    error_ignored: false,
    ...timing(task.startedAt, task.finishedAt, now),
    // A SubProcess stays RUNNING while its child tree runs: only the nodes doing work count.
    running_nodes: nodes.filter((node) => node.state === 'RUNNING' && !containers.has(node.nodeId)).length,
    children,
  }
}
