import {
  GetTaskNodeDetailParamsSchema,
  GetTaskNodeLogParamsSchema,
  NodeCallbackParamsSchema,
  OperateNodeParamsSchema,
} from '@stdops/core'
import * as nodes from '../../services/nodes'
import { refOf as ref } from '../../services/projects'
import { authedProcedure, router } from '../init'

/**
 * One node of a task: its detail, its log, and the node actions (the same use cases as
 * operate_node and node_callback). `operate` takes any action; the named procedures are the
 * common ones, for clients that prefer a procedure per action.
 */
export const nodeRouter = router({
  /** The node's state, inputs, outputs, error and earlier attempts (get_task_node_detail). */
  detail: authedProcedure
    .input(GetTaskNodeDetailParamsSchema)
    .query(({ ctx, input }) =>
      nodes.nodeDetail(ctx.deps, ctx.caller, ref(input), input.task_id, input.node_id),
    ),
  /** `{inputs, outputs, ex_data}` of the last attempt (get_task_node_data). */
  data: authedProcedure
    .input(GetTaskNodeDetailParamsSchema)
    .query(({ ctx, input }) =>
      nodes.nodeData(ctx.deps, ctx.caller, ref(input), input.task_id, input.node_id),
    ),
  /** One attempt's log as text (`log`): the newest unless `history_id` or `version` names one. */
  log: authedProcedure
    .input(GetTaskNodeLogParamsSchema)
    .query(({ ctx, input }) =>
      nodes.nodeLog(ctx.deps, ctx.caller, ref(input), input.task_id, input.node_id, input),
    ),
  /**
   * Any node action: retry, skip, skip_exg, skip_cpg, forced_fail, callback, pause, resume, and for
   * a SubProcess node pause_subproc, resume_subproc, retry_subprocess.
   */
  operate: authedProcedure
    .input(OperateNodeParamsSchema)
    .mutation(({ ctx, input }) => nodes.operateNode(ctx.deps, ctx.caller, ref(input), input, 'app')),
  /** Delivers `callback_data` to a node waiting for a callback (node_callback). */
  callback: authedProcedure
    .input(NodeCallbackParamsSchema)
    .mutation(({ ctx, input }) =>
      nodes.operateNode(
        ctx.deps,
        ctx.caller,
        ref(input),
        { ...input, action: 'callback', data: input.callback_data ?? {} },
        'app',
      ),
    ),
})
