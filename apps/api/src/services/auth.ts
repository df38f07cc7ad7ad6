import { AuthenticationError, LegacyCode, RateLimitedError, StdopsError } from '@stdops/core'
import { sql } from '@stdops/db'
import { hashSecret, sameDigest } from '../crypto'
import type { Deps } from './deps'

/** The longest app code there can be (addApp's rule). */
export const MAX_APP_CODE = 64

/** Credentials as they arrived (header, body or query), aliases already folded in. */
export interface Credentials {
  appCode?: string | undefined
  appSecret?: string | undefined
  token?: string | undefined
  username?: string | undefined
  /**
   * The `bk_token` cookie of a console session, read only when the request names no app. Such a
   * request authenticates as the built-in console app and the token's user.
   */
  consoleToken?: string | undefined
}

/**
 * The built-in app of the web console. It has no row and no secret: nothing outside the server
 * can present it. A request authenticates as it only through the `bk_token` cookie, and then gets
 * exactly the roles of the cookie's user (it is never trusted).
 */
export const CONSOLE_APP = { id: 0, code: 'stdops-console', trusted: false } as const

/** A console mutation without the header a cross-site form or a plain link cannot send. */
export class CrossSiteRequestError extends StdopsError {
  constructor() {
    super(
      `cross-site request refused: a console request that changes something needs the ${CSRF_HEADER} header`,
      LegacyCode.ESB_COMMON,
      403,
    )
  }
}

/**
 * The custom header the console sends with every request. A cross-site form cannot set a header,
 * and a cross-site script cannot send one without a CORS preflight, which this server never
 * grants: its presence proves the request came from the console's own pages.
 */
export const CSRF_HEADER = 'x-stdops-csrf'

export interface Caller {
  app: { id: number; code: string; trusted: boolean }
  username: string
  userId: number | null
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined)

/** Reads the four keys and their aliases from one source object. */
export function credentialsFrom(source: Record<string, unknown>): Credentials {
  return {
    appCode: str(source.bk_app_code) ?? str(source.app_code),
    appSecret: str(source.bk_app_secret) ?? str(source.app_secret),
    token: str(source.bk_token),
    username: str(source.bk_username) ?? str(source.username),
  }
}

/**
 * The ESB's checks, in bk-sops's order and with its messages. Every failure counts
 * against the (app code, client address) pair; past the limit a failing attempt is refused with
 * 1306429 instead.
 */
export async function authenticate(deps: Deps, creds: Credentials, clientIp: string): Promise<Caller> {
  const fail = (message: string): never => {
    const app = (creds.appCode ?? (creds.consoleToken !== undefined ? CONSOLE_APP.code : '')).slice(
      0,
      MAX_APP_CODE,
    )
    if (deps.authFailures.fail(`${app}\u0000${clientIp}`, deps.now())) {
      throw new RateLimitedError('too many failed authentications for this app and address; try again later')
    }
    throw new AuthenticationError(message)
  }
  const { appCode, appSecret, token, username } = creds
  if (!appCode && creds.consoleToken !== undefined) return authenticateConsole(deps, creds.consoleToken, fail)
  if (!appCode) return fail('APP Code [bk_app_code] cannot be empty')
  if (!appSecret) return fail('APP Secret [bk_app_secret] cannot be empty')
  // No app has a longer code (addApp refuses one): refused before it is echoed, looked up or counted at length
  if (appCode.length > MAX_APP_CODE)
    return fail(
      `Invalid APP Code [bk_app_code]: longer than ${MAX_APP_CODE} characters, no app has such a code`,
    )
  // PostgreSQL refuses NUL in text: such a code names no app (nor does such a username a user, below)
  if (appCode.includes('\u0000'))
    return fail(`Invalid APP Code [bk_app_code=${appCode}], please confirm the APP Code has been registered`)
  // One round trip for the app and, when one was given, the token and its user.
  const digest = token ? hashSecret(deps.secretKey, token) : ''
  const [app] = await deps.db.query<{
    id: number
    code: string
    secret_hash: string
    trusted: unknown
    user_skip: unknown
    token_hash: string | null
    user_id: number | null
    username: string | null
    expires_at: number | null
    revoked_at: number | null
  }>(
    sql`SELECT a.id, a.code, a.secret_hash, a.trusted, a.user_skip,
               t.token_hash, t.user_id, u.username, t.expires_at, t.revoked_at
        FROM apps a
        LEFT JOIN tokens t ON t.token_hash = ${digest}
        LEFT JOIN users u ON u.id = t.user_id
        WHERE a.code = ${appCode}`,
  )
  if (!app) {
    return fail(`Invalid APP Code [bk_app_code=${appCode}], please confirm the APP Code has been registered`)
  }
  if (!sameDigest(hashSecret(deps.secretKey, appSecret), app.secret_hash)) {
    return fail(
      `APP Secret verification failed, please confirm the APP Secret and APP Code [bk_app_code=${appCode}] match`,
    )
  }
  const appInfo = { id: app.id, code: app.code, trusted: Boolean(app.trusted) }
  if (token) {
    if (
      app.token_hash === null ||
      app.user_id === null ||
      app.username === null ||
      !sameDigest(digest, app.token_hash) ||
      app.revoked_at !== null ||
      (app.expires_at !== null && Number(app.expires_at) <= deps.now())
    ) {
      return fail('User authentication failed, please check if the bk_token is valid')
    }
    return { app: appInfo, username: app.username, userId: app.user_id }
  }
  if (username && Boolean(app.user_skip)) {
    const [user] = username.includes('\u0000')
      ? []
      : await deps.db.query<{ id: number }>(sql`SELECT id FROM users WHERE username = ${username}`)
    return { app: appInfo, username, userId: user?.id ?? null }
  }
  return fail(
    'User authentication failed, please provide a valid user identity, such as bk_token, bk_username',
  )
}

/** The console's cookie: the built-in app plus the user whose live token it holds. */
async function authenticateConsole(
  deps: Deps,
  token: string,
  fail: (message: string) => never,
): Promise<Caller> {
  const [row] = await deps.db.query<{
    token_hash: string
    user_id: number
    username: string
    expires_at: number | null
    revoked_at: number | null
  }>(
    sql`SELECT t.token_hash, t.user_id, u.username, t.expires_at, t.revoked_at
        FROM tokens t JOIN users u ON u.id = t.user_id
        WHERE t.token_hash = ${hashSecret(deps.secretKey, token)}`,
  )
  if (
    !row ||
    !sameDigest(hashSecret(deps.secretKey, token), row.token_hash) ||
    row.revoked_at !== null ||
    (row.expires_at !== null && Number(row.expires_at) <= deps.now())
  ) {
    return fail('User authentication failed, please check if the bk_token is valid')
  }
  return { app: { ...CONSOLE_APP }, username: row.username, userId: Number(row.user_id) }
}
