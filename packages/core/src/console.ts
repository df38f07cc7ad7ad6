import { z } from 'zod'
import { GetTemplateListParamsSchema, IdSchema } from './legacy'
import { TASK_ACTIONS, TASK_STATES } from './states'

/**
 * Parameters of the procedures the web console added beside the legacy ones (any client may call
 * them): a paged task search with per-state counts, operations on several tasks at once.
 */

/**
 * The states a task list shows: the task's own states, plus FAILED for a running task whose
 * failed node waits for an operator (as get_task_status displays it).
 */
export const DISPLAYED_TASK_STATES = [...TASK_STATES, 'FAILED'] as const
export type DisplayedTaskState = (typeof DISPLAYED_TASK_STATES)[number]

/** `bk_biz_id` and `scope`: the project a request names. */
export const ProjectParamsSchema = GetTemplateListParamsSchema

/** Epoch milliseconds. */
const epochMs = z.number().int().min(0).max(8_640_000_000_000_000)

export const TaskSearchParamsSchema = ProjectParamsSchema.extend({
  /** any of these displayed states (all when absent or empty) */
  states: z.array(z.enum(DISPLAYED_TASK_STATES)).max(DISPLAYED_TASK_STATES.length).optional(),
  template_id: IdSchema.optional(),
  creator: z.string().min(1).max(64).optional(),
  executor: z.string().min(1).max(64).optional(),
  created_after: epochMs.optional(),
  created_before: epochMs.optional(),
  /** a case-insensitive part of the name, or the task's id */
  text: z
    .string()
    .max(100)
    .refine((v) => !v.includes('\u0000'), 'must not contain NUL characters')
    .optional(),
  offset: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).default(0),
  limit: z.number().int().min(1).max(200).default(20),
})
export type TaskSearchParams = z.output<typeof TaskSearchParamsSchema>

/** What a task search filters on, paging aside. */
export type TaskFilter = Omit<TaskSearchParams, 'bk_biz_id' | 'scope' | 'offset' | 'limit'>

export const MAX_BULK_TASKS = 100

export const OperateTasksParamsSchema = ProjectParamsSchema.extend({
  task_ids: z
    .array(IdSchema)
    .min(1, 'must not be empty')
    .max(MAX_BULK_TASKS, `must have at most ${MAX_BULK_TASKS} ids`)
    .refine((ids) => new Set(ids).size === ids.length, 'must not repeat an id'),
  action: z.enum(TASK_ACTIONS),
})
export type OperateTasksParams = z.output<typeof OperateTasksParamsSchema>

/** Follow the state of a page of tasks, and the per-state counts of a search. */
export const TaskChangesParamsSchema = TaskSearchParamsSchema.omit({ offset: true, limit: true }).extend({
  task_ids: z.array(IdSchema).max(200),
})
export type TaskChangesParams = z.output<typeof TaskChangesParamsSchema>
