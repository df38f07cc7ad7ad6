import { DISPLAYED_TASK_STATES } from '@stdops/core'
import { z } from 'zod'

/**
 * What each page keeps in its URL, so that every view (filters, page, selected node, tab,
 * attempt) is a link. A malformed value falls back to the default instead of breaking the page.
 */

export const TasksSearchSchema = z.object({
  states: z.array(z.enum(DISPLAYED_TASK_STATES)).optional().catch(undefined),
  template: z.number().int().positive().optional().catch(undefined),
  creator: z.string().max(64).optional().catch(undefined),
  text: z.string().max(100).optional().catch(undefined),
  /** YYYY-MM-DD, in the shown zone */
  from: z
    .string()
    .regex(/^\d{4}-\d{2}-\d{2}$/)
    .optional()
    .catch(undefined),
  to: z
    .string()
    .regex(/^\d{4}-\d{2}-\d{2}$/)
    .optional()
    .catch(undefined),
  page: z.number().int().min(1).optional().catch(undefined),
  size: z
    .union([z.literal(10), z.literal(20), z.literal(50), z.literal(100)])
    .optional()
    .catch(undefined),
})
export type TasksSearch = z.infer<typeof TasksSearchSchema>

export const TASK_TABS = ['events', 'records', 'data'] as const
export type TaskTab = (typeof TASK_TABS)[number]

export const TaskSearchSchema = z.object({
  node: z.string().max(200).optional().catch(undefined),
  tab: z.enum(TASK_TABS).optional().catch(undefined),
  /** an earlier attempt of the selected node (its history id); absent: the current one */
  attempt: z.number().int().optional().catch(undefined),
  failures: z.boolean().optional().catch(undefined),
  /** the events tab shows only the selected node's events */
  nodeEvents: z.boolean().optional().catch(undefined),
  q: z.string().max(100).optional().catch(undefined),
  waits: z.boolean().optional().catch(undefined),
})
export type TaskSearch = z.infer<typeof TaskSearchSchema>

export const TemplateSearchSchema = z.object({
  node: z.string().max(200).optional().catch(undefined),
})

export const SchedulesSearchSchema = z.object({
  /** the periodic task whose details are open */
  periodic: z.number().int().positive().optional().catch(undefined),
  /** the creation form that is open */
  create: z.enum(['periodic', 'clocked']).optional().catch(undefined),
})

export const SignInSearchSchema = z.object({
  redirect: z.string().max(2000).optional().catch(undefined),
})

export const bizIdParams = {
  parse: (p: { bizId: string }) => ({ bizId: z.coerce.number().int().positive().parse(p.bizId) }),
  stringify: (p: { bizId: number }) => ({ bizId: String(p.bizId) }),
}
export const taskIdParams = {
  parse: (p: { taskId: string }) => ({ taskId: z.coerce.number().int().positive().parse(p.taskId) }),
  stringify: (p: { taskId: number }) => ({ taskId: String(p.taskId) }),
}
export const templateIdParams = {
  parse: (p: { templateId: string }) => ({
    templateId: z.coerce.number().int().positive().parse(p.templateId),
  }),
  stringify: (p: { templateId: number }) => ({ templateId: String(p.templateId) }),
}
