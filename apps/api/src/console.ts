import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import fastifyStatic from '@fastify/static'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'

/**
 * The web console's static files (apps/web's build), served at `/` by the API server itself.
 * Every other path keeps its owner: tRPC, the legacy routes, health. A GET for a page of the
 * console (a path without a file extension outside the APIs) answers index.html, and the
 * console's router takes it from there.
 */

/** apps/web/dist beside this package, whether the server runs from src/ or from a build. */
export const DEFAULT_CONSOLE_DIR = fileURLToPath(new URL('../../web/dist/', import.meta.url))

/**
 * Headers of every console response: no framing (clickjacking), scripts and connections only
 * from this origin, no MIME sniffing, no referrer outside it. Inline style attributes are allowed:
 * the canvas positions its nodes with them.
 */
export const CONSOLE_HEADERS: Record<string, string> = {
  'content-security-policy': [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "font-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; '),
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin',
}

/** Paths the console never answers, whatever is or is not found there. */
const NOT_CONSOLE = /^\/(?:trpc|v2|api|healthz|readyz|metrics|assets)(?:[/?]|$)/

export interface ConsoleSite {
  /** For the not-found handler: answers index.html for a console page, or returns false. */
  fallback(req: FastifyRequest, reply: FastifyReply): FastifyReply | false
}

export function registerConsole(app: FastifyInstance, dir: string): ConsoleSite {
  const built = existsSync(join(dir, 'index.html'))
  if (built) {
    app.register(fastifyStatic, {
      root: dir,
      prefix: '/',
      index: 'index.html',
      // Built files carry a content hash in their names: cache them for good; the page itself never.
      setHeaders(reply, path) {
        reply
          .headers(CONSOLE_HEADERS)
          .header(
            'cache-control',
            /[\\/]assets[\\/]/.test(path) ? 'public, max-age=31536000, immutable' : 'no-cache',
          )
      },
    })
  }
  return {
    fallback(req, reply) {
      if (req.method !== 'GET' && req.method !== 'HEAD') return false
      const path = req.url.split('?')[0] ?? '/'
      if (NOT_CONSOLE.test(path) || /\.[A-Za-z0-9]+$/.test(path)) return false
      reply.headers(CONSOLE_HEADERS).header('cache-control', 'no-cache')
      if (!built) {
        return reply
          .status(503)
          .type('text/html; charset=utf-8')
          .send(
            '<!doctype html><title>stdops</title><p>The web console has not been built. Run <code>pnpm build</code> (or <code>pnpm install</code>), then restart the server.</p>',
          )
      }
      return reply.type('text/html; charset=utf-8').sendFile('index.html')
    },
  }
}
