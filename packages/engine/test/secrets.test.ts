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
