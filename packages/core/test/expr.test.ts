import { describe, expect, it } from 'vitest'
import {
  ExpressionError,
  evaluateCondition,
  evaluateExpression,
  expressionReferences,
  parseExpression,
} from '../src/index'

const holds = (src: string, vars: Record<string, unknown> = {}) => evaluateCondition(src, vars)

describe('expression operators', () => {
  it.each([
    ['1 == 1', true],
    ['1 == 2', false],
    ['1 != 2', true],
    ['2 > 1', true],
    ['1 > 1', false],
    ['1 >= 1', true],
    ['1 < 2', true],
    ['2 < 1', false],
    ['2 <= 2', true],
    ['-1 < 0', true],
    ['-1.5 == -1.5', true],
    ['0.5 > 0.25', true],
    ['"a" == "a"', true],
    ['\'a\' == "a"', true],
    ['"a" != "b"', true],
    ['"abc" < "abd"', true],
    ['True == true', true],
    ['False == false', true],
    ['None == null', true],
    ['True', true],
    ['False', false],
    ['None', false],
    ['"a" in ("a", "b")', true],
    ['"c" in ("a", "b")', false],
    ['"c" notin ("a", "b")', true],
    ['"a" notin ("a", "b")', false],
    ['"c" not in ("a", "b")', true],
    ['"a" in ("a")', true],
    ['"a" in ()', false],
    ['2 in (1, 2, 3,)', true],
    ['"ell" in "hello"', true],
    ['True and True', true],
    ['True and False', false],
    ['False or True', true],
    ['False or False', false],
    ['not False', true],
    ['not not True', true],
  ])('%s is %s', (src, expected) => {
    expect(holds(src)).toBe(expected)
  })
})

describe('expression precedence', () => {
  it('binds and tighter than or', () => {
    expect(holds('True or True and False')).toBe(true)
    expect(holds('(True or True) and False')).toBe(false)
  })

  it('binds not looser than a comparison, like Python', () => {
    expect(holds('not 1 == 2')).toBe(true)
    expect(parseExpression('not 1 == 2')).toEqual({
      kind: 'not',
      operand: {
        kind: 'compare',
        op: '==',
        left: { kind: 'literal', value: 1 },
        right: { kind: 'literal', value: 2 },
      },
    })
  })

  it('binds not tighter than and', () => {
    expect(holds('not False and False')).toBe(false)
  })

  it('accepts parentheses and not nested 64 deep', () => {
    expect(holds(`${'('.repeat(64)}True${')'.repeat(64)}`)).toBe(true)
    expect(holds(`${'not '.repeat(64)}True`)).toBe(true)
  })

  it('reads left to right for chains of or', () => {
    expect(holds('False or False or True')).toBe(true)
  })
})

describe('expression references', () => {
  it('reads ${name} references and bare names', () => {
    expect(holds('${x} == 1 and y == "b"', { x: 1, y: 'b' })).toBe(true)
  })

  it('accepts variables keyed as constants (${x})', () => {
    expect(holds('${x} == "yes"', { '${x}': 'yes' })).toBe(true)
  })

  it('passes the full dotted name to lookup first', () => {
    const asked: string[] = []
    const value = evaluateExpression(parseExpression('${resp.status_code}'), (name) => {
      asked.push(name)
      return name === 'resp.status_code' ? 200 : undefined
    })
    expect(value).toBe(200)
    expect(asked).toEqual(['resp.status_code'])
  })

  it('follows a dotted path into an object when the full name is not defined', () => {
    const vars = { resp: { status_code: 200, data: { items: [{ id: 7 }] } } }
    expect(holds('resp.status_code == 200', vars)).toBe(true)
    expect(holds('${resp.data.items.0.id} == 7', vars)).toBe(true)
  })

  it('throws undefined variable for an unknown name', () => {
    expect(() => holds('${missing} == 1')).toThrow(new ExpressionError('undefined variable ${missing}'))
    expect(() => holds('resp.nothing == 1', { resp: {} })).toThrow('undefined variable ${resp.nothing}')
  })

  it('short-circuits: the right side of a decided and/or is not read', () => {
    expect(holds('False and ${missing}')).toBe(false)
    expect(holds('True or ${missing}')).toBe(true)
  })

  it('lists the names an expression reads, once each', () => {
    expect(expressionReferences('${a} == 1 or (b.c in (${d}, ${a}) and not "${e}" == 1)')).toEqual([
      'a',
      'b.c',
      'd',
    ])
  })
})

describe('expression comparisons across types', () => {
  it('compares a numeric string with a number numerically', () => {
    expect(holds('"3" == 3')).toBe(true)
    expect(holds('3 == "3.0"')).toBe(true)
    expect(holds('${x} > 2', { x: '5' })).toBe(true)
    expect(holds('${x} > 10', { x: '5' })).toBe(false)
    expect(holds('${x} in (1, 2)', { x: '2' })).toBe(true)
  })

  it('compares two numeric strings numerically when ordering', () => {
    expect(holds('${a} > ${b}', { a: '10', b: '9' })).toBe(true)
  })

  it('keeps equality of strings, booleans and null strict', () => {
    expect(holds('"1" == "1.0"')).toBe(false)
    expect(holds('"abc" == 1')).toBe(false)
    expect(holds('True == 1')).toBe(false)
    expect(holds('"True" == True')).toBe(false)
    expect(holds('None == 0')).toBe(false)
    expect(holds('${x} == None', { x: null })).toBe(true)
  })

  it('refuses to order values of different kinds', () => {
    expect(() => holds('"abc" > 1')).toThrow('cannot compare string with number using >')
    expect(() => holds('True < 2')).toThrow(ExpressionError)
  })

  it('refuses in against something that is neither a list nor a string', () => {
    expect(() => holds('1 in ${x}', { x: 5 })).toThrow('cannot test number in number')
  })

  it('treats empty values as false like Python', () => {
    expect(holds('${x}', { x: '' })).toBe(false)
    expect(holds('${x}', { x: [] })).toBe(false)
    expect(holds('${x}', { x: {} })).toBe(false)
    expect(holds('${x}', { x: 0 })).toBe(false)
    expect(holds('${x}', { x: 'no' })).toBe(true)
  })
})

describe('expression quoting', () => {
  it('reads escapes in strings', () => {
    expect(holds(String.raw`"a\"b" == 'a"b'`)).toBe(true)
    expect(holds(String.raw`'it\'s' == "it's"`)).toBe(true)
    expect(evaluateExpression(parseExpression(String.raw`"a\nb\\c"`), () => undefined)).toBe('a\nb\\c')
  })

  it('keeps keywords and operators inside strings as text', () => {
    expect(holds('"a and b == c" == \'a and b == c\'')).toBe(true)
  })

  it('does not expand ${x} inside a string literal', () => {
    expect(holds('"${x}" == "${x}"')).toBe(true)
  })
})

describe('expression errors', () => {
  it.each([
    ['', 'unexpected end of expression at position 0', 0],
    ['1 ==', 'unexpected end of expression at position 4', 4],
    ['(1 == 1', 'unexpected end of expression at position 7', 7],
    ['1 == 1)', 'unexpected ")" at position 6', 6],
    ['"abc', 'unterminated string at position 0', 0],
    ['${x', 'unterminated reference at position 0', 0],
    ['${x y} == 1', 'invalid reference ${x y} at position 0', 0],
    ['1 = 1', 'unexpected character "=" at position 2', 2],
    ['1 < 2 < 3', 'unexpected "<" at position 6', 6],
    ['and 1', 'unexpected "and" at position 0', 0],
    ['1 in', 'unexpected end of expression at position 4', 4],
    ['x.__proto__()', 'unexpected "(" at position 11', 11],
    [`${'('.repeat(65)}1${')'.repeat(65)}`, 'expression nested too deeply at position 65', 65],
    [`${'not '.repeat(65)}True`, 'expression nested too deeply at position 256', 256],
  ])('%j fails: %s', (src, message, position) => {
    let error: unknown
    try {
      parseExpression(src)
    } catch (err) {
      error = err
    }
    expect(error).toBeInstanceOf(ExpressionError)
    expect((error as ExpressionError).message).toBe(message)
    expect((error as ExpressionError).position).toBe(position)
  })
})

describe('expression safety', () => {
  it.each([
    'constructor',
    '__proto__',
    'toString',
    'hasOwnProperty',
    'x.constructor',
    'x.__proto__',
    'x.toString',
  ])('%s resolves to nothing and is reported undefined', (name) => {
    expect(() => holds(`${name} == 1`, { x: {} })).toThrow(`undefined variable \${${name}}`)
    expect(() => holds(`\${${name}} == 1`, { x: 'abc' })).toThrow(ExpressionError)
  })

  it('cannot call anything or reach globals', () => {
    expect(() => parseExpression('process.exit(1)')).toThrow(ExpressionError)
    expect(() => parseExpression('${x}.constructor("return 1")()')).toThrow(ExpressionError)
    expect(() => holds('globalThis == 1')).toThrow('undefined variable ${globalThis}')
  })

  it('does not treat inherited keys of the variables as defined', () => {
    const vars = Object.create({ inherited: 1 }) as Record<string, unknown>
    expect(() => holds('inherited == 1', vars)).toThrow('undefined variable ${inherited}')
  })
})
