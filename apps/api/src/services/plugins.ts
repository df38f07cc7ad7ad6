import { NotFoundError } from '@stdops/core'
import { BUILTIN_COMPONENTS, type ComponentModule } from '@stdops/engine'
import { z } from 'zod'
import type { Caller } from './auth'
import type { Deps } from './deps'
import { resolveProject } from './projects'
import type { OptionalProjectRef } from './templates'

/**
 * The plugin catalogue (bk-sops's get_plugin_list / get_plugin_detail): every registered component,
 * built-in and the deployment's own, with its inputs and outputs described from its zod schemas
 * (JSON Schema, as bk-sops's `schema` field has it), so that a tree can be built from the
 * catalogue alone.
 */

type JsonSchema = {
  type?: string | string[]
  description?: string
  enum?: unknown[]
  properties?: Record<string, JsonSchema>
  items?: JsonSchema
  required?: string[]
  default?: unknown
  anyOf?: JsonSchema[]
  [k: string]: unknown
}

/** JSON Schema of a zod schema as a caller sends it (`io: input`); a schema zod cannot describe reads as any. */
function jsonSchemaOf(schema: unknown): JsonSchema {
  try {
    const out = z.toJSONSchema(schema as z.ZodType, { io: 'input', unrepresentable: 'any' }) as JsonSchema
    const { $schema: _ignored, ...rest } = out
    return rest
  } catch {
    return {}
  }
}

/** bk-sops's short type names: string, int, float, bool, object, list, or any. */
function typeName(s: JsonSchema): string {
  const t = Array.isArray(s.type) ? s.type.find((x) => x !== 'null') : s.type
  if (t === undefined && s.anyOf) {
    const kinds = [...new Set(s.anyOf.map(typeName))]
    return kinds.length === 1 ? kinds[0]! : kinds.join('|')
  }
  switch (t) {
    case 'integer':
      return 'int'
    case 'number':
      return 'float'
    case 'boolean':
      return 'bool'
    case 'array':
      return 'list'
    case 'string':
    case 'object':
      return t
    default:
      return 'any'
  }
}

function fields(schema: unknown, withRequired: boolean) {
  const root = jsonSchemaOf(schema)
  const required = new Set(root.required ?? [])
  return Object.entries(root.properties ?? {}).map(([key, s]) => ({
    key,
    name: s.description ?? key,
    type: typeName(s),
    schema: {
      ...s,
      type: Array.isArray(s.type) ? s.type : (s.type ?? typeName(s)),
      description: s.description ?? '',
      enum: s.enum ?? [],
    },
    ...(withRequired ? { required: required.has(key) && s.default === undefined } : {}),
  }))
}

/** A component's inputs (with `required`) and outputs, each `{key, name, type, schema}`. */
export function pluginFields(module: ComponentModule) {
  return { inputs: fields(module.inputs, true), outputs: fields(module.outputs, false) }
}

function pluginItem(module: ComponentModule, builtin: boolean) {
  const extra = module as ComponentModule & { description?: unknown; group?: unknown }
  return {
    code: module.code,
    name: module.name ?? module.code,
    version: module.version ?? 'legacy',
    group_name: typeof extra.group === 'string' ? extra.group : builtin ? 'stdops built-in' : 'deployment',
    desc: typeof extra.description === 'string' ? extra.description : '',
    form: '',
    inputs: fields(module.inputs, true),
    outputs: fields(module.outputs, false),
  }
}

/** A named project must exist (bk-sops's plugin APIs take one); no role in it is needed. */
async function checkProject(deps: Deps, caller: Caller, ref: OptionalProjectRef) {
  if (ref.bk_biz_id !== undefined)
    await resolveProject(deps, caller, { bk_biz_id: ref.bk_biz_id, scope: ref.scope ?? 'cmdb_biz' })
}

const BUILTIN_CODES = new Set(BUILTIN_COMPONENTS.map((m) => m.code))

export async function listPlugins(deps: Deps, caller: Caller, ref: OptionalProjectRef) {
  await checkProject(deps, caller, ref)
  return deps.engine.components
    .list()
    .map((m) => pluginItem(m, BUILTIN_CODES.has(m.code)))
    .sort((a, b) => a.code.localeCompare(b.code))
}

/** One plugin; `version` `legacy` (bk-sops's default) or absent names the registered version. */
export async function getPlugin(
  deps: Deps,
  caller: Caller,
  ref: OptionalProjectRef,
  code: string,
  version: string | undefined,
) {
  await checkProject(deps, caller, ref)
  const module = deps.engine.components.get(code)
  const wanted = version === undefined || version === 'legacy' || version === (module?.version ?? 'legacy')
  if (!module || !wanted)
    throw new NotFoundError(`plugin[code=${code}${version ? `, version=${version}` : ''}] does not exist`)
  return pluginItem(module, BUILTIN_CODES.has(code))
}

/** bk-sops's get_plugin_base_info: every registered component's code and name. */
export async function pluginBaseInfo(deps: Deps, caller: Caller, ref: OptionalProjectRef) {
  await checkProject(deps, caller, ref)
  return deps.engine.components
    .list()
    .map((m) => ({ code: m.code, name: m.name ?? m.code }))
    .sort((a, b) => a.code.localeCompare(b.code))
}
