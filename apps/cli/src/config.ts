import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { dirname, join } from 'node:path'
import { UsageError } from './errors'

export type Scope = 'cmdb_biz' | 'project'
export const SCOPES: readonly Scope[] = ['cmdb_biz', 'project']

/** What `stdops login` keeps, per profile, in `<config dir>/config.json` (mode 0600). */
export interface Profile {
  url?: string
  app_code?: string
  app_secret?: string
  token?: string
  username?: string
  project?: number
  scope?: Scope
}

interface ConfigFile {
  profiles: Record<string, Profile>
}

/** The flags every command takes (none of them a secret). */
export interface GlobalFlags {
  url?: string
  appCode?: string
  username?: string
  project?: number
  scope?: Scope
  profile?: string
}

export interface Credentials {
  appCode: string
  appSecret: string
  /** a bk_token, or a username for apps allowed to name users */
  token?: string
  username?: string
}

export interface Connection {
  url: string
  credentials: Credentials
  project?: number
  scope?: Scope
}

/** `$XDG_CONFIG_HOME/stdops`, else `~/.config/stdops`. */
export function configDir(env: NodeJS.ProcessEnv): string {
  if (env.XDG_CONFIG_HOME) return join(env.XDG_CONFIG_HOME, 'stdops')
  return join(env.HOME || homedir(), '.config', 'stdops')
}

export const configPath = (env: NodeJS.ProcessEnv) => join(configDir(env), 'config.json')

export const profileName = (flags: GlobalFlags, env: NodeJS.ProcessEnv) =>
  flags.profile ?? (env.STDOPS_PROFILE || 'default')

function readConfig(env: NodeJS.ProcessEnv): ConfigFile {
  const path = configPath(env)
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return { profiles: {} }
    throw new UsageError(`cannot read ${path}: ${(err as Error).message}`)
  }
  try {
    const parsed = JSON.parse(text) as Partial<ConfigFile>
    return { profiles: parsed.profiles && typeof parsed.profiles === 'object' ? parsed.profiles : {} }
  } catch {
    throw new UsageError(`${path} is not valid JSON: fix it or run \`stdops login\` again`)
  }
}

export function readProfile(env: NodeJS.ProcessEnv, name: string): Profile | undefined {
  return readConfig(env).profiles[name]
}

/** Writes the profile; the file is created (or left) readable by its owner only. */
export function writeProfile(env: NodeJS.ProcessEnv, name: string, profile: Profile): string {
  const path = configPath(env)
  const config = readConfig(env)
  config.profiles[name] = profile
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 })
  const tmp = `${path}.${process.pid}.tmp`
  writeFileSync(tmp, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 })
  chmodSync(tmp, 0o600)
  renameSync(tmp, path)
  return path
}

const nonEmpty = (v: string | undefined) => (v === undefined || v === '' ? undefined : v)

export function parseProjectId(v: string, what = '--project'): number {
  if (!/^[1-9]\d*$/.test(v) || !Number.isSafeInteger(Number(v)))
    throw new UsageError(`${what} must be a positive integer, got '${v}'`)
  return Number(v)
}

function parseScope(v: string, what: string): Scope {
  if (!SCOPES.includes(v as Scope)) throw new UsageError(`${what} must be cmdb_biz or project, got '${v}'`)
  return v as Scope
}

/**
 * Flags, then the environment (STDOPS_URL, STDOPS_APP_CODE, STDOPS_APP_SECRET, STDOPS_TOKEN or
 * STDOPS_USERNAME, STDOPS_PROJECT, STDOPS_SCOPE), then the profile. Secrets come only from the
 * environment or the profile. The user identity is taken whole from the first layer that names
 * one, so an environment token is never paired with a profile's username.
 */
export function resolveConnection(flags: GlobalFlags, env: NodeJS.ProcessEnv): Connection {
  const profile = readProfile(env, profileName(flags, env)) ?? {}
  const url = flags.url ?? nonEmpty(env.STDOPS_URL) ?? profile.url
  if (!url) throw new UsageError('no server URL: set STDOPS_URL, pass --url, or run `stdops login`')
  if (!/^https?:\/\//.test(url))
    throw new UsageError(`the server URL must start with http:// or https://, got '${url}'`)
  const appCode = flags.appCode ?? nonEmpty(env.STDOPS_APP_CODE) ?? profile.app_code
  if (!appCode)
    throw new UsageError('no app code: set STDOPS_APP_CODE, pass --app-code, or run `stdops login`')
  const appSecret = nonEmpty(env.STDOPS_APP_SECRET) ?? profile.app_secret
  if (!appSecret) throw new UsageError('no app secret: set STDOPS_APP_SECRET or run `stdops login`')

  let user: Pick<Credentials, 'token' | 'username'>
  if (flags.username) user = { username: flags.username }
  else if (nonEmpty(env.STDOPS_TOKEN)) user = { token: env.STDOPS_TOKEN! }
  else if (nonEmpty(env.STDOPS_USERNAME)) user = { username: env.STDOPS_USERNAME! }
  else if (profile.token) user = { token: profile.token }
  else if (profile.username) user = { username: profile.username }
  else
    throw new UsageError(
      'no user: set STDOPS_TOKEN (or STDOPS_USERNAME for apps allowed to name users), or run `stdops login`',
    )

  const envProject = nonEmpty(env.STDOPS_PROJECT)
  const envScope = nonEmpty(env.STDOPS_SCOPE)
  const project =
    flags.project ?? (envProject ? parseProjectId(envProject, 'STDOPS_PROJECT') : profile.project)
  const scope = flags.scope ?? (envScope ? parseScope(envScope, 'STDOPS_SCOPE') : profile.scope)
  return {
    url: url.replace(/\/+$/, ''),
    credentials: { appCode, appSecret, ...user },
    ...(project !== undefined ? { project } : {}),
    ...(scope !== undefined ? { scope } : {}),
  }
}

/** The project every task and template command needs. */
export function projectRef(conn: Connection): { bk_biz_id: number; scope: Scope } {
  if (conn.project === undefined) {
    throw new UsageError(
      'no project: pass --project <bk_biz_id>, set STDOPS_PROJECT, or run `stdops login --project <bk_biz_id>`',
    )
  }
  return { bk_biz_id: conn.project, scope: conn.scope ?? 'cmdb_biz' }
}
