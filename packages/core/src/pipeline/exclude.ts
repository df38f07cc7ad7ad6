import { constantForReference, referencesIn } from '../constants'
import { expressionReferences } from '../expr'
import { buildGraph } from './graph'
import { PipelineTreeSchema } from './schema'

/**
 * Node exclusion, as bk-sops's task preview does it: the tree a task runs when some optional
 * activities are left out. Works on the tree as stored (bk-sops's web shape, drawing keys
 * included) and returns a new one; the input is not changed.
 *
 * - Each excluded activity is removed and the flows that entered it now enter the node after it
 *   (its outgoing flow is removed, with its drawing line and location).
 * - A parallel gateway whose branches all became a direct flow to its converge gateway is removed
 *   with that converge (the flows around them joined), repeatedly, so nested ones go too; a branch
 *   that became a direct flow is removed from a parallel gateway that keeps other branches.
 * - Constants that nothing left in the tree refers to are removed (and returned apart, as
 *   `constants_not_referred`); constants fed by an activity's outputs stay; the task outputs keep
 *   only constants that stay; excluded activities leave every `source_info`.
 */

type Obj = Record<string, unknown>
export type ExclusionResult =
  | { ok: true; tree: Obj; constantsNotReferred: Record<string, unknown> }
  | { ok: false; message: string }

const asObj = (v: unknown): Obj => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : {})
const flowList = (v: unknown): string[] =>
  Array.isArray(v)
    ? v.filter((x): x is string => typeof x === 'string')
    : typeof v === 'string' && v !== ''
      ? [v]
      : []

/** The ids of the activities marked `optional` in a tree. */
export function optionalActivityIds(tree: unknown): string[] {
  return Object.entries(asObj(asObj(tree).activities))
    .filter(([, a]) => asObj(a).optional === true)
    .map(([id]) => id)
}

/**
 * What an execution scheme (or the union of several) leaves out: every optional activity that no
 * chosen scheme names. Activities that are not optional always run.
 */
export function exclusionForSchemes(tree: unknown, schemes: ReadonlyArray<readonly string[]>): string[] {
  if (schemes.length === 0) return []
  const chosen = new Set(schemes.flat())
  return optionalActivityIds(tree).filter((id) => !chosen.has(id))
}

/** What `execute_task_nodes_id` leaves out: every optional activity not in the list. */
export function exclusionForExecuteList(tree: unknown, execute: readonly string[]): string[] {
  const run = new Set(execute)
  return optionalActivityIds(tree).filter((id) => !run.has(id))
}

/** Replaces `replaced` in a node's incoming with `added`, keeping the node's form (list or single id). */
function replaceIncoming(node: Obj, replaced: string, added: string[]) {
  if (Array.isArray(node.incoming)) {
    const list = (node.incoming as unknown[]).filter((f) => f !== replaced)
    node.incoming = [...list, ...added]
  } else {
    node.incoming = added.length === 1 ? added[0] : added
  }
}

function nodeById(tree: Obj, id: string): Obj | undefined {
  const activities = asObj(tree.activities)
  const gateways = asObj(tree.gateways)
  if (Object.hasOwn(activities, id)) return asObj(activities[id])
  if (Object.hasOwn(gateways, id)) return asObj(gateways[id])
  const end = asObj(tree.end_event)
  return end.id === id ? end : undefined
}

/** Drawing data keyed by id (`location`, `line`), written back as lists. */
function drawing(tree: Obj) {
  const byId = (v: unknown) =>
    new Map(
      (Array.isArray(v) ? v : [])
        .map((item) => asObj(item))
        .filter((item) => typeof item.id === 'string')
        .map((item) => [item.id as string, item] as const),
    )
  const hadLine = Array.isArray(tree.line)
  const hadLocation = Array.isArray(tree.location)
  const lines = byId(tree.line)
  const locations = byId(tree.location)
  return {
    lines,
    locations,
    retarget(lineId: string, target: string) {
      const line = lines.get(lineId)
      if (line) line.target = { ...asObj(line.target), id: target }
    },
    writeBack() {
      if (hadLine) tree.line = [...lines.values()]
      if (hadLocation) tree.location = [...locations.values()]
    },
  }
}

function ignoreActivity(tree: Obj, act: Obj, draw: ReturnType<typeof drawing>): string | undefined {
  const flows = asObj(tree.flows)
  const incoming = flowList(act.incoming)
  const [outgoing] = flowList(act.outgoing)
  if (outgoing === undefined) return `task node[id=${String(act.id)}] has no outgoing flow`
  const target = asObj(flows[outgoing]).target
  const next = typeof target === 'string' ? nodeById(tree, target) : undefined
  if (!next) return `task node[id=${String(act.id)}] leads to no node`
  replaceIncoming(next, outgoing, incoming)
  for (const flowId of incoming) {
    const flow = asObj(flows[flowId])
    flow.target = next.id
    draw.retarget(flowId, next.id as string)
  }
  delete flows[outgoing]
  draw.locations.delete(act.id as string)
  draw.lines.delete(outgoing)
}

/** The converge gateway of each parallel gateway, as the validator pairs them (none when the tree does not parse). */
function parallelConverges(tree: Obj): Map<string, string> {
  const parsed = PipelineTreeSchema.safeParse(tree)
  const pairs = new Map<string, string>()
  if (!parsed.success) return pairs
  for (const node of buildGraph(parsed.data).nodes.values()) {
    if (node.kind === 'parallel' && node.convergeId !== undefined) pairs.set(node.id, node.convergeId)
  }
  return pairs
}

function trimParallel(tree: Obj, parallelId: string, convergeId: string, draw: ReturnType<typeof drawing>) {
  const gateways = asObj(tree.gateways)
  const flows = asObj(tree.flows)
  const parallel = asObj(gateways[parallelId])
  const converge = asObj(gateways[convergeId])
  let whole = true
  for (const flowId of flowList(parallel.outgoing)) {
    if (asObj(flows[flowId]).target !== convergeId) {
      whole = false
      continue
    }
    converge.incoming = flowList(converge.incoming).filter((f) => f !== flowId)
    parallel.outgoing = flowList(parallel.outgoing).filter((f) => f !== flowId)
    delete flows[flowId]
    draw.lines.delete(flowId)
  }
  if (!whole) return
  const [after] = flowList(converge.outgoing)
  if (after === undefined) return
  const target = asObj(flows[after]).target as string
  const next = nodeById(tree, target)
  if (!next) return
  delete flows[after]
  draw.lines.delete(after)
  const redirected = [...flowList(converge.incoming), ...flowList(parallel.incoming)]
  for (const flowId of redirected) {
    asObj(flows[flowId]).target = target
    draw.retarget(flowId, target)
  }
  replaceIncoming(next, after, redirected)
  delete gateways[parallelId]
  delete gateways[convergeId]
  draw.locations.delete(parallelId)
  draw.locations.delete(convergeId)
}

/** The constants keys a tree refers to (transitively through other constants), as `${key}`. */
function referencedConstants(tree: Obj): Set<string> {
  const constants = asObj(tree.constants)
  const has = (k: string) => Object.hasOwn(constants, k)
  const found = new Set<string>()
  const queue: string[] = []
  const note = (refs: string[]) => {
    for (const ref of refs) {
      const key = constantForReference(ref, has)
      if (key !== undefined && !found.has(key)) {
        found.add(key)
        queue.push(key)
      }
    }
  }
  for (const act of Object.values(asObj(tree.activities)))
    note(referencesIn(asObj(asObj(act).component).data))
  for (const gw of Object.values(asObj(tree.gateways))) {
    for (const cond of Object.values(asObj(asObj(gw).conditions))) {
      const evaluate = asObj(cond).evaluate
      if (typeof evaluate !== 'string') continue
      note(referencesIn(evaluate))
      try {
        note(expressionReferences(evaluate).map((n) => `\${${n}}`))
      } catch {
        // a condition that does not parse is the validator's to report
      }
    }
  }
  for (let key = queue.shift(); key !== undefined; key = queue.shift())
    note(referencesIn(asObj(constants[key]).value))
  return found
}

function removeUnreferencedConstants(tree: Obj, excluded: readonly string[]): Record<string, unknown> {
  const constants = asObj(tree.constants)
  const referenced = referencedConstants(tree)
  for (const [key, c] of Object.entries(constants))
    if (asObj(c).source_type === 'component_outputs') referenced.add(key)
  const indexOf = (key: string) => {
    const i = asObj(constants[key]).index
    return typeof i === 'number' ? i : Number.MAX_SAFE_INTEGER
  }
  const kept = Object.keys(constants)
    .filter((k) => referenced.has(k))
    .sort((a, b) => indexOf(a) - indexOf(b))
  const next: Obj = {}
  kept.forEach((key, index) => {
    const c = { ...asObj(constants[key]) }
    if (typeof c.index === 'number') c.index = index
    if (c.source_info && typeof c.source_info === 'object') {
      const info = { ...asObj(c.source_info) }
      for (const id of excluded) delete info[id]
      c.source_info = info
    }
    next[key] = c
  })
  const notReferred = Object.fromEntries(Object.entries(constants).filter(([k]) => !Object.hasOwn(next, k)))
  tree.constants = next
  if (Array.isArray(tree.outputs)) tree.outputs = tree.outputs.filter((k) => Object.hasOwn(next, k as string))
  return notReferred
}

/**
 * The tree with `exclude` (activity ids) left out; refuses an id that is not an activity of the
 * tree or an activity that is not optional, naming it. Excluding nothing returns the tree as it is.
 */
export function excludeTaskNodes(input: unknown, exclude: readonly string[]): ExclusionResult {
  const tree = structuredClone(asObj(input))
  const ids = [...new Set(exclude)]
  if (ids.length === 0) return { ok: true, tree, constantsNotReferred: {} }
  const activities = asObj(tree.activities)
  for (const id of ids) {
    if (!Object.hasOwn(activities, id))
      return { ok: false, message: `task node[id=${id}] is not in template pipeline tree` }
    if (asObj(activities[id]).optional !== true)
      return { ok: false, message: `task node[id=${id}] is not optional` }
  }
  const draw = drawing(tree)
  for (const id of ids) {
    const act = asObj(activities[id])
    delete activities[id]
    const problem = ignoreActivity(tree, act, draw)
    if (problem) return { ok: false, message: problem }
  }
  const pairs = parallelConverges(tree)
  const gateways = asObj(tree.gateways)
  for (;;) {
    const before = Object.keys(gateways).length
    for (const [parallelId, convergeId] of pairs) {
      if (Object.hasOwn(gateways, parallelId) && Object.hasOwn(gateways, convergeId))
        trimParallel(tree, parallelId, convergeId, draw)
    }
    if (Object.keys(gateways).length === before) break
  }
  draw.writeBack()
  const constantsNotReferred = removeUnreferencedConstants(tree, ids)
  return { ok: true, tree, constantsNotReferred }
}
