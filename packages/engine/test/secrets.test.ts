import { MASK } from '@stdops/core'
import { describe, expect, it } from 'vitest'
import { createSecretBox, SecretOpenError, sealTreeSecrets } from '../src/index'

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
})

describe('secrets in a running task', () => {
  it('the component sees the value; its outputs, error and attempt log are scrubbed; stored inputs hold the token', async () => {
    const { createTreeBuilder } = await import('@stdops/core/testing')
    const { sql } = await import('@stdops/db')
    const { createHarness, insertTask, nodes, operate, waitFor } = await import('./helpers')
    const h = await createHarness()
    try {
      const engine = await h.engine({ secrets: box })
      const run = async (ok: boolean) => {
        const b = createTreeBuilder()
        const node = b.activity('check', {
          data: { ok: { hook: false, value: ok }, value: { hook: true, value: 'pw=${pw}' } },
        })
        b.chain(b.startId, node, b.endId)
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
