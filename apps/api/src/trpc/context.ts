// The request's `cookies` and the reply's `setCookie` (registered on the server by @fastify/cookie).
import type {} from '@fastify/cookie'
import type { CreateFastifyContextOptions } from '@trpc/server/adapters/fastify'
import type { FastifyReply } from 'fastify'
import { type Credentials, CSRF_HEADER, credentialsFrom } from '../services/auth'
import type { Deps } from '../services/deps'
import { SESSION_COOKIE } from '../services/session'

export interface Context {
  deps: Deps
  credentials: Credentials
  clientIp: string
  /** The request carries the console's anti-CSRF header (see CSRF_HEADER). */
  csrfHeader: boolean
  /** For the session procedures, which set and clear the console's cookie. */
  reply: FastifyReply
}

const header = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v)

/**
 * The same credentials as the legacy API: the X-Bkapi-Authorization header, or the app headers
 * (X-Bk-App-Code, X-Bk-App-Secret) with `Authorization: Bearer <bk_token>` (or X-Bk-Username for
 * user-skip apps).
 */
export function credentialsFromHeaders(headers: Record<string, string | string[] | undefined>): Credentials {
  const bkapi = header(headers['x-bkapi-authorization'])
  if (bkapi) {
    try {
      const parsed: unknown = JSON.parse(bkapi)
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed))
        return credentialsFrom(parsed as Record<string, unknown>)
    } catch {
      // not JSON: no credentials
    }
    return {}
  }
  const bearer = /^Bearer\s+(\S+)$/i.exec(header(headers.authorization) ?? '')?.[1]
  return credentialsFrom({
    bk_app_code: header(headers['x-bk-app-code']),
    bk_app_secret: header(headers['x-bk-app-secret']),
    bk_token: bearer,
    bk_username: header(headers['x-bk-username']),
  })
}

/**
 * Header credentials when the request names an app; otherwise the console's `bk_token` cookie,
 * if any (parsed by @fastify/cookie).
 */
export function credentialsFromRequest(req: CreateFastifyContextOptions['req']): Credentials {
  const fromHeaders = credentialsFromHeaders(req.headers)
  if (fromHeaders.appCode !== undefined) return fromHeaders
  const cookie = req.cookies?.[SESSION_COOKIE]
  return cookie ? { consoleToken: cookie } : fromHeaders
}

export function createContextFactory(deps: Deps) {
  return ({ req, res }: CreateFastifyContextOptions): Context => ({
    deps,
    credentials: credentialsFromRequest(req),
    clientIp: req.ip,
    csrfHeader: header(req.headers[CSRF_HEADER]) !== undefined,
    reply: res,
  })
}
