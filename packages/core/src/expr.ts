/**
 * Gateway conditions and success expressions: `${x} == 1 and ${y} in ("a", "b")`.
 * A hand-written tokenizer, a recursive-descent parser and a tree-walking evaluator: nothing in an
 * expression can reach JavaScript (no eval, no property access beyond own data of plain values).
 *
 *   or         := and ('or' and)*
 *   and        := not ('and' not)*
 *   not        := 'not' not | comparison
 *   comparison := primary (('=='|'!='|'>'|'>='|'<'|'<=') primary
 *                         | ('in'|'notin'|'not' 'in') primary)?
 *   primary    := number | '-' number | string | ${name} | name | True | False | None | group
 *   group      := '(' ')' | '(' or (',' or)* ','? ')'      (a list unless it is one item, no comma)
 */

export class ExpressionError extends Error {
  /** Offset in the source for parse errors; null for evaluation errors. */
  readonly position: number | null

  constructor(message: string, position: number | null = null) {
    super(message)
    this.name = 'ExpressionError'
    this.position = position
  }
}

export type CompareOp = '==' | '!=' | '>' | '>=' | '<' | '<=' | 'in' | 'notin'

export type Expr =
  | { kind: 'literal'; value: string | number | boolean | null }
  | { kind: 'ref'; name: string }
  | { kind: 'list'; items: Expr[] }
  | { kind: 'not'; operand: Expr }
  | { kind: 'logical'; op: 'and' | 'or'; left: Expr; right: Expr }
  | { kind: 'compare'; op: CompareOp; left: Expr; right: Expr }

type Token =
  | { type: 'ref' | 'name' | 'string'; value: string; text: string; pos: number }
  | { type: 'number'; value: number; text: string; pos: number }
  | { type: 'op' | 'eof'; value: string; text: string; pos: number }

const NAME = /[A-Za-z_]\w*(?:\.\w+)*/y
const NUMBER = /\d+(?:\.\d+)?/y
const OPERATORS = ['==', '!=', '>=', '<=', '>', '<', '(', ')', ',', '-']
const COMPARISONS = new Set<string>(['==', '!=', '>', '>=', '<', '<='])
const KEYWORD_VALUES = new Map<string, boolean | null>([
  ['True', true],
  ['true', true],
  ['False', false],
  ['false', false],
  ['None', null],
  ['null', null],
])
const RESERVED = new Set(['and', 'or', 'not', 'in', 'notin'])
const ESCAPES: Record<string, string> = { n: '\n', t: '\t', r: '\r' }

const WHOLE_NAME = new RegExp(`^${NAME.source}$`)
/** Deeper nesting of parentheses or `not` is refused rather than risking the stack. */
const MAX_DEPTH = 64
/**
 * A longer expression is refused: its operators nest (`a or b or c …` is a chain of `or`s), and the
 * walks over it must stay well within the stack.
 */
export const MAX_EXPRESSION_TOKENS = 2000

function tokenize(src: string): Token[] {
  const tokens: Token[] = []
  let i = 0
  while (i < src.length) {
    if (tokens.length >= MAX_EXPRESSION_TOKENS)
      throw new ExpressionError(
        `expression is longer than ${MAX_EXPRESSION_TOKENS} tokens (the limit) at position ${i}`,
        i,
      )
    const c = src.charAt(i)
    if (/\s/.test(c)) {
      i++
      continue
    }
    const pos = i
    if (src.startsWith('${', i)) {
      const end = src.indexOf('}', i)
      if (end < 0) throw new ExpressionError(`unterminated reference at position ${pos}`, pos)
      const name = src.slice(i + 2, end).trim()
      const text = src.slice(i, end + 1)
      if (!WHOLE_NAME.test(name))
        throw new ExpressionError(`invalid reference ${text} at position ${pos}`, pos)
      tokens.push({ type: 'ref', value: name, text, pos })
      i = end + 1
      continue
    }
    if (c === '"' || c === "'") {
      let value = ''
      i++
      for (;;) {
        if (i >= src.length) throw new ExpressionError(`unterminated string at position ${pos}`, pos)
        const d = src.charAt(i++)
        if (d === c) break
        if (d === '\\' && i < src.length) {
          const e = src.charAt(i++)
          value += ESCAPES[e] ?? e
        } else value += d
      }
      tokens.push({ type: 'string', value, text: src.slice(pos, i), pos })
      continue
    }
    NUMBER.lastIndex = i
    const num = NUMBER.exec(src)
    if (num) {
      tokens.push({ type: 'number', value: Number(num[0]), text: num[0], pos })
      i += num[0].length
      continue
    }
    NAME.lastIndex = i
    const name = NAME.exec(src)
    if (name) {
      tokens.push({ type: 'name', value: name[0], text: name[0], pos })
      i += name[0].length
      continue
    }
    const op = OPERATORS.find((o) => src.startsWith(o, i))
    if (!op) throw new ExpressionError(`unexpected character ${JSON.stringify(c)} at position ${pos}`, pos)
    tokens.push({ type: 'op', value: op, text: op, pos })
    i += op.length
  }
  tokens.push({ type: 'eof', value: '', text: 'end of expression', pos: src.length })
  return tokens
}

class Parser {
  private readonly tokens: Token[]
  private index = 0
  private depth = 0

  constructor(tokens: Token[]) {
    this.tokens = tokens
  }

  parse(): Expr {
    const expr = this.or()
    this.expect('eof')
    return expr
  }

  private peek(offset = 0): Token {
    // tokenize always ends with eof, and the parser never moves past it
    return this.tokens[Math.min(this.index + offset, this.tokens.length - 1)]!
  }

  private next(): Token {
    const token = this.peek()
    if (token.type !== 'eof') this.index++
    return token
  }

  private is(type: Token['type'], value?: string, offset = 0): boolean {
    const token = this.peek(offset)
    return token.type === type && (value === undefined || token.value === value)
  }

  private unexpected(token: Token): ExpressionError {
    const what = token.type === 'eof' ? token.text : JSON.stringify(token.text)
    return new ExpressionError(`unexpected ${what} at position ${token.pos}`, token.pos)
  }

  private expect(type: Token['type'], value?: string): Token {
    if (!this.is(type, value)) throw this.unexpected(this.peek())
    return this.next()
  }

  private or(): Expr {
    let left = this.and()
    while (this.is('name', 'or')) {
      this.next()
      left = { kind: 'logical', op: 'or', left, right: this.and() }
    }
    return left
  }

  private and(): Expr {
    let left = this.not()
    while (this.is('name', 'and')) {
      this.next()
      left = { kind: 'logical', op: 'and', left, right: this.not() }
    }
    return left
  }

  private not(): Expr {
    if (!this.is('name', 'not')) return this.comparison()
    return this.nested(() => {
      this.next()
      return { kind: 'not', operand: this.not() }
    })
  }

  private nested(parse: () => Expr): Expr {
    if (++this.depth > MAX_DEPTH) {
      const { pos } = this.peek()
      throw new ExpressionError(`expression nested too deeply at position ${pos}`, pos)
    }
    const expr = parse()
    this.depth--
    return expr
  }

  private comparison(): Expr {
    const left = this.primary()
    const token = this.peek()
    if (token.type === 'op' && COMPARISONS.has(token.value)) {
      this.next()
      return { kind: 'compare', op: token.value as CompareOp, left, right: this.primary() }
    }
    let op: CompareOp | null = null
    if (this.is('name', 'in') || this.is('name', 'notin')) op = this.next().value as CompareOp
    else if (this.is('name', 'not') && this.is('name', 'in', 1)) {
      this.next()
      this.next()
      op = 'notin'
    }
    if (!op) return left
    if (!this.is('op', '(')) return { kind: 'compare', op, left, right: this.primary() }
    this.next()
    return { kind: 'compare', op, left, right: this.group(true) }
  }

  /**
   * The rest of a parenthesised group, after its `(`: a list when it is empty, has a comma or
   * follows `in` (`in ("a")` is a one-item list); otherwise the single expression inside.
   */
  private group(asList: boolean): Expr {
    return this.nested(() => {
      const items: Expr[] = []
      let comma = false
      while (!this.is('op', ')')) {
        items.push(this.or())
        if (!this.is('op', ',')) break
        this.next()
        comma = true
      }
      this.expect('op', ')')
      const [only] = items
      return only && items.length === 1 && !comma && !asList ? only : { kind: 'list', items }
    })
  }

  private primary(): Expr {
    const token = this.next()
    switch (token.type) {
      case 'number':
      case 'string':
        return { kind: 'literal', value: token.value }
      case 'ref':
        return { kind: 'ref', name: token.value }
      case 'name':
        if (KEYWORD_VALUES.has(token.value))
          return { kind: 'literal', value: KEYWORD_VALUES.get(token.value)! }
        if (RESERVED.has(token.value)) throw this.unexpected(token)
        return { kind: 'ref', name: token.value }
      case 'op':
        if (token.value === '-' && this.is('number')) {
          return { kind: 'literal', value: -(this.next().value as number) }
        }
        if (token.value === '(') return this.group(false)
    }
    throw this.unexpected(token)
  }
}

/** Parses an expression; throws ExpressionError naming the position of the first problem. */
export function parseExpression(src: string): Expr {
  return new Parser(tokenize(src)).parse()
}

/**
 * Resolves a possibly dotted name: the full name first, then the longest defined prefix followed
 * by own properties of plain objects and arrays (`resp.data.id`). Undefined when nothing matches.
 */
export function resolveName(name: string, lookup: (name: string) => unknown): unknown {
  const direct = lookup(name)
  if (direct !== undefined) return direct
  const parts = name.split('.')
  for (let i = parts.length - 1; i > 0; i--) {
    let value = lookup(parts.slice(0, i).join('.'))
    if (value === undefined) continue
    for (const key of parts.slice(i)) {
      if (typeof value !== 'object' || value === null || !Object.hasOwn(value, key)) return undefined
      value = (value as Record<string, unknown>)[key]
    }
    return value
  }
  return undefined
}

/** Python's truthiness: false, null, 0, "", [] and {} are false. */
export function isTruthy(value: unknown): boolean {
  if (Array.isArray(value)) return value.length > 0
  if (typeof value === 'object' && value !== null) return Object.keys(value).length > 0
  return Boolean(value)
}

const NUMERIC = /^-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$/

function asNumber(value: unknown): number | null {
  if (typeof value === 'number') return value
  if (typeof value === 'string' && NUMERIC.test(value.trim())) return Number(value)
  return null
}

/** `"3" == 3` holds (bk-sops renders `${x}` into the text before evaluating); otherwise strict. */
function looselyEqual(a: unknown, b: unknown): boolean {
  if (typeof a === 'number' || typeof b === 'number') {
    const x = asNumber(a)
    const y = asNumber(b)
    if (x !== null && y !== null) return x === y
  }
  return a === b
}

function describe(value: unknown): string {
  if (value === null) return 'null'
  return Array.isArray(value) ? 'list' : typeof value
}

function order(op: CompareOp, a: unknown, b: unknown): boolean {
  const x = asNumber(a)
  const y = asNumber(b)
  let sign: number
  if (x !== null && y !== null) sign = Math.sign(x - y)
  else if (typeof a === 'string' && typeof b === 'string') sign = a < b ? -1 : a > b ? 1 : 0
  else throw new ExpressionError(`cannot compare ${describe(a)} with ${describe(b)} using ${op}`)
  switch (op) {
    case '>':
      return sign > 0
    case '>=':
      return sign >= 0
    case '<':
      return sign < 0
    default:
      return sign <= 0
  }
}

function contains(container: unknown, item: unknown): boolean {
  if (Array.isArray(container)) return container.some((element) => looselyEqual(element, item))
  if (typeof container === 'string' && typeof item === 'string') return container.includes(item)
  throw new ExpressionError(`cannot test ${describe(item)} in ${describe(container)}`)
}

function compare(op: CompareOp, a: unknown, b: unknown): boolean {
  switch (op) {
    case '==':
      return looselyEqual(a, b)
    case '!=':
      return !looselyEqual(a, b)
    case 'in':
      return contains(b, a)
    case 'notin':
      return !contains(b, a)
    default:
      return order(op, a, b)
  }
}

/**
 * Evaluates a parsed expression. `lookup` returns undefined for a name it does not know;
 * a reference that resolves to nothing throws `undefined variable ${name}`.
 * `and` / `or` short-circuit and, like `not` and comparisons, yield booleans.
 */
export function evaluateExpression(expr: Expr, lookup: (name: string) => unknown): unknown {
  switch (expr.kind) {
    case 'literal':
      return expr.value
    case 'ref': {
      const value = resolveName(expr.name, lookup)
      if (value === undefined) throw new ExpressionError(`undefined variable \${${expr.name}}`)
      return value
    }
    case 'list':
      return expr.items.map((item) => evaluateExpression(item, lookup))
    case 'not':
      return !isTruthy(evaluateExpression(expr.operand, lookup))
    case 'logical': {
      const left = isTruthy(evaluateExpression(expr.left, lookup))
      if (expr.op === 'and' ? !left : left) return left
      return isTruthy(evaluateExpression(expr.right, lookup))
    }
    case 'compare':
      return compare(expr.op, evaluateExpression(expr.left, lookup), evaluateExpression(expr.right, lookup))
  }
}

/**
 * Parses and evaluates `src` to a boolean. `vars` may be keyed by plain names (`x`, `resp`) or by
 * constant keys (`${x}`), so a task's resolved constants can be passed as they are.
 */
export function evaluateCondition(src: string, vars: Record<string, unknown>): boolean {
  const lookup = (name: string) => {
    const key = Object.hasOwn(vars, name) ? name : `\${${name}}`
    return Object.hasOwn(vars, key) ? vars[key] : undefined
  }
  return isTruthy(evaluateExpression(parseExpression(src), lookup))
}

/** The names an expression reads (`${x}` and bare `resp.status_code` alike), in order, once each. */
export function expressionReferences(src: string): string[] {
  const names = new Set<string>()
  const visit = (expr: Expr): void => {
    switch (expr.kind) {
      case 'ref':
        names.add(expr.name)
        break
      case 'list':
        expr.items.forEach(visit)
        break
      case 'not':
        visit(expr.operand)
        break
      case 'logical':
      case 'compare':
        visit(expr.left)
        visit(expr.right)
        break
    }
  }
  visit(parseExpression(src))
  return [...names]
}
