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

/**
 * A tree's secret constants with their plain values sealed (values already sealed are kept): what
 * is stored for a template or a task. Other constants and the rest of the tree are untouched.
 */
export function sealTreeSecrets<T extends Record<string, unknown>>(box: SecretBox, tree: T): T {
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
