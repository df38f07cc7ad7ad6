import type { PipelineTreeInput } from '../pipeline/schema'

/**
 * Pipeline trees shaped as bk-sops's web editor saves them (ids `n…` / `l…` of 32 characters,
 * `location` and `line` for drawing, the editor's extra keys), for tests in every package.
 * Ids are deterministic: the same calls build the same tree.
 */

export type ComponentData = Record<string, { hook: boolean; value: unknown }>

type GatewayKind = 'ParallelGateway' | 'ExclusiveGateway' | 'ConditionalParallelGateway' | 'ConvergeGateway'

type Node = {
  id: string
  type: string
  name: string
  incoming: string[]
  outgoing: string[]
  extra: Record<string, unknown>
}

export type TreeBuilder = {
  readonly startId: string
  readonly endId: string
  activity(
    code: string,
    opts?: {
      name?: string
      data?: ComponentData
      errorIgnorable?: boolean
      optional?: boolean
      extra?: Record<string, unknown>
    },
  ): string
  /** A SubProcess step running template `templateId`; `constants` maps the child's constants. */
  subprocess(
    templateId: number,
    opts?: { name?: string; constants?: Record<string, { hook: boolean; value: unknown }> },
  ): string
  gateway(type: GatewayKind, opts?: { name?: string }): string
  /** A flow; `condition` and `isDefault` set the source gateway's `conditions` / `default_condition`. */
  flow(source: string, target: string, opts?: { condition?: string; isDefault?: boolean }): string
  /** Wires `ids` one after the other; returns the flow ids. */
  chain(...ids: string[]): string[]
  constant(key: string, value: unknown, extra?: Record<string, unknown>): void
  output(key: string): void
  build(): PipelineTreeInput
}

export function createTreeBuilder(): TreeBuilder {
  let counter = 0
  let activityCount = 0
  const uniqid = (prefix: string) => prefix + (++counter).toString(16).padStart(31, '0')
  const nodes = new Map<string, Node>()
  const flows: Record<string, { id: string; source: string; target: string; is_default: false }> = {}
  const constants: Record<string, Record<string, unknown>> = {}
  const outputs: string[] = []

  const addNode = (type: string, name: string, extra: Record<string, unknown> = {}) => {
    const id = uniqid('n')
    nodes.set(id, { id, type, name, incoming: [], outgoing: [], extra })
    return id
  }
  const node = (id: string) => {
    const found = nodes.get(id)
    if (!found) throw new Error(`no node ${id} in this tree`)
    return found
  }
  const startId = addNode('EmptyStartEvent', '')
  const endId = addNode('EmptyEndEvent', '')

  const builder: TreeBuilder = {
    startId,
    endId,
    activity(
      code,
      {
        name = `${code} ${++activityCount}`,
        data = {},
        errorIgnorable = false,
        optional = false,
        extra = {},
      } = {},
    ) {
      return addNode('ServiceActivity', name, {
        component: { code, data, version: 'legacy' },
        error_ignorable: errorIgnorable,
        retryable: true,
        skippable: true,
        optional,
        loop: null,
        stage_name: '',
        labels: [],
        ...extra,
      })
    },
    subprocess(templateId, { name = `subprocess ${++activityCount}`, constants = {} } = {}) {
      return addNode('SubProcess', name, {
        template_id: templateId,
        version: '',
        constants,
        optional: false,
        stage_name: '',
        labels: [],
      })
    },
    gateway(type, { name = '' } = {}) {
      return addNode(type, name)
    },
    flow(source, target, { condition, isDefault = false } = {}) {
      const id = uniqid('l')
      node(source).outgoing.push(id)
      node(target).incoming.push(id)
      flows[id] = { id, source, target, is_default: false }
      const { extra } = node(source)
      if (condition !== undefined) {
        const conditions = (extra.conditions ?? {}) as Record<string, unknown>
        conditions[id] = { evaluate: condition, name: condition, tag: `branch_${source}_${target}` }
        extra.conditions = conditions
      }
      if (isDefault)
        extra.default_condition = { flow_id: id, name: 'default', tag: `branch_${source}_${target}` }
      return id
    },
    chain(...ids) {
      return ids.slice(1).map((target, i) => builder.flow(ids[i]!, target))
    },
    constant(key, value, extra = {}) {
      const index = Object.keys(constants).length
      constants[`\${${key}}`] = {
        key: `\${${key}}`,
        name: key,
        value,
        source_type: 'custom',
        source_info: {},
        source_tag: 'input.input',
        custom_type: 'input',
        show_type: 'show',
        validation: '^.+$',
        desc: '',
        index,
        version: 'legacy',
        ...extra,
      }
    },
    output(key) {
      outputs.push(`\${${key}}`)
    },
    build() {
      const start = node(startId)
      const end = node(endId)
      const single = (list: string[]) => (list.length === 1 ? list[0]! : list)
      const orEmpty = (list: string[]) => (list.length === 0 ? '' : [...list]) // bk-sops writes "" for none
      const activities: Record<string, unknown> = {}
      const gateways: Record<string, unknown> = {}
      for (const { id, type, name, incoming, outgoing, extra } of nodes.values()) {
        if (type === 'ServiceActivity' || type === 'SubProcess') {
          activities[id] = { id, name, type, incoming: [...incoming], outgoing: single(outgoing), ...extra }
        } else if (id !== startId && id !== endId) {
          const converge = type === 'ConvergeGateway'
          gateways[id] = {
            id,
            name,
            type,
            incoming: [...incoming],
            outgoing: converge ? single(outgoing) : [...outgoing],
            ...extra,
          }
        }
      }
      const location = [...nodes.values()].map(({ id, type }, i) => ({
        id,
        type: LOCATION_TYPES[type] ?? 'tasknode',
        x: 40 + 160 * i,
        y: 150,
      }))
      const line = Object.values(flows).map(({ id, source, target }) => ({
        id,
        source: { arrow: 'Right', id: source },
        target: { arrow: 'Left', id: target },
      }))
      const tree = {
        start_event: {
          id: startId,
          name: '',
          type: 'EmptyStartEvent',
          incoming: orEmpty(start.incoming),
          outgoing: single(start.outgoing),
          labels: [],
        },
        end_event: {
          id: endId,
          name: '',
          type: 'EmptyEndEvent',
          incoming: [...end.incoming],
          outgoing: orEmpty(end.outgoing),
          labels: [],
        },
        activities,
        gateways,
        flows,
        constants,
        outputs,
        location,
        line,
      }
      return JSON.parse(JSON.stringify(tree)) as PipelineTreeInput
    },
  }
  return builder
}

const LOCATION_TYPES: Record<string, string> = {
  EmptyStartEvent: 'startpoint',
  EmptyEndEvent: 'endpoint',
  SubProcess: 'subflow',
  ParallelGateway: 'parallelgateway',
  ExclusiveGateway: 'branchgateway',
  ConditionalParallelGateway: 'conditionalparallelgateway',
  ConvergeGateway: 'convergegateway',
}

/** start → n activities of `componentCode` → end. */
export function linearTree(n: number, componentCode: string, data: ComponentData = {}): PipelineTreeInput {
  const b = createTreeBuilder()
  const activities = Array.from({ length: n }, () => b.activity(componentCode, { data }))
  b.chain(b.startId, ...activities, b.endId)
  return b.build()
}

/** start → parallel gateway → `width` activities → converge → end. */
export function parallelTree(
  width: number,
  componentCode: string,
  data: ComponentData = {},
): PipelineTreeInput {
  const b = createTreeBuilder()
  const fork = b.gateway('ParallelGateway')
  const join = b.gateway('ConvergeGateway')
  b.flow(b.startId, fork)
  for (let i = 0; i < width; i++) b.chain(fork, b.activity(componentCode, { data }), join)
  b.flow(join, b.endId)
  return b.build()
}

/**
 * start → exclusive gateway on constant `${branch}` (default "a"): `== "a"` → A, `== "b"` → B,
 * otherwise → C (default flow) → converge → end. The activities are named A, B and C.
 */
export function exclusiveTree(componentCode: string, data: ComponentData = {}): PipelineTreeInput {
  const b = createTreeBuilder()
  b.constant('branch', 'a')
  const choice = b.gateway('ExclusiveGateway')
  const join = b.gateway('ConvergeGateway')
  b.flow(b.startId, choice)
  for (const [name, condition] of [
    ['A', '${branch} == "a"'],
    ['B', '${branch} == "b"'],
  ] as const) {
    const activity = b.activity(componentCode, { name, data })
    b.flow(choice, activity, { condition })
    b.flow(activity, join)
  }
  const fallback = b.activity(componentCode, { name: 'C', data })
  b.flow(choice, fallback, { isDefault: true })
  b.chain(fallback, join, b.endId)
  return b.build()
}

/**
 * start → activity → exclusive gateway: back to the activity while `${again} == "yes"`
 * (constant, default "no"), otherwise (default flow) → end. A loop.
 */
export function exclusiveLoopTree(componentCode: string, data: ComponentData = {}): PipelineTreeInput {
  const b = createTreeBuilder()
  b.constant('again', 'no')
  const activity = b.activity(componentCode, { data })
  const choice = b.gateway('ExclusiveGateway')
  b.chain(b.startId, activity, choice)
  b.flow(choice, activity, { condition: '${again} == "yes"' })
  b.flow(choice, b.endId, { isDefault: true })
  return b.build()
}
