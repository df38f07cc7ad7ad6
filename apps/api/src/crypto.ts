import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'

/**
 * Secrets and tokens are random and high-entropy, so a keyed fast hash is the right store (as
 * API-key services do): a slow password hash on every request would cap the control path.
 */
export function hashSecret(key: string, secret: string): string {
  return createHmac('sha256', key).update(secret).digest('hex')
}

/** Compares two hex digests in constant time. */
export function sameDigest(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex')
  const y = Buffer.from(b, 'hex')
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y)
}

export function newSecret(bytes = 24): string {
  return randomBytes(bytes).toString('base64url').replace(/^-/, 'A') // printed to be pasted as an argument: never an option
}

export function randomHex(bytes: number): string {
  return randomBytes(bytes).toString('hex')
}
