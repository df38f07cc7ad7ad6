import { z } from 'zod'
import { IdSchema, legacyFields, TemplateSourceSchema } from './legacy'

/**
 * Periodic and clocked tasks: the cron as bk-sops takes it, and the parameters of the schedule
 * APIs. Whether each cron field is valid cron is the engine's cron library's call (the engine's
 * `checkCron`); here only the shape.
 */

const { required, count, flag, text, name, object, common, nodeIdList, schemeIds } = legacyFields

/** bk-sops's cron fields, in the order of its written form `m h d dM MY`. */
export const CRON_FIELDS = ['minute', 'hour', 'day_of_week', 'day_of_month', 'month_of_year'] as const
export type CronField = (typeof CRON_FIELDS)[number]
/** A cron in bk-sops's form: each field a cron field (`*`, `*\/5`, `1-5`, `1,3`, `mon-fri`); day_of_week 0–6 from Sunday. */
export type CronSpec = Record<CronField, string>

/** The suffix bk-sops writes after a cron (`*\/5 * * * * (m/h/d/dM/MY)`): the fields in its own order. */
export const BK_CRON_SUFFIX = '(m/h/d/dM/MY)'

const cronField = z
  .string(required('a cron field'))
  .trim()
  .min(1, 'must not be empty')
  .max(200, 'must be at most 200 characters')
  .regex(/^\S+$/, 'must not contain spaces')

const CronObjectSchema = z.object({
  minute: cronField.default('*'),
  hour: cronField.default('*'),
  day_of_week: cronField.default('*'),
  day_of_month: cronField.default('*'),
  month_of_year: cronField.default('*'),
})

/**
 * A cron written as one string: the usual crontab order `minute hour day_of_month month day_of_week`
 * (what bk-sops's web form takes and splits), or bk-sops's own written form
 * `minute hour day_of_week day_of_month month_of_year (m/h/d/dM/MY)`, recognised by that suffix, so
 * that a cron read back from get_periodic_task_info can be sent again unchanged.
 */
export function parseCronText(value: string): CronSpec | null {
  let s = value.trim()
  const bk = s.endsWith(BK_CRON_SUFFIX)
  if (bk) s = s.slice(0, -BK_CRON_SUFFIX.length).trim()
  const parts = s.split(/\s+/)
  if (parts.length !== 5 || parts.some((p) => p.length === 0 || p.length > 200)) return null
  const [a, b, c, d, e] = parts as [string, string, string, string, string]
  return bk
    ? { minute: a, hour: b, day_of_week: c, day_of_month: d, month_of_year: e }
    : { minute: a, hour: b, day_of_month: c, month_of_year: d, day_of_week: e }
}

/** `cron` as sent: an object of the five fields (each `*` when absent), or one string (parseCronText). */
export type CronInput = string | Partial<Record<CronField, string>>

/** `cron` → CronSpec. Hand-written rather than a union, so that a refusal names the field at fault. */
export const CronInputSchema = z
  .custom<CronInput>(() => true)
  .transform((v, ctx): CronSpec => {
    const fail = (message: string, path: string[] = []) => {
      ctx.addIssue({ code: 'custom', message, path })
      return z.NEVER
    }
    if (v === undefined) return fail('is required')
    if (typeof v === 'string') {
      return (
        parseCronText(v) ??
        fail('must be 5 fields "minute hour day_of_month month day_of_week" (or bk-sops\'s written form)')
      )
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v))
      return fail(
        'must be an object {minute, hour, day_of_week, day_of_month, month_of_year} or a cron string',
      )
    const parsed = CronObjectSchema.safeParse(v)
    if (!parsed.success) {
      const [issue] = parsed.error.issues
      return fail(issue?.message ?? 'is invalid', (issue?.path ?? []).map(String))
    }
    return parsed.data
  })

/** bk-sops's written form of a cron: `m h d dM MY (m/h/d/dM/MY)`. */
export function formatCron(spec: CronSpec): string {
  return `${CRON_FIELDS.map((f) => spec[f]).join(' ')} ${BK_CRON_SUFFIX}`
}

/**
 * `template_source`: a project's template (`project`; older clients say `business`) or a common
 * template (`common`).
 */
const templateSource = TemplateSourceSchema

export const CreatePeriodicTaskParamsSchema = z.object({
  ...common,
  template_id: IdSchema,
  name,
  cron: CronInputSchema,
  constants: object.optional(),
  template_source: templateSource,
  /** optional activities the firings leave out (applied to the snapshot at creation) */
  exclude_task_nodes_id: nodeIdList.optional(),
  template_schemes_id: schemeIds.optional(),
})

export const GetPeriodicTaskListParamsSchema = z.object(common)

export const GetPeriodicTaskInfoParamsSchema = z.object({ ...common, task_id: IdSchema })

export const SetPeriodicTaskEnabledParamsSchema = z.object({
  ...common,
  task_id: IdSchema,
  enabled: flag.default(false),
})

export const ModifyCronForPeriodicTaskParamsSchema = z.object({
  ...common,
  task_id: IdSchema,
  cron: CronInputSchema,
})

export const ModifyConstantsForPeriodicTaskParamsSchema = z.object({
  ...common,
  task_id: IdSchema,
  constants: object.default({}),
})

/** Not an ESB API: the latest firings of a periodic task (tRPC `periodic.firings`, `stdops periodic show`). */
export const GetPeriodicTaskFiringsParamsSchema = z.object({
  ...common,
  task_id: IdSchema,
  limit: count(1, 200).default(20),
})

/**
 * `plan_start_time`: `YYYY-MM-DD HH:MM:SS` (fractions of a second ignored) with an optional UTC offset (`+0800`, `+08:00`, ` +0800`,
 * `Z`); without one it is read in the server's time zone. Kept as text here; the service reads it.
 */
export const PLAN_START_TIME =
  /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,6})?)?(?:\s*(Z|[+-]\d{2}:?\d{2}))?$/

export const CreateClockedTaskParamsSchema = z.object({
  ...common,
  template_id: IdSchema,
  task_name: name,
  plan_start_time: text.regex(
    PLAN_START_TIME,
    'must be a time as YYYY-MM-DD HH:MM:SS, optionally with a UTC offset such as +0800',
  ),
  task_parameters: z
    .object(
      {
        constants: object.default({}),
        template_schemes_id: z
          .array(z.union([z.number().int().positive(), z.string().min(1)]), required('a list of scheme ids'))
          .max(100, 'must have at most 100 schemes')
          .default([]),
      },
      required('an object'),
    )
    .default({ constants: {}, template_schemes_id: [] }),
  template_source: templateSource,
})

export const CLOCKED_STATES = ['not_started', 'started', 'failed'] as const
export type ClockedState = (typeof CLOCKED_STATES)[number]

export const GetClockedTaskListParamsSchema = z.object({
  ...common,
  id: IdSchema.optional(),
  task_name: text.optional(),
  creator: text.optional(),
  editor: text.optional(),
  state: z.enum(CLOCKED_STATES, required(CLOCKED_STATES.join(', '))).optional(),
  expected_timezone: text.max(64, 'must be at most 64 characters').optional(),
  offset: count(0, Number.MAX_SAFE_INTEGER).default(0),
  limit: count(1, 200).default(100),
})

/** Not an ESB API (bk-sops has none): the console's and the CLI's. */
export const DeleteClockedTaskParamsSchema = z.object({ ...common, task_id: IdSchema })

export type CreatePeriodicTaskParams = z.output<typeof CreatePeriodicTaskParamsSchema>
export type CreateClockedTaskParams = z.output<typeof CreateClockedTaskParamsSchema>
export type GetClockedTaskListParams = z.output<typeof GetClockedTaskListParamsSchema>
