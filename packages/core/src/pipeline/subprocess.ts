import { ParamInvalidError } from '../errors'
import { buildGraph, type ChildScope, type PipelineGraph } from './graph'
import { type PipelineTree, PipelineTreeSchema } from './schema'
import { validatePipelineTree } from './validate'

/** How deep subprocesses may nest: a task's own tree is depth 0, its subprocesses' trees depth 1, … */
export const SUBPROCESS_DEPTH_LIMIT = 8

/** A template a SubProcess names, as the caller's project has it. */
export interface SubprocessTemplate {
  id: number
  name: string
  tree: Record<string, unknown>
  /** Recorded on the SubProcess node: which version of the template was copied. */
  version: string
}

type Raw = Record<string, unknown>
const isRecord = (v: unknown): v is Raw => typeof v === 'object' && v !== null && !Array.isArray(v)

/** Every node and flow id of a raw tree (its own level only). */
function idsOf(tree: Raw): string[] {
  const ids: string[] = []
  for (const key of ['start_event', 'end_event'] as const) {
    const node = tree[key]
    if (isRecord(node) && typeof node.id === 'string') ids.push(node.id)
  }
  for (const key of ['activities', 'gateways', 'flows'] as const) {
    const record = tree[key]
    if (isRecord(record)) ids.push(...Object.keys(record))
  }
  return ids
}

/** Nested trees' ids too: what a task's tree already uses. */
function allIds(tree: Raw, into: Set<string>) {
  for (const id of idsOf(tree)) into.add(id)
  const activities = isRecord(tree.activities) ? tree.activities : {}
  for (const a of Object.values(activities)) {
    if (isRecord(a) && a.type === 'SubProcess' && isRecord(a.pipeline)) allIds(a.pipeline, into)
  }
}

/**
 * Gives the ids of `tree` (its own level) that are in `used` fresh ones, rewriting every place
 * that names them (node lists, flows' ends, conditions, defaults, converges, constants' sources,
 * drawing); then marks all its ids used.
 */
function renameClashing(tree: Raw, used: Set<string>, fresh: (prefix: string) => string) {
  const map = new Map<string, string>()
  for (const id of idsOf(tree)) {
    if (!used.has(id)) continue
    map.set(id, fresh(id.startsWith('l') ? 'l' : 'n'))
  }
  if (map.size > 0) {
    const r = (id: unknown) => (typeof id === 'string' ? (map.get(id) ?? id) : id)
    const list = (v: unknown) => (Array.isArray(v) ? v.map(r) : r(v))
    const node = (n: unknown) => {
      if (!isRecord(n)) return n
      const out: Raw = { ...n, id: r(n.id), incoming: list(n.incoming), outgoing: list(n.outgoing) }
      if (isRecord(n.conditions))
        out.conditions = Object.fromEntries(Object.entries(n.conditions).map(([k, v]) => [r(k), v]))
      if (isRecord(n.default_condition))
        out.default_condition = { ...n.default_condition, flow_id: r(n.default_condition.flow_id) }
      if (typeof n.converge_gateway_id === 'string') out.converge_gateway_id = r(n.converge_gateway_id)
      return out
    }
    const record = (v: unknown, each: (x: unknown) => unknown) =>
      isRecord(v) ? Object.fromEntries(Object.entries(v).map(([k, x]) => [r(k), each(x)])) : v
    tree.start_event = node(tree.start_event)
    tree.end_event = node(tree.end_event)
    tree.activities = record(tree.activities, node)
    tree.gateways = record(tree.gateways, node)
    tree.flows = record(tree.flows, (f) =>
      isRecord(f) ? { ...f, id: r(f.id), source: r(f.source), target: r(f.target) } : f,
    )
    tree.constants = record(tree.constants, (c) =>
      isRecord(c) && isRecord(c.source_info)
        ? { ...c, source_info: Object.fromEntries(Object.entries(c.source_info).map(([k, v]) => [r(k), v])) }
        : c,
    )
    // bk-sops's `constants` keys are `${…}`, never node ids: r() leaves them as they are.
    if (Array.isArray(tree.location))
      tree.location = tree.location.map((l) => (isRecord(l) ? { ...l, id: r(l.id) } : l))
    if (Array.isArray(tree.line))
      tree.line = tree.line.map((l) =>
        isRecord(l)
          ? {
              ...l,
              id: r(l.id),
              source: isRecord(l.source) ? { ...l.source, id: r(l.source.id) } : l.source,
              target: isRecord(l.target) ? { ...l.target, id: r(l.target.id) } : l.target,
            }
          : l,
      )
  }
  for (const id of idsOf(tree)) used.add(id)
}

/**
 * A new task's tree with every SubProcess's child tree copied in (`pipeline`), recursively: the
 * copy a task runs, which later edits of the templates do not change. Node and flow ids stay
 * unique across the whole task (a child's id that clashes gets a fresh one). Refused
 * (ParamInvalidError) when a template includes itself, directly or through others (the cycle is
 * named), when nesting goes deeper than SUBPROCESS_DEPTH_LIMIT, when a named template does not
 * exist, or when a child tree is invalid. `root` is the task's own template, when it has one.
 */
export async function expandSubprocesses(
  tree: Record<string, unknown>,
  load: (templateId: number) => Promise<SubprocessTemplate | null>,
  opts: { root: { id: number; name: string } | null; hasComponent(code: string): boolean },
): Promise<Record<string, unknown>> {
  const out = structuredClone(tree)
  const used = new Set<string>()
  allIds(out, used)
  let counter = 0
  const fresh = (prefix: string) => {
    for (;;) {
      const id = `${prefix}sp${(++counter).toString(16).padStart(29, '0')}`
      if (!used.has(id)) return id
    }
  }
  const cache = new Map<number, SubprocessTemplate | null>()
  const named = (t: { id: number; name: string }) => `template[${t.id}] ${t.name}`

  const expand = async (level: Raw, chain: Array<{ id: number; name: string }>, depth: number) => {
    const activities = isRecord(level.activities) ? level.activities : {}
    for (const activity of Object.values(activities)) {
      if (!isRecord(activity) || activity.type !== 'SubProcess') continue
      const id = String(activity.id)
      const templateId = Number(activity.template_id)
      if (!Number.isSafeInteger(templateId) || templateId <= 0) {
        throw new ParamInvalidError(`invalid pipeline_tree: subprocess ${id} has no valid template_id`)
      }
      if (!cache.has(templateId)) cache.set(templateId, await load(templateId))
      const template = cache.get(templateId) ?? null
      if (!template) {
        throw new ParamInvalidError(
          `invalid pipeline_tree: subprocess ${id} names template[${templateId}], which does not exist in this project`,
        )
      }
      const at = chain.findIndex((t) => t.id === templateId)
      if (at >= 0) {
        const cycle = [...chain.slice(at), template].map(named).join(' → ')
        throw new ParamInvalidError(`invalid pipeline_tree: subprocesses make a cycle of templates: ${cycle}`)
      }
      if (depth + 1 > SUBPROCESS_DEPTH_LIMIT) {
        throw new ParamInvalidError(
          `invalid pipeline_tree: subprocesses nest deeper than ${SUBPROCESS_DEPTH_LIMIT} levels (${[...chain, template].map(named).join(' → ')})`,
        )
      }
      const child = structuredClone(template.tree)
      delete child.pipeline
      const checked = validatePipelineTree(
        Object.fromEntries(
          Object.entries(child).map(([k, v]) => [k, k === 'activities' ? stripPipelines(v) : v]),
        ),
        opts,
      )
      if (!checked.ok) {
        throw new ParamInvalidError(
          `invalid pipeline_tree: subprocess ${id}: ${named(template)} is not a valid tree: ${checked.message}`,
        )
      }
      renameClashing(child, used, fresh)
      await expand(child, [...chain, template], depth + 1)
      activity.pipeline = child
      activity.version = template.version
    }
  }
  await expand(out, opts.root ? [opts.root] : [], 0)
  return out
}

/** A template's SubProcess nodes carry no child tree; a stale one is not validated as if it ran. */
function stripPipelines(activities: unknown) {
  if (!isRecord(activities)) return activities
  return Object.fromEntries(
    Object.entries(activities).map(([k, a]) => {
      if (!isRecord(a) || a.type !== 'SubProcess') return [k, a]
      const { pipeline: _pipeline, ...rest } = a
      return [k, rest]
    }),
  )
}

/**
 * A task's graph: its tree's nodes and flows with every subprocess's child tree laid in beside
 * them (ids are unique task-wide), `scopes` saying where each child tree starts and ends and
 * `parentOf` which SubProcess holds each child node. A SubProcess without its child tree (a tree
 * not made by expandSubprocesses) is an error.
 */
export function buildTaskGraph(tree: PipelineTree): PipelineGraph {
  const graph = buildGraph(tree)
  const scopes = new Map<string, ChildScope>()
  const parentOf = new Map<string, string>()
  const lay = (level: PipelineGraph) => {
    for (const node of [...level.nodes.values()]) {
      if (node.kind !== 'subprocess') continue
      const parsed = PipelineTreeSchema.safeParse(node.subprocess?.pipeline)
      if (!parsed.success) throw new Error(`subprocess ${node.id} has no valid child tree`)
      const child = buildGraph(parsed.data)
      scopes.set(node.id, { id: node.id, startId: child.startId, endId: child.endId, tree: parsed.data })
      for (const [id, n] of child.nodes) {
        if (graph.nodes.has(id)) throw new Error(`node id ${id} is used twice in the task's tree`)
        graph.nodes.set(id, n)
        parentOf.set(id, node.id)
      }
      for (const [id, f] of child.flows) graph.flows.set(id, f)
      lay(child)
    }
  }
  lay(graph)
  graph.scopes = scopes
  graph.parentOf = parentOf
  return graph
}

/** The SubProcess nodes holding `nodeId`, outermost first (bk-sops's `subprocess_stack`). */
export function subprocessStack(graph: PipelineGraph, nodeId: string): string[] {
  const stack: string[] = []
  for (let p = graph.parentOf?.get(nodeId); p !== undefined; p = graph.parentOf?.get(p)) stack.unshift(p)
  return stack
}
