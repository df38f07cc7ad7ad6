import { z } from 'zod'

/**
 * Parameters of the legacy ESB APIs (docs/legacy-api.md). GET parameters come from the query string,
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

/**
 * A boolean, or its text as clients write it in query strings: `true` / `false`, `True` / `False`
 * (what Python's `requests` writes for a bool), `1` / `0`.
 */
const flag = z
  .union([z.boolean(), z.enum(['true', 'false', 'True', 'False', '1', '0'])], required('true or false'))
  .transform((v) => v === true || v === 'true' || v === 'True' || v === '1')

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

/**
 * A time filter as bk-sops's get_task_list takes it: `YYYY-MM-DD`, `YYYY-MM-DD HH:MM:SS`, the same
 * with a UTC offset (`+0800`, ` +0800`, `+08:00`), or ISO 8601 (`2024-01-01T12:00:00Z`, fractions of
 * a second allowed). Kept as given; the server reads it (no offset: its own zone).
 */
export const TIME_FILTER =
  /^(\d{4})-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])(?:[ T]([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d)(?:\.\d{1,6})?)?(?:\s*(Z|[+-](?:[01]\d|2[0-3]):?[0-5]\d))?)?$/
const timeFilter = z
  .string(required('a time'))
  .regex(
    TIME_FILTER,
    'must be a time as YYYY-MM-DD HH:MM:SS (optionally with a UTC offset such as +0800), ISO 8601 or YYYY-MM-DD',
  )

/** A list of ids: a JSON list of ids, or their text separated by commas (`1,2, 3`). */
const idList = z
  .union([z.array(z.union([z.number(), z.string()])), z.string()], required('a list of ids'))
  .transform((v, ctx) => {
    const items =
      typeof v === 'string'
        ? v
            .split(',')
            .map((x) => x.trim())
            .filter((x) => x !== '')
        : v
    const ids: number[] = []
    for (const item of items) {
      const parsed = IdSchema.safeParse(item)
      if (!parsed.success) {
        ctx.addIssue({
          code: 'custom',
          message: `must be a list of positive integers, got ${JSON.stringify(item)}`,
        })
        return z.NEVER
      }
      ids.push(parsed.data)
    }
    return ids
  })

/** A list of node ids (strings); a JSON string of such a list is read too. */
const nodeIdList = z
  .union([z.array(z.string()), z.string()], required('a list of node ids'))
  .transform((v) => {
    if (Array.isArray(v)) return v
    try {
      const parsed = JSON.parse(v) as unknown
      if (Array.isArray(parsed) && parsed.every((x) => typeof x === 'string')) return parsed as string[]
    } catch {
      // not JSON: a single id or a comma list
    }
    return v
      .split(',')
      .map((x) => x.trim())
      .filter((x) => x !== '')
  })
  .pipe(z.array(z.string()).max(10_000, 'must have at most 10000 node ids'))

/**
 * Where a template comes from: a project's own (`project`; older clients say `business`) or a
 * common template shared by every project (`common`). `business` is read as `project`.
 */
export const TemplateSourceSchema = z
  .enum(['project', 'business', 'common'], required('project, business or common'))
  .default('project')
  .transform((v) => (v === 'business' ? 'project' : v))
export type TemplateSource = 'project' | 'common'

/**
 * Execution schemes, as bk-sops takes them: one id or a list, each an integer scheme id or the
 * string id get_template_schemes answers (`<template_id>-<name>`).
 */
const schemeIds = z
  .union(
    [z.array(z.union([z.number(), z.string()])), z.number(), z.string()],
    required('a list of scheme ids'),
  )
  .transform((v) => (Array.isArray(v) ? v : [v]))
  .pipe(
    z
      .array(z.union([z.number().int().positive(), z.string().min(1)]))
      .max(100, 'must have at most 100 schemes'),
  )

const common = {
  bk_biz_id: IdSchema,
  scope: z.enum(['cmdb_biz', 'project'], required('cmdb_biz or project')).default('cmdb_biz'),
}

export const OperateTaskParamsSchema = z.object({
  ...common,
  task_id: IdSchema,
  /**
   * checked by transitionTask: a missing or unknown action is an invalid operation, not a bad param
   * (a NUL in it too: it is never stored, so it is just one more unknown action)
   */
  action: z.string(required('a string')).optional(),
})

export const StartTaskParamsSchema = z.object({ ...common, task_id: IdSchema })

export const CreateTaskParamsSchema = z
  .object({
    ...common,
    template_id: IdSchema,
    template_source: TemplateSourceSchema,
    name,
    /** bk-sops: `common` (a template's task) or `common_func` (functionalization, which stdops has not) */
    flow_type: z
      .enum(['common'], { error: () => 'must be common (functionalization tasks are not supported)' })
      .optional(),
    constants: object.optional(),
    pipeline_tree: object.optional(),
    description: text.optional(),
    callback_url: text.regex(/^https?:\/\/[\w[].+$/, 'must be an http(s) URL').optional(),
    callback_version: z.enum(['v1', 'v2'], required('v1 or v2')).optional(),
    exclude_task_nodes_id: nodeIdList.optional(),
    execute_task_nodes_id: nodeIdList.optional(),
    template_schemes_id: schemeIds.optional(),
    simplify_vars: z.array(text, required('a list of constant keys')).max(1000).optional(),
  })
  .superRefine((p, ctx) => {
    const schemes = p.template_schemes_id ?? []
    if (schemes.length === 0) return
    const clash =
      p.pipeline_tree !== undefined
        ? 'pipeline_tree'
        : (p.exclude_task_nodes_id ?? []).length > 0
          ? 'exclude_task_nodes_id'
          : (p.execute_task_nodes_id ?? []).length > 0
            ? 'execute_task_nodes_id'
            : undefined
    if (clash)
      ctx.addIssue({
        code: 'custom',
        path: ['template_schemes_id'],
        message: `cannot be used together with ${clash}`,
      })
  })

export const GetTaskStatusParamsSchema = z.object({
  ...common,
  task_id: IdSchema,
  /** adds a top-level `ex_data: {<node_id>: <error>}` */
  with_ex_data: flag.optional(),
  /** narrows the tree to one subprocess node */
  subprocess_id: text.max(64, 'must be at most 64 characters').optional(),
})

export const GetTasksStatusParamsSchema = z.object({
  ...common,
  task_id_list: z.array(IdSchema, required('a list of task ids')).max(50, 'must have at most 50 ids'),
  include_children_status: flag.optional(),
})

export const GetTaskDetailParamsSchema = z.object({ ...common, task_id: IdSchema })

/** bk-sops's ways a task comes to be (get_task_list's `create_method`). */
export const CREATE_METHODS = ['app', 'api', 'app_maker', 'periodic', 'clocked', 'mobile'] as const

export const GetTaskListParamsSchema = z.object({
  ...common,
  keyword: text.optional(),
  is_started: flag.optional(),
  is_finished: flag.optional(),
  executor: text.optional(),
  create_method: z.enum(CREATE_METHODS, required(CREATE_METHODS.join(', '))).optional(),
  template_id: IdSchema.optional(),
  template_ids: idList.optional(),
  /** stdops has no child tasks: true matches none */
  is_child_taskflow: flag.optional(),
  expected_timezone: text.max(64, 'must be at most 64 characters').optional(),
  create_time_start: timeFilter.optional(),
  create_time_end: timeFilter.optional(),
  offset: count(0, MAX_ID).default(0),
  /** above 200 is cut to 200, as bk-sops cuts it; 0 answers no items (the count still) */
  limit: count(0, MAX_ID)
    .default(100)
    .transform((n) => Math.min(n, 200)),
  without_count: flag.optional(),
})

export const GetTaskOperateRecordParamsSchema = z.object({
  ...common,
  task_id: IdSchema,
  node_id: text.optional(),
})

/** bk-sops's template categories. */
export const TEMPLATE_CATEGORIES = [
  'OpsTools',
  'MonitorAlarm',
  'ConfManage',
  'DevTools',
  'EnterpriseIT',
  'OfficeApp',
  'Other',
] as const
export const CategorySchema = z.enum(TEMPLATE_CATEGORIES, required(TEMPLATE_CATEGORIES.join(', ')))

/** A pipeline tree as an object, or as a JSON string of one (bk-sops's create_template takes both). */
const treeObject = z.preprocess((v) => {
  if (typeof v !== 'string') return v
  try {
    return JSON.parse(v) as unknown
  } catch {
    return v
  }
}, object)

export const CreateTemplateParamsSchema = z.object({
  ...common,
  /** absent: `new<YYYYmmddHHMMSS>` (the server's time) */
  name: name.optional(),
  pipeline_tree: treeObject,
  description: text.optional(),
  category: CategorySchema.optional(),
})

export const GetTemplateListParamsSchema = z.object({
  ...common,
  template_source: TemplateSourceSchema,
  id_in: idList.optional(),
  name_keyword: text.optional(),
  include_constants: flag.optional(),
  expected_timezone: text.max(64, 'must be at most 64 characters').optional(),
})

export const GetTemplateInfoParamsSchema = z.object({
  ...common,
  template_id: IdSchema,
  template_source: TemplateSourceSchema,
  include_constants: flag.optional(),
})

export const PreviewTaskTreeParamsSchema = z.object({
  ...common,
  template_id: IdSchema,
  template_source: TemplateSourceSchema,
  /** bk-sops's template version: stdops keeps one version of a template, so any value names it */
  version: text.max(64, 'must be at most 64 characters').optional(),
  exclude_task_nodes_id: nodeIdList.default([]),
  template_schemes_id: schemeIds.optional(),
})

export const PreviewCommonTaskTreeParamsSchema = PreviewTaskTreeParamsSchema.omit({ template_source: true })

export const GetTemplateSchemesParamsSchema = z.object({
  ...common,
  template_id: IdSchema,
  template_source: TemplateSourceSchema,
  with_constants: flag.optional(),
})

export const CreateTemplateSchemeParamsSchema = z.object({
  ...common,
  template_id: IdSchema,
  template_source: TemplateSourceSchema,
  name: text.min(1, 'must not be empty').max(64, 'must be at most 64 characters'),
  data: nodeIdList,
})

/** Common templates belong to no project: `bk_biz_id` is optional (when given, project_view there is needed). */
const optionalProject = {
  bk_biz_id: IdSchema.optional(),
  scope: common.scope,
}

export const GetCommonTemplateListParamsSchema = z.object({
  ...optionalProject,
  id_in: idList.optional(),
  name_keyword: text.optional(),
})

export const GetCommonTemplateInfoParamsSchema = z.object({
  ...optionalProject,
  template_id: IdSchema,
  include_constants: flag.optional(),
})

export const FastCreateTaskParamsSchema = z.object({
  ...common,
  name,
  pipeline_tree: treeObject,
  description: text.optional(),
  category: CategorySchema.optional(),
  flow_type: z
    .enum(['common'], { error: () => 'must be common (functionalization tasks are not supported)' })
    .optional(),
  /** bk-sops: whether subprocesses are common templates; stdops's trees have no subprocess nodes */
  has_common_subprocess: flag.optional(),
  callback_url: text.regex(/^https?:\/\/\w.+$/, 'must be an http(s) URL').optional(),
  callback_version: z.enum(['v1', 'v2'], required('v1 or v2')).optional(),
})

export const ModifyConstantsForTaskParamsSchema = z.object({
  ...common,
  task_id: IdSchema,
  constants: object.default({}),
  /** a new name; absent or "" keeps the name */
  name: z.union([name, z.literal('')], required('a string of at most 100 characters')).optional(),
})

/** bk-sops's query_task_count dimensions. */
export const TASK_COUNT_GROUPS = ['status', 'category', 'flow_type', 'create_method'] as const

export const QueryTaskCountParamsSchema = z.object({
  ...common,
  group_by: z.enum(TASK_COUNT_GROUPS, required(TASK_COUNT_GROUPS.join(', '))),
  conditions: z
    .object(
      {
        template_id: IdSchema.optional(),
        name: text.optional(),
        creator: text.optional(),
        executor: text.optional(),
        create_time__gte: timeFilter.optional(),
        create_time__lte: timeFilter.optional(),
        start_time__gte: timeFilter.optional(),
        start_time__lte: timeFilter.optional(),
        is_started: flag.optional(),
        is_finished: flag.optional(),
      },
      required('an object'),
    )
    .strict()
    .default({}),
})

export const GetTaskCountParamsSchema = z.object({
  ...common,
  keyword: text.optional(),
  is_started: flag.optional(),
  is_finished: flag.optional(),
  executor: text.optional(),
})

export const GetTasksManualInterventionStateParamsSchema = z.object({
  ...common,
  task_id_list: z.array(IdSchema, required('a list of task ids')).max(200, 'must have at most 200 ids'),
})

export const GetUserProjectListParamsSchema = z.object({})

export const GetUserProjectDetailParamsSchema = z.object(common)

/** The plugin catalogue needs no project; `bk_biz_id`, when given, must name one. */
export const GetPluginListParamsSchema = z.object({ ...optionalProject })

export const GetPluginDetailParamsSchema = z.object({
  ...optionalProject,
  code: text.min(1, 'must not be empty').max(200, 'must be at most 200 characters'),
  /** bk-sops's default `legacy` names whatever version is registered */
  version: text.max(64, 'must be at most 64 characters').optional(),
})

export const GetNodeExecutionRecordParamsSchema = z.object({
  ...common,
  template_id: IdSchema,
  template_node_id: text.min(1, 'must not be empty').max(64, 'must be at most 64 characters'),
})

export const GetTaskEffectiveTimeParamsSchema = z.object({ ...common, task_id: IdSchema })

export const RegisterProjectParamsSchema = z.object({
  bk_biz_id: IdSchema,
  /** stdops reads no CMDB: the name a new project gets (default `biz<bk_biz_id>`) */
  project_name: name.optional(),
})

/**
 * A bk-sops template export (its "export" file's content: base64 of `{template_data, digest}`),
 * at most 8 MiB of text.
 */
const templateData = text.min(1, 'must not be empty').max(8 * 1024 * 1024, 'must be at most 8 MiB')

/** bk-sops's import_project_template names the project `project_id` (read like `bk_biz_id`, per `scope`). */
export const ImportProjectTemplateParamsSchema = z
  .object({
    bk_biz_id: IdSchema.optional(),
    project_id: IdSchema.optional(),
    scope: common.scope,
    template_data: templateData,
  })
  .transform((p, ctx) => {
    const id = p.bk_biz_id ?? p.project_id
    if (id === undefined) {
      ctx.addIssue({ code: 'custom', path: ['project_id'], message: 'is required' })
      return z.NEVER
    }
    return { bk_biz_id: id, scope: p.scope, template_data: p.template_data }
  })

export const ImportCommonTemplateParamsSchema = z.object({ template_data: templateData })

// ---- the plugin gateway -------------------------------------------------------------------------

const key = (what: string, max: number) =>
  text.min(1, 'must not be empty').max(max, `must be at most ${max} characters`).describe(what)

export const PluginGatewayListParamsSchema = z.object({})

export const PluginGatewayDetailParamsSchema = z.object({
  plugin_id: key('plugin id', 200),
  version: text.max(64, 'must be at most 64 characters').optional(),
})

/**
 * A run: the project is `project_id` (its own id) or `bk_biz_id` with `scope`, as elsewhere; stdops
 * runs every plugin as a task of a project, so one of them is required.
 */
export const PluginGatewayCreateRunParamsSchema = z
  .object({
    source_key: key('source key', 64),
    plugin_id: key('plugin id', 200),
    plugin_version: key('plugin version', 64),
    client_request_id: key('idempotency key', 128),
    callback_url: text
      .regex(/^https?:\/\/\w.+$/, 'must be an http(s) URL')
      .max(2048, 'must be at most 2048 characters'),
    callback_token: key('callback token', 512),
    inputs: object.default({}),
    operator: text.max(64, 'must be at most 64 characters').optional(),
    project_id: IdSchema.optional(),
    bk_biz_id: IdSchema.optional(),
    scope: common.scope,
  })
  .transform((p, ctx) => {
    const ref =
      p.project_id !== undefined
        ? { bk_biz_id: p.project_id, scope: 'project' as const }
        : p.bk_biz_id !== undefined
          ? { bk_biz_id: p.bk_biz_id, scope: p.scope }
          : undefined
    if (!ref) {
      ctx.addIssue({
        code: 'custom',
        path: ['project_id'],
        message: 'is required (stdops runs a plugin as a task of a project)',
      })
      return z.NEVER
    }
    return { ...p, ...ref }
  })

export const PluginGatewayRunParamsSchema = z.object({ run_id: key('run id', 64) })

export const PluginGatewayRunStatusParamsSchema = z.object({ task_tag: key('run id', 64) })

/** The building blocks of the schemas above, for other API families' schemas (schedules). */
export const legacyFields = {
  required,
  count,
  flag,
  text,
  name,
  object,
  dateTime,
  timeFilter,
  idList,
  nodeIdList,
  schemeIds,
  treeObject,
  common,
} as const

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
