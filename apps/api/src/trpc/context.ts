import type { CreateFastifyContextOptions } from '@trpc/server/adapters/fastify'
import { type Credentials, credentialsFrom } from '../services/auth'
import type { Deps } from '../services/deps'

export interface Context {
  deps: Deps
  credentials: Credentials
  clientIp: string
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

export function createContextFactory(deps: Deps) {
  return ({ req }: CreateFastifyContextOptions): Context => ({
    deps,
    credentials: credentialsFromHeaders(req.headers),
    clientIp: req.ip,
  })
}
