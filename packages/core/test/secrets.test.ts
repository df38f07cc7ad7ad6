import { describe, expect, it } from 'vitest'
import { isSealed, isSecretConstant, MASK, maskSealed, maskSealedText } from '../src/index'

const token = '[[stdops-secret:v1:AbC_-123]]'

describe('secret helpers', () => {
  it('password constants are secrets, by custom_type or source_tag', () => {
    expect(isSecretConstant({ custom_type: 'password' })).toBe(true)
    expect(isSecretConstant({ source_tag: 'password.password' })).toBe(true)
    expect(isSecretConstant({ custom_type: 'input', source_tag: 'input.input' })).toBe(false)
    expect(isSecretConstant({})).toBe(false)
  })

  it('masks tokens wherever they sit, and returns what holds none unchanged', () => {
    expect(isSealed(token)).toBe(true)
    expect(isSealed(`x${token}`)).toBe(false)
    expect(maskSealedText(`Bearer ${token}!`)).toBe(`Bearer ${MASK}!`)
    const clean = { a: [1, 'two', { b: null }], c: 'plain' }
    expect(maskSealed(clean)).toBe(clean)
    const dirty = { a: [1, token, { b: `k=${token}` }], [token]: 'key', keep: clean }
    const masked = maskSealed(dirty)
    expect(masked).toEqual({ a: [1, MASK, { b: `k=${MASK}` }], [MASK]: 'key', keep: clean })
    expect(masked.keep).toBe(clean)
    // the input is not changed
    expect(dirty.a[1]).toBe(token)
  })
})
