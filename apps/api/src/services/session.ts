import { sql } from '@stdops/db'
import { authenticate, type Caller, CONSOLE_APP } from './auth'
import type { Deps } from './deps'
import type { Role } from './projects'

/** BlueKing's own cookie name: a deployment behind BlueKing's login already sets it. */
export const SESSION_COOKIE = 'bk_token'

/**
 * The console's cookie: script cannot read it (HttpOnly), no other site's page can make the
 * browser send it (SameSite=Strict), and it travels only over TLS when the server's public URL
 * is https. A session cookie: it ends with the browser, and with the token's own expiry or
 * revocation (every request checks the token).
 */
export function sessionCookieOptions(deps: Pick<Deps, 'publicUrl'>) {
  return {
    path: '/',
    httpOnly: true,
    sameSite: 'strict' as const,
    secure: deps.publicUrl.startsWith('https:'),
  }
}

export interface SessionUser {
  username: string
  app_code: string
  /** The user's role in each project that gave them one. */
  roles: Array<{ project_id: number; bk_biz_id: number; role: Role }>
}

async function rolesOf(deps: Deps, caller: Caller): Promise<SessionUser['roles']> {
  if (caller.userId === null) return []
  const rows = await deps.db.query<{ project_id: number; bk_biz_id: number; role: Role }>(
    sql`SELECT m.project_id, p.bk_biz_id, m.role FROM memberships m JOIN projects p ON p.id = m.project_id
        WHERE m.user_id = ${caller.userId} ORDER BY p.bk_biz_id`,
  )
  return rows.map((r) => ({ project_id: Number(r.project_id), bk_biz_id: Number(r.bk_biz_id), role: r.role }))
}

/** Who the caller is, as the console shows it. */
export async function whoAmI(deps: Deps, caller: Caller): Promise<SessionUser> {
  return { username: caller.username, app_code: caller.app.code, roles: await rolesOf(deps, caller) }
}

/**
 * Checks a bk_token exactly as a request carrying it as the console's cookie would be checked
 * (a wrong one counts against the sign-in rate limit); the caller then sets the cookie.
 */
export async function signIn(deps: Deps, token: string, clientIp: string): Promise<SessionUser> {
  const caller = await authenticate(deps, { consoleToken: token }, clientIp)
  return whoAmI(deps, caller)
}

export const isConsoleCaller = (caller: Caller) => caller.app.code === CONSOLE_APP.code
