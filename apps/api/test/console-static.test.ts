import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { expectRefusal } from './fixtures'
import { esb, type Harness, startHarness } from './harness'

const INDEX =
  '<!doctype html><html><body><div id="root"></div><script type="module" src="/assets/app-1a2b3c.js"></script></body></html>'

describe('the console served at / beside the APIs', () => {
  let h: Harness
  let dir: string

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'stdops-console-'))
    mkdirSync(join(dir, 'assets'))
    writeFileSync(join(dir, 'index.html'), INDEX)
    writeFileSync(join(dir, 'assets', 'app-1a2b3c.js'), 'console.log("console")')
    h = await startHarness({ worker: false, consoleDir: dir })
  })
  afterAll(async () => {
    await h?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  const expectConsoleHeaders = (res: Response) => {
    expect(res.headers.get('x-frame-options')).toBe('DENY')
    expect(res.headers.get('content-security-policy')).toContain("frame-ancestors 'none'")
    expect(res.headers.get('content-security-policy')).toContain("script-src 'self'")
    expect(res.headers.get('x-content-type-options')).toBe('nosniff')
  }

  it('answers / and every page of the console with index.html, refusing to be framed', async () => {
    for (const path of ['/', '/projects/2/tasks?states=FAILED', '/projects/2/tasks/7?node=n1&tab=events']) {
      const res = await fetch(`${h.url}${path}`)
      expect(res.status, path).toBe(200)
      expect(res.headers.get('content-type')).toMatch(/^text\/html/)
      expect(res.headers.get('cache-control')).toBe('no-cache')
      expectConsoleHeaders(res)
      expect(await res.text()).toBe(INDEX)
    }
  })

  it('serves the built assets with a long cache, and 404s a missing one instead of the page', async () => {
    const res = await fetch(`${h.url}/assets/app-1a2b3c.js`)
    expect(res.status).toBe(200)
    expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable')
    expectConsoleHeaders(res)
    expect(await res.text()).toBe('console.log("console")')
    const missing = await fetch(`${h.url}/assets/gone-000000.js`)
    expect(missing.status).toBe(404)
    expect(await missing.json()).toEqual({ error: 'not found' })
  })

  it('leaves the APIs their paths: tRPC, health, and the legacy 404 envelope for an unknown API', async () => {
    expect((await fetch(`${h.url}/healthz`)).status).toBe(200)
    const trpc = await fetch(`${h.url}/trpc/session.me`)
    expect(trpc.status).toBe(401)
    expect(trpc.headers.get('content-type')).toMatch(/json/)
    for (const method of ['GET', 'POST'] as const) {
      const reply = await esb(h.url, 'no_such_api', { method, ...(method === 'GET' ? { query: {} } : {}) })
      expectRefusal(reply, 1306404, 'component not found: no_such_api', 404)
    }
    const unknownTrpc = await fetch(`${h.url}/trpc/nope.nothing`)
    expect(unknownTrpc.status).toBe(404)
    expect(unknownTrpc.headers.get('content-type')).toMatch(/json/)
  })

  it('says how to build the console when its files are missing', async () => {
    const bare = await startHarness({ worker: false, consoleDir: join(dir, 'not-built') })
    try {
      const res = await fetch(`${bare.url}/`)
      expect(res.status).toBe(503)
      expect(await res.text()).toContain('pnpm build')
      expect((await fetch(`${bare.url}/healthz`)).status).toBe(200)
    } finally {
      await bare.close()
    }
  })
})
