import { z } from 'zod'
import { IdSchema, legacyFields } from './legacy'

/**
 * Parameters of the node APIs (operate_node, node_callback, get_task_node_detail,
 * get_task_node_data, get_task_node_log) and of the tRPC `node.*` procedures, which take the same
 * fields. The action itself is checked by checkNodeAction (an unknown one is 3540000 naming the
 * list); the fields an action takes are checked against the tree by the engine.
 */
const { text, object, common, required } = legacyFields

/** A node id: bk-sops's are 33 characters; any non-empty text up to 128 is taken. */
const nodeId = text.min(1, 'must not be empty').max(128, 'must be at most 128 characters')

/** A node's version: an integer (ours), also as its digits. */
const version = z.union([z.number(), z.string()], required('an integer')).transform((value, ctx) => {
  const n = typeof value === 'number' ? value : /^\d+$/.test(value) ? Number(value) : Number.NaN
  if (Number.isSafeInteger(n) && n >= 0) return n
  ctx.addIssue({ code: 'custom', message: 'must be a node version (an integer)' })
  return z.NEVER
})

export const NodeParamsSchema = z.object({ ...common, task_id: IdSchema, node_id: nodeId })

export const OperateNodeParamsSchema = NodeParamsSchema.extend({
  action: text.min(1, 'must not be empty'),
  /** callback: the data delivered (bk-sops's `data`). */
  data: object.optional(),
  /** retry: inputs replacing the rendered ones, for this and later attempts. */
  inputs: object.optional(),
  /** skip_exg: the flow to take. */
  flow_id: text.optional(),
  /** skip_cpg: the flows to fork, and the gateway's converge gateway. */
  flow_ids: z.array(text, required('a list of flow ids')).max(100, 'must have at most 100 ids').optional(),
  converge_gateway_id: text.optional(),
  /** callback: the version the caller saw. */
  version: version.optional(),
})

export const NodeCallbackParamsSchema = NodeParamsSchema.extend({
  callback_data: object.optional(),
  version: version.optional(),
})

export const GetTaskNodeDetailParamsSchema = NodeParamsSchema
export const GetTaskNodeDataParamsSchema = NodeParamsSchema.extend({
  /** bk-sops's optional narrowing by component code; accepted and ignored (the node knows its own). */
  component_code: text.optional(),
  subprocess_stack: z.unknown().optional(),
  loop: IdSchema.optional(),
})
/**
 * One attempt's log: `history_id` (a node detail's history) or bk-sops's `version` (the node's
 * version when the attempt ran) names it; neither: the newest. `page` / `page_size` page over its
 * lines (without them the whole log comes back).
 */
export const GetTaskNodeLogParamsSchema = NodeParamsSchema.extend({
  history_id: IdSchema.optional(),
  version: version.optional(),
  page: legacyFields.count(1, 1_000_000).optional(),
  page_size: legacyFields.count(1, 10_000).optional(),
})

export type OperateNodeParams = z.output<typeof OperateNodeParamsSchema>
export type NodeCallbackParams = z.output<typeof NodeCallbackParamsSchema>
export type NodeParams = z.output<typeof NodeParamsSchema>
export type GetTaskNodeLogParams = z.output<typeof GetTaskNodeLogParamsSchema>
