import { createTreeBuilder, linearTree } from '@stdops/core/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { expectParamInvalid, legacyClient, rowCounts } from './fixtures'
import { esb, type Harness, lib, makeIdentity, startHarness } from './harness'

/**
 * Input that describes far more than it weighs is refused at the door, quickly, with 3540000 and
 * a message naming the limit; unauthenticated input cannot grow the server.
 */

let h: Harness
beforeAll(async () => {
  h = await startHarness({ worker: false })
  // one accepted template first: the timings below measure refusals, not the first request's warm-up
  const c = legacyClient(h, await makeIdentity(h.deps))
  const warm = await c.post('create_template', {
    name: 'warm-up',
    pipeline_tree: withConstants([['a', '1']]),
  })
  expect(warm.body.code).toBe(0)
})
afterAll(async () => {
  await h?.close()
})

/** A tree with one set_variables activity and these constants. */
function withConstants(values: Array<[string, unknown]>) {
  const b = createTreeBuilder()
  b.chain(
    b.startId,
    b.activity('set_variables', { data: { variables: { hook: false, value: {} } } }),
    b.endId,
  )
  for (const [key, value] of values) b.constant(key, value)
  return b.build()
}

async function refusedFast(pipeline_tree: unknown, limit: RegExp) {
  const id = await makeIdentity(h.deps)
  const c = legacyClient(h, id)
  const before = await rowCounts(h)
  const t0 = performance.now()
  const reply = await c.post('create_template', { name: 'bounded', pipeline_tree })
  const took = performance.now() - t0
  expectParamInvalid(reply, limit)
  expect(await rowCounts(h)).toEqual(before)
  // the unbounded versions took seconds and a gigabyte; refused, they take milliseconds (margin kept for a loaded machine)
  expect(took).toBeLessThan(2000)
  return reply
}

describe('constants that explode', () => {
  it('c_i = "${c_{i-1}}${c_{i-1}}" (a 2 KB request describing gigabytes) is refused fast, naming the constant and the limit', async () => {
    const values: Array<[string, unknown]> = [['c0', 'xxxxxxxxxxxxxxxx']]
    for (let i = 1; i <= 40; i++) values.push([`c${i}`, `\${c${i - 1}}\${c${i - 1}}`])
    const tree = withConstants(values)
    expect(JSON.stringify(tree).length).toBeLessThan(12_000)
    await refusedFast(
      tree,
      /constant \$\{c\d+\} renders to more than 2097152 characters \(the limit of one rendered value\)/,
    )
  })

  it('arrays that share one another (2^40 leaves in 40 constants) are refused fast', async () => {
    const values: Array<[string, unknown]> = [['a0', 'x']]
    for (let i = 1; i <= 40; i++) values.push([`a${i}`, [`\${a${i - 1}}`, `\${a${i - 1}}`]])
    await refusedFast(withConstants(values), /constant \$\{a\d+\} renders to more than 2097152 characters/)
  })

  it('the same constants as a text inside another value are refused as well', async () => {
    const values: Array<[string, unknown]> = [['a0', 'x']]
    for (let i = 1; i <= 40; i++) values.push([`a${i}`, [`\${a${i - 1}}`, `\${a${i - 1}}`]])
    values.push(['text', 'all of it: ${a40}'])
    await refusedFast(withConstants(values), /renders to more than 2097152 characters/)
  })

  it('constants rendering within each limit but past the total are refused naming the total', async () => {
    const big = 'y'.repeat(600_000)
    const values: Array<[string, unknown]> = [['big', big]]
    // each 1.8 M characters (under the 2 M of one value), 10 of them pass the 16 M of all together
    for (let i = 0; i < 10; i++) values.push([`t${i}`, `${i}\${big}\${big}\${big}`])
    await refusedFast(
      withConstants(values),
      /constants render to more than 16777216 characters in all \(the limit\)/,
    )
  })

  it('a chain of 5,000 constants is refused naming the limit, and a chain deeper than 100 names the depth', async () => {
    // constants as small as they can be written, so that 5,000 fit in a request
    const chain = (n: number) => {
      const constants: Record<string, { key: string; value: string }> = {}
      for (let i = n - 1; i >= 0; i--) {
        const key = `\${k${i}}`
        constants[key] = { key, value: i === 0 ? 'x' : `\${k${i - 1}}` }
      }
      return { ...withConstants([]), constants }
    }
    await refusedFast(chain(5000), /pipeline tree has 5000 constants: at most 1000 \(the limit\)/)
    await refusedFast(chain(500), /constants reference one another more than 100 deep \(the limit\)/)
  })
})

describe('deep and large trees', () => {
  it('a condition of 20,000 `or`s answers 3540000 naming the limit, not a stack overflow', async () => {
    const b = createTreeBuilder()
    const gw = b.gateway('ExclusiveGateway')
    const a = b.activity('set_variables', { data: { variables: { hook: false, value: {} } } })
    const c = b.activity('set_variables', { data: { variables: { hook: false, value: {} } } })
    const cv = b.gateway('ConvergeGateway')
    b.chain(b.startId, gw)
    b.flow(gw, a, { condition: Array(20_001).fill('1 == 2').join(' or ') })
    b.flow(gw, c, { condition: '1 == 1' })
    b.chain(a, cv)
    b.chain(c, cv)
    b.chain(cv, b.endId)
    const reply = await refusedFast(b.build(), /expression is longer than 2000 tokens \(the limit\)/)
    expect(reply.body.code).toBe(3540000)
  })

  it('more than 1,000 activities are refused naming the limit', async () => {
    await refusedFast(
      linearTree(1001, 'set_variables', { variables: { hook: false, value: {} } }),
      /pipeline tree has 1001 activities and gateways: at most 1000 \(the limit\)/,
    )
  })
})

describe('failed logins under fresh app codes', () => {
  it('150 failures with fresh 900 KB app codes keep a few kilobytes, and the reply does not echo the code', async () => {
    const limiter = h.deps.authFailures
    const before = limiter.size
    for (let i = 0; i < 150; i++) {
      const code = `${i}-${'z'.repeat(900_000)}`
      const reply = await esb(h.url, 'get_template_list', {
        method: 'POST',
        body: { bk_app_code: code, bk_app_secret: 'nope', bk_token: 'nope', bk_biz_id: 1 },
      })
      expect(reply.body.result).toBe(false)
      expect(reply.body.message.length).toBeLessThan(200)
    }
    expect(limiter.size - before).toBeLessThanOrEqual(150)
    // 43 characters a key (a SHA-256 digest), not 900,000
    expect(limiter.keyChars).toBeLessThanOrEqual(limiter.size * 43)
  })

  it('the limiter holds at most maxKeys windows however many keys fail, and still counts a key it holds', () => {
    const limiter = new lib.RateLimiter(3, 60_000, 100)
    for (let i = 0; i < 5000; i++) limiter.fail(`fresh-${i}`, 1000)
    expect(limiter.size).toBeLessThanOrEqual(100)
    const results = [1, 2, 3, 4].map(() => limiter.fail('same', 1000))
    expect(results).toEqual([false, false, false, true])
  })
})
