import { LegacyCode, StdopsError, type TaskAction, type TaskState } from '@stdops/core'
import type { Caller } from './auth'
import type { Deps } from './deps'
import type { ProjectRef } from './projects'
import { type OperateSource, operateTask } from './tasks'

export type OperateResult =
  | { task_id: number; result: true; state: TaskState }
  | { task_id: number; result: false; code: number; message: string }

/**
 * One operation on several tasks: each task is operated on its own, exactly as operate_task would
 * (its own compare-and-set, event and record), in the order given; a refusal of one (its state,
 * the caller's role, a missing task) is reported with its legacy code and does not stop the others;
 * neither does an internal error, which is logged and reported as 3599999.
 */
export async function operateTasks(
  deps: Deps,
  caller: Caller,
  ref: ProjectRef,
  taskIds: readonly number[],
  action: TaskAction,
  source: OperateSource,
): Promise<OperateResult[]> {
  const results: OperateResult[] = []
  for (const taskId of taskIds) {
    try {
      const { state } = await operateTask(deps, caller, ref, taskId, action, source)
      results.push({ task_id: taskId, result: true, state })
    } catch (err) {
      if (err instanceof StdopsError) {
        results.push({ task_id: taskId, result: false, code: err.code, message: err.message })
        continue
      }
      deps.logger.error({ err, taskId, action }, 'internal error operating one of several tasks')
      results.push({
        task_id: taskId,
        result: false,
        code: LegacyCode.UNKNOWN_ERROR,
        message: 'internal error',
      })
    }
  }
  return results
}
