import { Writable } from 'node:stream'
import { MASK } from '@stdops/core'
import pino from 'pino'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import {
  createSecretBox,
  defineComponent,
  SecretOpenError,
  scrubbingLogger,
  sealRetryInputs,
  sealTreeSecrets,
} from '../src/index'
import { TEST_COMPONENTS } from '../src/testing'

const box = createSecretBox('the-server-key-0123456789')

describe('the secret box', () => {
  it('seals to a token that differs every time and opens wherever it was rendered', () => {
    const a = box.seal('pässwörd')
    const b = box.seal('pässwörd')
    expect(a).not.toBe(b)
    expect(a).toMatch(/^\[\[stdops-secret:v1:[A-Za-z0-9_-]+\]\]$/)
    const opened = box.open({ header: `Bearer ${a}`, list: [b, 3, null] })
    expect(opened.value).toEqual({ header: 'Bearer pässwörd', list: ['pässwörd', 3, null] })
    expect(opened.secrets).toEqual(['pässwörd'])
  })

  it('refuses a token of another key or a damaged one, naming no value', () => {
    const foreign = createSecretBox('another-key-0123456789').seal('x-secret')
    expect(() => box.open(foreign)).toThrow(SecretOpenError)
    expect(() => box.open(foreign)).toThrow(/cannot be opened with this server key/)
    expect(() => box.open('[[stdops-secret:v1:AAAA]]')).toThrow(/damaged/)
  })

  it('scrubs opened values from what a step returns (longer ones first, very short ones left)', () => {
    expect(box.scrub({ echo: 'got abc-secret and abc', n: 1 }, ['abc', 'abc-secret', 'ab'])).toEqual({
      echo: `got ${MASK} and ${MASK}`,
      n: 1,
    })
    expect(box.scrub('ab ab', ['ab'])).toBe('ab ab')
  })

  it('sealTreeSecrets seals password constants and literal credential headers once, and nothing else', () => {
    const tree = {
      constants: {
        '${pw}': { key: '${pw}', value: 'hunter22', custom_type: 'password' },
        '${plain}': { key: '${plain}', value: 'visible' },
      },
      activities: {
        n1: {
          component: {
            code: 'bk_http_request',
            data: {
              bk_http_request_header: {
                hook: false,
                value: [
                  { name: 'Authorization', value: 'Basic dXNlcjpwYXNz' },
                  { name: 'Cookie', value: 'sid=${pw}' },
                  { name: 'Accept', value: 'application/json' },
                ],
              },
            },
          },
        },
      },
    }
    const sealed = sealTreeSecrets(box, tree)
    const json = JSON.stringify(sealed)
    expect(json).not.toContain('hunter22')
    expect(json).not.toContain('dXNlcjpwYXNz')
    expect(json).toContain('visible')
    expect(json).toContain('sid=${pw}')
    expect(json).toContain('application/json')
    expect(sealTreeSecrets(box, sealed)).toBe(sealed)
    expect(box.open(sealed.constants['${pw}'].value).value).toBe('hunter22')
  })

  it("sealTreeSecrets seals the values a SubProcess gives a child's secret constants, in nested copies too", () => {
    const child = (value: string) => ({
      constants: {
        '${cpw}': { key: '${cpw}', value: '', custom_type: 'password' },
        '${c}': { key: '${c}', value: '' },
      },
      activities: {
        inner: {
          type: 'SubProcess',
          constants: { '${deep}': { hook: false, value, custom_type: 'password' } },
        },
      },
    })
    const tree = {
      activities: {
        sp: {
          type: 'SubProcess',
          constants: {
            // the child's definition says it is a secret (the copied child tree)
            '${cpw}': { hook: false, value: 'child-secret-1' },
            // a plain constant stays as given; a hook is left to render
            '${c}': { hook: false, value: 'plain-child-value' },
            '${other}': { hook: true, value: '${parent_pw}' },
          },
          pipeline: child('nested-secret-2'),
        },
        tpl: {
          type: 'SubProcess',
          // no copied child yet (a template): the mapping entry's own type says so
          constants: { '${x}': { hook: false, value: 'template-secret-3', custom_type: 'password' } },
        },
      },
    }
    const json = JSON.stringify(sealTreeSecrets(box, tree))
    for (const secret of ['child-secret-1', 'nested-secret-2', 'template-secret-3'])
      expect(json).not.toContain(secret)
    expect(json).toContain('plain-child-value')
    expect(json).toContain('${parent_pw}')
    const sealed = sealTreeSecrets(box, tree)
    expect(sealTreeSecrets(box, sealed)).toBe(sealed)
    const sp = (sealed.activities as Record<string, { constants: Record<string, { value: string }> }>).sp!
    expect(box.open(sp.constants['${cpw}']!.value).value).toBe('child-secret-1')
  })

  it("sealRetryInputs seals a retry's credential headers and the inputs rendered from a secret; the mask keeps the current value", () => {
    const token = box.seal('old-secret')
    const current = { body: `pw=${token}`, url: 'https://example.com/', bk_http_request_header: [] }
    const out = sealRetryInputs(box, current, {
      body: 'new-secret-body',
      url: 'https://example.org/',
      bk_http_request_header: [
        { name: 'Authorization', value: 'Bearer new-secret-token' },
        { name: 'Accept', value: 'text/plain' },
      ],
    })
    const json = JSON.stringify(out)
    expect(json).not.toContain('new-secret-body')
    expect(json).not.toContain('new-secret-token')
    expect(json).toContain('text/plain')
    expect(out.url).toBe('https://example.org/')
    expect(box.open(out.body).value).toBe('new-secret-body')
    expect(sealRetryInputs(box, current, { body: MASK }).body).toBe(`pw=${token}`)
  })

  it('a scrubbing logger keeps opened secrets out of messages, merged objects, errors and children', () => {
    const lines: string[] = []
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString('utf8'))
        done()
      },
    })
    const log = scrubbingLogger(pino(sink), (v) => box.scrub(v, ['topsecret-42']))
    log.info({ header: 'Bearer topsecret-42', n: 1 }, 'sent topsecret-42')
    log.warn('plain topsecret-42 and %s', 'topsecret-42')
    log.error(new Error('failed with topsecret-42'))
    log.child({ token: 'topsecret-42' }).info({ err: new Error('nested topsecret-42') }, 'child line')
    expect(lines).toHaveLength(4)
    const all = lines.join('')
    expect(all).not.toContain('topsecret-42')
    expect(all.split(MASK).length - 1).toBeGreaterThanOrEqual(6)
    expect(all).toContain('child line')
  })
})

const told: string[] = []
const serverLog: string[] = []
const sink = new Writable({
  write(chunk: Buffer, _enc, done) {
    serverLog.push(chunk.toString('utf8'))
    done()
  },
})
/** Logs what it was given through the server's logger, as a careless component would. */
const talker = defineComponent({
  code: 'talker',
  inputs: z.object({ said: z.string() }),
  outputs: z.object({}),
  async execute(inputs, ctx) {
    told.push(inputs.said)
    ctx.logger.info({ said: inputs.said }, `talking about ${inputs.said}`)
    ctx.logger.child({ said: inputs.said }).warn(new Error(`cannot ${inputs.said}`))
    return { status: 'finished', outputs: {} }
  },
})

describe('secrets in a running task', () => {
  it('the component sees the value; its outputs, error and attempt log are scrubbed; stored inputs hold the token', async () => {
    const { createTreeBuilder } = await import('@stdops/core/testing')
    const { sql } = await import('@stdops/db')
    const { createHarness, insertTask, nodes, operate, waitFor } = await import('./helpers')
    const h = await createHarness()
    try {
      const engine = await h.engine({
        secrets: box,
        logger: pino(sink),
        components: [...TEST_COMPONENTS, talker],
      })
      const run = async (ok: boolean) => {
        const b = createTreeBuilder()
        const talk = b.activity('talker', { data: { said: { hook: true, value: 'pw=${pw}' } } })
        const node = b.activity('check', {
          data: { ok: { hook: false, value: ok }, value: { hook: true, value: 'pw=${pw}' } },
        })
        b.chain(b.startId, talk, node, b.endId)
        b.constant('pw', 'hunter2-secret', { custom_type: 'password' })
        const id = await insertTask(
          h.db,
          sealTreeSecrets(box, b.build() as unknown as Record<string, unknown>),
        )
        await operate(engine, id, 'start')
        const row = await waitFor('the check to end', async () => {
          const n = (await nodes(h.db, id)).get(node)
          return n && (n.state === 'FINISHED' || n.state === 'FAILED') ? n : null
        })
        const hist = await h.db.query<{
          inputs: string
          log: string
          error: string | null
          outputs: string | null
        }>(sql`SELECT inputs, log, error, outputs FROM node_histories WHERE task_id = ${id}`)
        return { row, hist: JSON.stringify(hist) }
      }
      const failed = await run(false)
      expect(failed.row.error).toBe(`check failed: ok is false (value "pw=${MASK}")`)
      const finished = await run(true)
      expect(finished.row.outputs).toEqual({ value: `pw=${MASK}` })
      // what the component wrote to the server's log
      expect(told).toEqual(['pw=hunter2-secret', 'pw=hunter2-secret'])
      expect(serverLog.join('')).toContain('talking about')
      expect(serverLog.join('')).not.toContain('hunter2-secret')
      for (const r of [failed, finished]) {
        expect(r.hist).not.toContain('hunter2-secret')
        expect(r.hist).toContain(`value=\\"pw=${MASK}\\"`)
        expect(r.hist).toContain('[[stdops-secret:v1:')
      }
    } finally {
      await h.close()
    }
  })
})
