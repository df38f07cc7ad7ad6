import { createClient } from '../client'
import { type Credentials, type Profile, profileName, readProfile, writeProfile } from '../config'
import { refusalOf, UsageError } from '../errors'
import { ask, readStdinLines } from '../prompt'
import type { CommandContext } from './context'

const nonEmpty = (v: string | undefined) => (v === undefined || v === '' ? undefined : v)

/**
 * `stdops login`: asks for what is missing, checks it against the server, and saves it as a
 * profile. Secrets come from STDOPS_APP_SECRET / STDOPS_TOKEN, a hidden prompt on a terminal,
 * or stdin lines otherwise (the app secret, then the token): never from a flag.
 */
export async function login(ctx: CommandContext, o: { verify: boolean }) {
  const { io, flags } = ctx
  const env = io.env
  const name = profileName(flags, env)
  const before: Profile = readProfile(env, name) ?? {}
  const tty = io.stdin.isTTY === true
  let piped: string[] | null = null
  const nextPiped = async (what: string, hint: string) => {
    piped ??= await readStdinLines(io)
    const v = piped.shift()
    if (!v) throw new UsageError(`no ${what}: set ${hint} or pipe it on stdin`)
    return v
  }
  const plain = async (value: string | undefined, question: string, what: string, hint: string) => {
    if (value) return value
    if (!tty) throw new UsageError(`no ${what}: pass ${hint}`)
    const answer = await ask(io, question)
    if (!answer) throw new UsageError(`no ${what} given`)
    return answer
  }
  const secret = async (value: string | undefined, question: string, what: string, hint: string) => {
    if (value) return value
    if (!tty) return nextPiped(what, hint)
    const answer = await ask(io, question, true)
    if (!answer) throw new UsageError(`no ${what} given`)
    return answer
  }

  const url = (
    await plain(
      flags.url ?? nonEmpty(env.STDOPS_URL) ?? before.url,
      'Server URL (e.g. http://127.0.0.1:8000): ',
      'server URL',
      '--url or set STDOPS_URL',
    )
  ).replace(/\/+$/, '')
  if (!/^https?:\/\//.test(url))
    throw new UsageError(`the server URL must start with http:// or https://, got '${url}'`)
  const appCode = await plain(
    flags.appCode ?? nonEmpty(env.STDOPS_APP_CODE) ?? before.app_code,
    'App code: ',
    'app code',
    '--app-code or set STDOPS_APP_CODE',
  )
  const appSecret = await secret(
    nonEmpty(env.STDOPS_APP_SECRET),
    'App secret: ',
    'app secret',
    'STDOPS_APP_SECRET',
  )
  const username = flags.username ?? nonEmpty(env.STDOPS_USERNAME)
  const token = username
    ? undefined
    : await secret(
        nonEmpty(env.STDOPS_TOKEN),
        'bk_token: ',
        'bk_token',
        'STDOPS_TOKEN (or --username for apps allowed to name users)',
      )
  const project = flags.project ?? before.project
  const scope = flags.scope ?? before.scope

  const credentials: Credentials = { appCode, appSecret, ...(token ? { token } : { username: username! }) }
  if (o.verify) await verify(url, credentials, project, scope)

  const profile: Profile = {
    url,
    app_code: appCode,
    app_secret: appSecret,
    ...(token ? { token } : { username: username! }),
    ...(project !== undefined ? { project } : {}),
    ...(scope !== undefined ? { scope } : {}),
  }
  const path = writeProfile(env, name, profile)
  const who = token ? 'your bk_token' : `user ${username}`
  io.err.write(
    `${o.verify ? 'logged in' : 'saved (not checked)'}: ${url} as ${who} with app ${appCode}` +
      `${project !== undefined ? `, project ${project}` : ', no default project (pass --project)'}\n` +
      `profile "${name}" written to ${path}\n`,
  )
}

/**
 * Checks the credentials with a call the server authenticates first: the project's template
 * list when a project is known (which also checks access to it); otherwise a call with no
 * project, which a known caller gets refused only for the missing parameter (3540000).
 */
async function verify(
  url: string,
  credentials: Credentials,
  project: number | undefined,
  scope: 'cmdb_biz' | 'project' | undefined,
) {
  const client = createClient({ url, credentials })
  if (project !== undefined) {
    await client.template.list.query({ bk_biz_id: project, scope: scope ?? 'cmdb_biz' })
    return
  }
  try {
    await client.template.list.query({ bk_biz_id: 0 })
  } catch (err) {
    if (refusalOf(err)?.code === 3540000) return
    throw err
  }
}
