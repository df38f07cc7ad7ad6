import { z } from 'zod'

/**
 * Parameters of the legacy ESB APIs (esb-api.md §4). GET parameters come from the query string,
 * so numbers and booleans are also accepted as their text. Keys not listed here (credentials
 * among them) are dropped. Each problem has a short message; formatZodError makes the sentence.
 */

const required = (what: string) => ({
  error: (issue: { input?: unknown }) => (issue.input === undefined ? 'is required' : `must be ${what}`),
})

const MAX_ID = Number.MAX_SAFE_INTEGER // 2^53 − 1

/** An id: an integer 1..2^53−1, or a string of its digits. */
export const IdSchema = z
  .union([z.number(), z.string()], required('a positive integer'))
  .transform((value, ctx) => {
    const id = typeof value === 'number' ? value : /^[1-9]\d*$/.test(value) ? Number(value) : Number.NaN
    if (Number.isInteger(id) && id >= 1 && id <= MAX_ID) return id
    ctx.addIssue({ code: 'custom', message: 'must be a positive integer' })
    return z.NEVER
  })

/** A whole number min..max, or its digits (query strings). */
const count = (min: number, max: number) => {
  const message = `must be an integer from ${min} to ${max}`
  return z.union([z.number(), z.string()], { error: message }).transform((value, ctx) => {
    const n = typeof value === 'number' ? value : /^\d+$/.test(value) ? Number(value) : Number.NaN
    if (Number.isInteger(n) && n >= min && n <= max) return n
    ctx.addIssue({ code: 'custom', message })
    return z.NEVER
  })
}

/** A boolean, or `true` / `false` / `1` / `0` (query strings). */
const flag = z
  .union([z.boolean(), z.enum(['true', 'false', '1', '0'])], required('true or false'))
  .transform((v) => v === true || v === 'true' || v === '1')

/** Text for names, descriptions and filters. PostgreSQL text cannot hold NUL, so no column gets one. */
const text = z
  .string(required('a string'))
  .refine((v) => !v.includes('\u0000'), 'must not contain NUL characters')

/** A task's or template's name: 1 to 100 characters. */
const name = text.min(1, 'must not be empty').max(100, 'must be at most 100 characters')

export const MAX_NESTING = 64

/** True when `value` nests objects and arrays at most `limit` deep (iterative: no stack to overflow). */
export function nestingWithin(value: unknown, limit: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 0]]
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!
    if (v === null || typeof v !== 'object') continue
    if (depth >= limit) return false
    for (const child of Object.values(v)) stack.push([child, depth + 1])
  }
  return true
}

const object = z
  .record(z.string(), z.unknown(), required('an object'))
  .refine((v) => nestingWithin(v, MAX_NESTING), `must not nest deeper than ${MAX_NESTING} levels`)

/** `YYYY-MM-DD HH:MM:SS` or `YYYY-MM-DD`, kept as given (the server applies its time zone). */
const dateTime = z
  .string(required('a date'))
  .regex(
    /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])( ([01]\d|2[0-3]):[0-5]\d:[0-5]\d)?$/,
    'must be a date as YYYY-MM-DD HH:MM:SS or YYYY-MM-DD',
  )

const common = {
  bk_biz_id: IdSchema,
  scope: z.enum(['cmdb_biz', 'project'], required('cmdb_biz or project')).default('cmdb_biz'),
}

export const OperateTaskParamsSchema = z.object({
  ...common,
  task_id: IdSchema,
  /** checked by transitionTask: a missing or unknown action is an invalid operation, not a bad param */
  action: text.optional(),
})

export const StartTaskParamsSchema = z.object({ ...common, task_id: IdSchema })

export const CreateTaskParamsSchema = z.object({
  ...common,
  template_id: IdSchema,
  name,
  constants: object.optional(),
  pipeline_tree: object.optional(),
  description: text.optional(),
  callback_url: text.regex(/^https?:\/\/\w.+$/, 'must be an http(s) URL').optional(),
})

export const GetTaskStatusParamsSchema = z.object({ ...common, task_id: IdSchema })

export const GetTasksStatusParamsSchema = z.object({
  ...common,
  task_id_list: z
    .array(IdSchema, required('a list of task ids'))
    .min(1, 'must not be empty')
    .max(50, 'must have at most 50 ids'),
  include_children_status: flag.optional(),
})

export const GetTaskDetailParamsSchema = z.object({ ...common, task_id: IdSchema })

export const GetTaskListParamsSchema = z.object({
  ...common,
  keyword: text.optional(),
  is_started: flag.optional(),
  is_finished: flag.optional(),
  executor: text.optional(),
  template_id: IdSchema.optional(),
  create_time_start: dateTime.optional(),
  create_time_end: dateTime.optional(),
  offset: count(0, MAX_ID).default(0),
  limit: count(1, 200).default(100),
})

export const GetTaskOperateRecordParamsSchema = z.object({
  ...common,
  task_id: IdSchema,
  node_id: text.optional(),
})

export const CreateTemplateParamsSchema = z.object({
  ...common,
  name,
  pipeline_tree: object,
  description: text.optional(),
})

export const GetTemplateListParamsSchema = z.object(common)

export const GetTemplateInfoParamsSchema = z.object({ ...common, template_id: IdSchema })

/** The building blocks of the schemas above, for other API families' schemas (schedules). */
export const legacyFields = { required, count, flag, text, name, object, dateTime, common } as const

export type OperateTaskParams = z.output<typeof OperateTaskParamsSchema>
export type StartTaskParams = z.output<typeof StartTaskParamsSchema>
export type CreateTaskParams = z.output<typeof CreateTaskParamsSchema>
export type GetTaskStatusParams = z.output<typeof GetTaskStatusParamsSchema>
export type GetTasksStatusParams = z.output<typeof GetTasksStatusParamsSchema>
export type GetTaskDetailParams = z.output<typeof GetTaskDetailParamsSchema>
export type GetTaskListParams = z.output<typeof GetTaskListParamsSchema>
export type GetTaskOperateRecordParams = z.output<typeof GetTaskOperateRecordParamsSchema>
export type CreateTemplateParams = z.output<typeof CreateTemplateParamsSchema>
export type GetTemplateListParams = z.output<typeof GetTemplateListParamsSchema>
export type GetTemplateInfoParams = z.output<typeof GetTemplateInfoParamsSchema>

/** One sentence for the reply: the first failing field and what is wrong with it. */
export function formatZodError(err: z.ZodError): string {
  const [issue] = err.issues
  if (!issue) return 'invalid param'
  return issue.path.length > 0
    ? `invalid param: ${issue.path.join('.')}: ${issue.message}`
    : `invalid param: ${issue.message}`
}
