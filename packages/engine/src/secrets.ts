import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto'
import { isSealed, isSecretConstant, MASK, SEALED, SEALED_PREFIX } from '@stdops/core'

/**
 * Seals and opens secret constants' values with the server key (AES-256-GCM under a key derived
 * from STDOPS_SECRET_KEY with HKDF-SHA256). A sealed value is a token
 * `[[stdops-secret:v1:<base64url of IV, ciphertext, tag>]]`: it renders into other strings like
 * any text (`Bearer ${token}`), is stored and shown only in that form (masked in replies), and is
 * opened by the worker right before a component step runs.
 */
export interface SecretBox {
  seal(plain: string): string
  /**
   * `value` with every sealed token opened, and the plain texts it opened (to scrub them from what
   * the step returns). A token this key cannot open is an error naming no value.
   */
  open(value: unknown): { value: unknown; secrets: string[] }
  /** `value` with every occurrence of `secrets` in its strings replaced by the mask. */
  scrub<T>(value: T, secrets: readonly string[]): T
}

const INFO = 'stdops secret constants v1'

export class SecretOpenError extends Error {}

export function createSecretBox(serverKey: string): SecretBox {
  const key = Buffer.from(hkdfSync('sha256', serverKey, 'stdops', INFO, 32))
  const openToken = (b64: string): string => {
    const raw = Buffer.from(b64, 'base64url')
    if (raw.length < 12 + 16) throw new SecretOpenError('a secret constant is damaged')
    const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12))
    decipher.setAuthTag(raw.subarray(raw.length - 16))
    try {
      return Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]).toString(
        'utf8',
      )
    } catch {
      throw new SecretOpenError(
        'a secret constant cannot be opened with this server key (was STDOPS_SECRET_KEY changed?)',
      )
    }
  }
  const mapStrings = (value: unknown, fn: (s: string) => string, depth = 0): unknown => {
    if (typeof value === 'string') return fn(value)
    if (depth > 200 || value === null || typeof value !== 'object') return value
    if (Array.isArray(value)) return value.map((v) => mapStrings(v, fn, depth + 1))
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) out[k] = mapStrings(v, fn, depth + 1)
    return out
  }
  return {
    seal(plain) {
      const iv = randomBytes(12)
      const cipher = createCipheriv('aes-256-gcm', key, iv)
      const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()])
      return `${SEALED_PREFIX}${Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64url')}]]`
    },
    open(value) {
      const secrets = new Set<string>()
      const opened = mapStrings(value, (s) =>
        s.includes(SEALED_PREFIX)
          ? s.replace(SEALED, (_t, b64: string) => {
              const plain = openToken(b64)
              secrets.add(plain)
              return plain
            })
          : s,
      )
      return { value: opened, secrets: [...secrets] }
    },
    scrub(value, secrets) {
      // a secret of one or two characters would mask everything: those are only kept out of replies as tokens
      const wanted = secrets.filter((s) => s.length >= 3).sort((a, b) => b.length - a.length)
      if (wanted.length === 0) return value
      return mapStrings(value, (s) =>
        wanted.reduce((acc, secret) => acc.split(secret).join(MASK), s),
      ) as typeof value
    },
  }
}

/** Request headers that carry credentials: their literal values in bk_http_request are sealed too. */
export const CREDENTIAL_HEADERS = new Set([
  'authorization',
  'proxy-authorization',
  'cookie',
  'x-bkapi-authorization',
  'x-bk-app-secret',
  'x-api-key',
  'x-auth-token',
])

/**
 * A tree with its secrets sealed (values already sealed are kept): what is stored for a template
 * or a task. Secrets are the secret constants' values, and the literal values of credential
 * headers (`Authorization`, `Cookie`, … see CREDENTIAL_HEADERS) written into a bk_http_request's
 * `bk_http_request_header` (a value with a `${…}` reference is left to render: make the
 * referenced constant a secret). Everything else is untouched.
 */
export function sealTreeSecrets<T extends Record<string, unknown>>(box: SecretBox, tree: T): T {
  return sealSubprocesses(box, sealHeaders(box, sealConstants(box, tree)))
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v)

/**
 * A SubProcess's `constants` mapping gives the child's constants their values: a value given to a
 * secret constant of the child (the mapping entry says `custom_type: password`, as bk-sops copies
 * the child's definition into it, or the copied child tree says so) is sealed like the tree's own
 * secrets; a hook (`"${x}"` of the parent) is left to render. Copied child trees are sealed too.
 */
function sealSubprocesses<T extends Record<string, unknown>>(box: SecretBox, tree: T): T {
  const activities = tree.activities
  if (!isRecord(activities)) return tree
  let changed = false
  const out: Record<string, unknown> = {}
  for (const [id, act] of Object.entries(activities)) {
    out[id] = act
    if (!isRecord(act) || act.type !== 'SubProcess') continue
    let next: Record<string, unknown> = act
    const child = isRecord(act.pipeline) ? act.pipeline : undefined
    const childConstants = child && isRecord(child.constants) ? child.constants : {}
    if (isRecord(act.constants)) {
      let touched = false
      const mapped: Record<string, unknown> = {}
      for (const [key, entry] of Object.entries(act.constants)) {
        mapped[key] = entry
        if (!isRecord(entry) || entry.hook === true) continue
        const def = childConstants[key]
        const secret = isSecretConstant(entry) || (isRecord(def) && isSecretConstant(def))
        const v = entry.value
        if (!secret || v === undefined || v === null || v === '' || isSealed(v)) continue
        mapped[key] = { ...entry, value: box.seal(typeof v === 'string' ? v : JSON.stringify(v)) }
        touched = true
      }
      if (touched) next = { ...next, constants: mapped }
    }
    if (child) {
      const sealed = sealTreeSecrets(box, child)
      if (sealed !== child) next = { ...next, pipeline: sealed }
    }
    if (next !== act) {
      out[id] = next
      changed = true
    }
  }
  return changed ? { ...tree, activities: out } : tree
}

/**
 * The inputs an operator gives a node's retry, sealed as a tree's secrets are: literal credential
 * headers of `bk_http_request_header`, and a string given for an input whose current value holds
 * a secret (it was rendered from a secret constant: its replacement is as secret). `******` sent
 * back for such an input keeps its current value (a client that resends what it read changes
 * nothing). Other inputs are stored as given.
 */
export function sealRetryInputs(
  box: SecretBox,
  current: Record<string, unknown> | null,
  inputs: Record<string, unknown>,
): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [key, v] of Object.entries(inputs)) {
    const now = current?.[key]
    const secret = now !== undefined && JSON.stringify(now).includes(SEALED_PREFIX)
    if (secret && v === MASK) out[key] = now
    else if (secret && typeof v === 'string' && v !== '' && !isSealed(v)) out[key] = box.seal(v)
    else out[key] = v
  }
  const header = out.bk_http_request_header
  if (Array.isArray(header)) {
    out.bk_http_request_header = header.map((h: unknown) => {
      if (!isRecord(h)) return h
      const { name, value: v } = h
      if (typeof name !== 'string' || !CREDENTIAL_HEADERS.has(name.toLowerCase())) return h
      if (typeof v !== 'string' || v === '' || v.includes('${') || isSealed(v)) return h
      return { ...h, value: box.seal(v) }
    })
  }
  return out
}

/**
 * A component step's logger whose lines are scrubbed of the secrets the step opened: messages,
 * merged objects, errors and the bindings of its children.
 */
export function scrubbingLogger<L extends object>(logger: L, scrub: (value: unknown) => unknown): L {
  const clean = (arg: unknown): unknown => {
    if (arg instanceof Error) {
      const e = new Error(String(scrub(arg.message)))
      e.name = arg.name
      if (arg.stack !== undefined) e.stack = String(scrub(arg.stack))
      return e
    }
    if (isRecord(arg)) {
      const o: Record<string, unknown> = {}
      for (const [k, x] of Object.entries(arg)) o[k] = x instanceof Error ? clean(x) : scrub(x)
      return o
    }
    return scrub(arg)
  }
  const levels = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace'])
  return new Proxy(logger, {
    get(target, prop) {
      const v = Reflect.get(target, prop, target) as unknown
      if (typeof v !== 'function') return v
      if (typeof prop === 'string' && levels.has(prop)) {
        return (...args: unknown[]) => v.apply(target, args.map(clean))
      }
      if (prop === 'child') {
        return (...args: unknown[]) =>
          scrubbingLogger(v.apply(target, [clean(args[0]), ...args.slice(1)]) as object, scrub)
      }
      return v.bind(target)
    },
  })
}

function sealHeaders<T extends Record<string, unknown>>(box: SecretBox, tree: T): T {
  const activities = tree.activities as Record<string, Record<string, unknown>> | undefined
  if (!activities || typeof activities !== 'object') return tree
  let changed = false
  const out: Record<string, unknown> = {}
  for (const [id, act] of Object.entries(activities)) {
    out[id] = act
    const component = act?.component as
      | { code?: unknown; data?: Record<string, { value?: unknown }> }
      | undefined
    const header = component?.data?.bk_http_request_header
    if (!header || !Array.isArray(header.value)) continue
    let touched = false
    const value = header.value.map((h: unknown) => {
      if (!h || typeof h !== 'object') return h
      const { name, value: v } = h as { name?: unknown; value?: unknown }
      if (typeof name !== 'string' || !CREDENTIAL_HEADERS.has(name.toLowerCase())) return h
      if (typeof v !== 'string' || v === '' || v.includes('${') || isSealed(v)) return h
      touched = true
      return { ...h, value: box.seal(v) }
    })
    if (!touched) continue
    changed = true
    out[id] = {
      ...act,
      component: { ...component, data: { ...component.data, bk_http_request_header: { ...header, value } } },
    }
  }
  return changed ? { ...tree, activities: out } : tree
}

function sealConstants<T extends Record<string, unknown>>(box: SecretBox, tree: T): T {
  const constants = tree.constants as Record<string, Record<string, unknown>> | undefined
  if (!constants || typeof constants !== 'object') return tree
  let changed = false
  const sealed: Record<string, Record<string, unknown>> = {}
  for (const [key, c] of Object.entries(constants)) {
    if (
      c &&
      typeof c === 'object' &&
      isSecretConstant(c) &&
      !isSealed(c.value) &&
      c.value !== undefined &&
      c.value !== null &&
      c.value !== ''
    ) {
      const plain = typeof c.value === 'string' ? c.value : JSON.stringify(c.value)
      sealed[key] = { ...c, value: box.seal(plain) }
      changed = true
    } else sealed[key] = c
  }
  return changed ? { ...tree, constants: sealed } : tree
}
