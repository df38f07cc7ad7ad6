import { describe, expect, it } from 'vitest'
import { type Constant, referencesIn, renderValue, resolveConstants } from '../src/index'

const constant = (key: string, value: unknown): [string, Constant] => [
  `\${${key}}`,
  { key: `\${${key}}`, name: key, value, source_type: 'custom' },
]
const constants = (values: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(values).map(([key, value]) => constant(key, value)))

describe('referencesIn', () => {
  it('finds every ${key} in strings, deep in arrays and objects, once each', () => {
    expect(
      referencesIn({ a: '${x}:${y}', b: ['${z}', { c: 'pre ${x} post' }], d: 3, e: null, f: '${resp.code}' }),
    ).toEqual(['${x}', '${y}', '${z}', '${resp.code}'])
  })

  it('finds nothing in values without references', () => {
    expect(referencesIn('plain $x {y} $ {z}')).toEqual([])
    expect(referencesIn(42)).toEqual([])
  })
})

describe('renderValue', () => {
  const values = {
    '${host}': 'db',
    '${port}': 5432,
    '${on}': true,
    '${list}': [1, 2],
    '${obj}': { a: { b: 1 } },
  }

  it('returns the raw value, keeping its type, for a string that is one whole reference', () => {
    expect(renderValue('${port}', values)).toBe(5432)
    expect(renderValue('${on}', values)).toBe(true)
    expect(renderValue('${list}', values)).toEqual([1, 2])
  })

  it('substitutes references inside a longer string, objects as JSON', () => {
    expect(renderValue('${host}:${port}', values)).toBe('db:5432')
    expect(renderValue('obj=${obj}', values)).toBe('obj={"a":{"b":1}}')
  })

  it('follows dotted references into object values', () => {
    expect(renderValue('${obj.a.b}', values)).toBe(1)
    expect(renderValue('b is ${obj.a.b}', values)).toBe('b is 1')
  })

  it('renders deep in arrays and objects', () => {
    expect(renderValue({ url: 'http://${host}', ports: ['${port}'], n: 1 }, values)).toEqual({
      url: 'http://db',
      ports: [5432],
      n: 1,
    })
  })

  it('leaves unknown references as written', () => {
    expect(renderValue('${nope}', values)).toBe('${nope}')
    expect(renderValue('${host}/${nope}', values)).toBe('db/${nope}')
    expect(renderValue('${obj.constructor}', values)).toBe('${obj.constructor}')
  })
})

describe('resolveConstants', () => {
  it('renders references between constants transitively, in any declaration order', () => {
    const result = resolveConstants(
      constants({ url: 'http://${addr}/x', addr: '${host}:${port}', host: 'db', port: 5432 }),
    )
    expect(result).toEqual({
      ok: true,
      values: { '${url}': 'http://db:5432/x', '${addr}': 'db:5432', '${host}': 'db', '${port}': 5432 },
    })
  })

  it('applies overrides keyed by ${key} or by key', () => {
    const result = resolveConstants(constants({ a: 1, b: 2, c: '${a}-${b}' }), {
      '${a}': 10,
      b: 20,
      unknown: 3,
    })
    expect(result).toEqual({ ok: true, values: { '${a}': 10, '${b}': 20, '${c}': '10-20' } })
  })

  it('keeps references to undefined constants as written', () => {
    expect(resolveConstants(constants({ a: '${nope}' }))).toEqual({ ok: true, values: { '${a}': '${nope}' } })
  })

  it('refuses a reference cycle, naming its keys', () => {
    expect(resolveConstants(constants({ a: '${b}', b: 'x${c}', c: '${a}' }))).toEqual({
      ok: false,
      message: 'constants ${a} -> ${b} -> ${c} -> ${a} form a reference cycle',
    })
  })

  it('refuses a constant that references itself', () => {
    expect(resolveConstants(constants({ a: { deep: ['${a}'] } }))).toEqual({
      ok: false,
      message: 'constants ${a} -> ${a} form a reference cycle',
    })
  })

  it('counts a dotted reference as a reference to the constant it reads', () => {
    expect(resolveConstants(constants({ a: { x: '${b.y}' }, b: { y: '${a.x}' } }))).toEqual({
      ok: false,
      message: 'constants ${a} -> ${b} -> ${a} form a reference cycle',
    })
  })

  it('can refuse a cycle that an override introduces', () => {
    expect(resolveConstants(constants({ a: 1, b: '${a}' }), { a: '${b}' }).ok).toBe(false)
  })
})
