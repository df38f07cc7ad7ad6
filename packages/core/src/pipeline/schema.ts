import { z } from 'zod'

/**
 * bk-sops's web pipeline tree. Every object keeps keys it does not know
 * (`location`, `line`, `labels`, `stage_name`, …) so a tree goes back out as it came in.
 * `incoming` / `outgoing` lists may be a string, a list or "" (bk-sops writes `incoming: ""` on the
 * start event); they come out as lists, except the single `outgoing` of the start event and of
 * activities, which comes out as a string.
 */

const FlowIdsSchema = z
  .union([z.string(), z.array(z.string())])
  .optional()
  .transform((v) => (v === undefined || v === '' ? [] : typeof v === 'string' ? [v] : v))

const name = z.string().default('')

/** Refuses a node whose `outgoing` is not exactly one flow, naming it, and unwraps the flow id. */
function singleOutgoing<T extends { id: string; outgoing: string[] }>(what: string) {
  return (node: T, ctx: z.RefinementCtx<T>) => {
    const [flow] = node.outgoing
    if (flow === undefined || node.outgoing.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['outgoing'],
        message: `${what} ${node.id} must have exactly 1 outgoing flow`,
      })
      return z.NEVER
    }
    return { ...node, outgoing: flow }
  }
}

const StartEventSchema = z
  .looseObject({
    id: z.string().min(1),
    name,
    type: z.literal('EmptyStartEvent'),
    incoming: FlowIdsSchema,
    outgoing: FlowIdsSchema,
  })
  .transform(singleOutgoing('start event'))

const EndEventSchema = z.looseObject({
  id: z.string().min(1),
  name,
  type: z.literal('EmptyEndEvent'),
  incoming: FlowIdsSchema,
  outgoing: FlowIdsSchema,
})

const ComponentSchema = z.looseObject({
  code: z.string().min(1),
  version: z.string().optional(),
  data: z
    .record(z.string(), z.looseObject({ hook: z.boolean().default(false), value: z.unknown() }))
    .default({}),
})

export const ActivitySchema = z
  .looseObject({
    id: z.string().min(1),
    name,
    type: z.literal('ServiceActivity'),
    incoming: FlowIdsSchema,
    outgoing: FlowIdsSchema,
    component: ComponentSchema,
    error_ignorable: z.boolean().optional(),
    retryable: z.boolean().optional(),
    skippable: z.boolean().optional(),
    /** seconds; null as bk-sops writes it when unset */
    timeout: z.number().positive().nullable().optional(),
    /** Retry a failed run up to `times` times, `interval` seconds apart (bk-sops's field). */
    auto_retry: z
      .looseObject({
        enable: z.boolean().default(false),
        interval: z.coerce.number().min(0).max(86_400).default(0),
        times: z.coerce.number().int().min(0).max(10).default(1),
      })
      .nullable()
      .optional(),
    /** Forced-fail (and then maybe skip) a run longer than `seconds` (bk-sops's field). */
    timeout_config: z
      .looseObject({
        enable: z.boolean().default(false),
        seconds: z.coerce.number().positive().max(31_536_000).default(10),
        action: z.enum(['forced_fail', 'forced_fail_and_skip']).default('forced_fail'),
      })
      .nullable()
      .optional(),
  })
  .transform(singleOutgoing('activity'))

/**
 * A step that runs another template of the same project (bk-sops's `SubProcess`). `constants` maps
 * the child's constants to values or, with `hook: true`, to the parent's constants (`"${x}"`).
 * `pipeline` is the child's tree, copied in at task creation (a template leaves it out); it is
 * parsed as a tree of its own where it is used (expandSubprocesses, buildTaskGraph).
 */
export const SubProcessSchema = z
  .looseObject({
    id: z.string().min(1),
    name,
    type: z.literal('SubProcess'),
    incoming: FlowIdsSchema,
    outgoing: FlowIdsSchema,
    template_id: z.union([z.number().int().positive(), z.string().regex(/^[1-9][0-9]{0,15}$/)]),
    version: z.string().optional(),
    constants: z
      .record(z.string(), z.looseObject({ hook: z.boolean().default(false), value: z.unknown() }))
      .default({}),
    pipeline: z.unknown().optional(),
  })
  .transform(singleOutgoing('subprocess'))

export const GATEWAY_TYPES = [
  'ParallelGateway',
  'ExclusiveGateway',
  'ConditionalParallelGateway',
  'ConvergeGateway',
] as const

export const GatewaySchema = z.looseObject({
  id: z.string().min(1),
  name,
  type: z.enum(GATEWAY_TYPES),
  incoming: FlowIdsSchema,
  outgoing: FlowIdsSchema,
  conditions: z.record(z.string(), z.looseObject({ evaluate: z.string() })).optional(),
  default_condition: z.looseObject({ flow_id: z.string() }).optional(),
  converge_gateway_id: z.string().optional(),
})

export const FlowSchema = z.looseObject({
  id: z.string().min(1),
  source: z.string().min(1),
  target: z.string().min(1),
  is_default: z.boolean().default(false),
})

export const ConstantSchema = z.looseObject({
  key: z.string(),
  name: z.string().optional(),
  value: z.unknown(),
  source_type: z.string().optional(),
  /** for `component_outputs` / `component_inputs`: `{<node_id>: [<key>]}` */
  source_info: z.record(z.string(), z.array(z.string())).optional(),
  show_type: z.string().optional(),
})

export const PipelineTreeSchema = z.looseObject({
  start_event: StartEventSchema,
  end_event: EndEventSchema,
  activities: z
    .record(
      z.string(),
      z.discriminatedUnion('type', [ActivitySchema, SubProcessSchema], {
        error: 'activity type must be ServiceActivity or SubProcess',
      }),
    )
    .default({}),
  gateways: z.record(z.string(), GatewaySchema).default({}),
  flows: z.record(z.string(), FlowSchema).default({}),
  constants: z.record(z.string(), ConstantSchema).default({}),
  outputs: z.array(z.string()).default([]),
})

export type PipelineTree = z.output<typeof PipelineTreeSchema>
/** A tree as a client sends it (before normalisation). */
export type PipelineTreeInput = z.input<typeof PipelineTreeSchema>
/** A ServiceActivity: a step that runs a component. */
export type Activity = z.output<typeof ActivitySchema>
export type SubProcess = z.output<typeof SubProcessSchema>
/** What `activities` holds: component steps and subprocesses. */
export type ActivityNode = Activity | SubProcess
export const isServiceActivity = (node: ActivityNode): node is Activity => node.type === 'ServiceActivity'
export type Gateway = z.output<typeof GatewaySchema>
export type GatewayType = (typeof GATEWAY_TYPES)[number]
export type Flow = z.output<typeof FlowSchema>
export type Constant = z.output<typeof ConstantSchema>
