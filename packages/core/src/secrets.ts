/**
 * Secret constants: bk-sops's `password` custom constant type. Their values are stored sealed
 * (encrypted under the server key, see the engine's secret box) as a token that can sit inside
 * any string a constant renders into; only a component about to run sees them opened, and every
 * reply shows `******` in their place. These helpers are the pure half: recognising secret
 * constants and sealed tokens, and masking.
 */

/** What a reader sees in place of a secret. */
export const MASK = '******'

/** A sealed value: base64url of IV, ciphertext and tag, in delimiters no other text uses. */
export const SEALED_PREFIX = '[[stdops-secret:v1:'
export const SEALED = /\[\[stdops-secret:v1:([A-Za-z0-9_-]+)\]\]/g

/** Whether a constant is a secret: bk-sops's `password` custom type (`custom_type`, or a `password.…` source tag). */
export function isSecretConstant(constant: { custom_type?: unknown; source_tag?: unknown }): boolean {
  return (
    constant.custom_type === 'password' ||
    (typeof constant.source_tag === 'string' && constant.source_tag.split('.')[0] === 'password')
  )
}

const WHOLE_SEALED = /^\[\[stdops-secret:v1:[A-Za-z0-9_-]+\]\]$/

/** Whether `value` is one sealed token and nothing else. */
export const isSealed = (value: unknown): value is string =>
  typeof value === 'string' && WHOLE_SEALED.test(value)

/** `text` with every sealed token replaced by the mask (for a reply already serialised). */
export function maskSealedText(text: string): string {
  return text.includes(SEALED_PREFIX) ? text.replace(SEALED, MASK) : text
}

/**
 * `value` with every sealed token in its strings (keys included) replaced by the mask. What holds
 * no token is returned as it is (the same objects): a reply without secrets costs one walk.
 */
export function maskSealed<T>(value: T): T {
  const walk = (v: unknown, depth: number): unknown => {
    if (typeof v === 'string') return maskSealedText(v)
    if (depth > 200 || v === null || typeof v !== 'object') return v
    if (Array.isArray(v)) {
      let out: unknown[] | null = null
      for (let i = 0; i < v.length; i++) {
        const x = walk(v[i], depth + 1)
        if (x !== v[i]) {
          out ??= v.slice()
          out[i] = x
        }
      }
      return out ?? v
    }
    const proto = Object.getPrototypeOf(v)
    if (proto !== Object.prototype && proto !== null) return v
    let out: Record<string, unknown> | null = null
    for (const [k, x] of Object.entries(v)) {
      const mk = maskSealedText(k)
      const mx = walk(x, depth + 1)
      if (mk !== k || mx !== x) {
        out ??= { ...(v as Record<string, unknown>) }
        if (mk !== k) delete out[k]
        out[mk] = mx
      }
    }
    return out ?? v
  }
  return walk(value, 0) as T
}
