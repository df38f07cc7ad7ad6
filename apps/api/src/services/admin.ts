import { ParamInvalidError } from '@stdops/core'
import { hashSecret, newSecret } from '../crypto'
import { CONSOLE_APP } from './auth'
import type { Deps } from './deps'
import { ROLES, type Role } from './projects'

type AdminDeps = Pick<Deps, 'db' | 'secretKey' | 'now'>

const CODE = /^[A-Za-z0-9_-]{1,64}$/
const USERNAME = /^[A-Za-z0-9_.@-]{1,64}$/

/** Adds an app, or updates the flags (and the secret, when one is given) of an existing one. */
export async function addApp(
  deps: AdminDeps,
  code: string,
  opts: { secret?: string | undefined; trusted?: boolean; userSkip?: boolean },
) {
  if (!CODE.test(code))
    throw new ParamInvalidError(
      `app code must be 1-64 characters of letters, digits, _ and -, got ${JSON.stringify(code)}`,
    )
  if (code === CONSOLE_APP.code)
    throw new ParamInvalidError(`${code} is the built-in console app: it has no secret and cannot be added`)
  if (opts.secret !== undefined && opts.secret.length < 16)
    throw new ParamInvalidError('--secret must be at least 16 characters')
  const existing = await deps.db.prisma.app.findUnique({ where: { code } })
  const flags = { trusted: opts.trusted ?? false, userSkip: opts.userSkip ?? false }
  if (existing) {
    await deps.db.prisma.app.update({
      where: { code },
      data: {
        ...flags,
        ...(opts.secret !== undefined ? { secretHash: hashSecret(deps.secretKey, opts.secret) } : {}),
      },
    })
    return { created: false, code, secret: undefined }
  }
  const secret = opts.secret ?? newSecret()
  await deps.db.prisma.app.create({
    data: { code, secretHash: hashSecret(deps.secretKey, secret), ...flags, createdAt: BigInt(deps.now()) },
  })
  return { created: true, code, secret: opts.secret === undefined ? secret : undefined }
}

async function ensureUser(deps: AdminDeps, username: string) {
  if (!USERNAME.test(username))
    throw new ParamInvalidError(
      `username must be 1-64 characters of letters, digits, _ . @ and -, got ${JSON.stringify(username)}`,
    )
  const existing = await deps.db.prisma.user.findUnique({ where: { username } })
  if (existing) return { user: existing, created: false }
  const user = await deps.db.prisma.user.create({ data: { username, createdAt: BigInt(deps.now()) } })
  return { user, created: true }
}

/** Issues a token for a user (the given one, or a new random one); a given token already issued is kept as it is. */
export async function addToken(
  deps: AdminDeps,
  username: string,
  opts: { token?: string | undefined; expiresInMs?: number | undefined },
) {
  if (opts.token !== undefined && opts.token.length < 16)
    throw new ParamInvalidError('--token must be at least 16 characters')
  const { user } = await ensureUser(deps, username)
  const token = opts.token ?? newSecret()
  const tokenHash = hashSecret(deps.secretKey, token)
  const existing = await deps.db.prisma.token.findUnique({ where: { tokenHash } })
  if (existing) {
    if (existing.userId !== user.id)
      throw new ParamInvalidError('that token is already issued to another user')
    return { username, token: undefined }
  }
  const now = deps.now()
  await deps.db.prisma.token.create({
    data: {
      userId: user.id,
      tokenHash,
      createdAt: BigInt(now),
      expiresAt: opts.expiresInMs === undefined ? null : BigInt(now + opts.expiresInMs),
    },
  })
  return { username, token: opts.token === undefined ? token : undefined }
}

/** Adds a user; issues a token when the user is new or a token is given. */
export async function addUser(deps: AdminDeps, username: string, opts: { token?: string | undefined }) {
  const { created } = await ensureUser(deps, username)
  if (!created && opts.token === undefined) return { created, username, token: undefined }
  const t = await addToken(deps, username, opts)
  return { created, username, token: t.token }
}

export async function revokeToken(deps: AdminDeps, token: string) {
  const tokenHash = hashSecret(deps.secretKey, token)
  const n = await deps.db.prisma.token.updateMany({
    where: { tokenHash, revokedAt: null },
    data: { revokedAt: BigInt(deps.now()) },
  })
  const exists = n.count > 0 || (await deps.db.prisma.token.findUnique({ where: { tokenHash } })) !== null
  if (!exists) throw new ParamInvalidError('no such token')
  return { revoked: n.count > 0 }
}

/** Adds a project; with a bk_biz_id that exists already, returns that project (renamed to `name`). */
export async function addProject(deps: AdminDeps, name: string, bkBizId: number) {
  if (name.trim().length === 0 || name.length > 100)
    throw new ParamInvalidError('--name must be 1-100 characters')
  if (!Number.isSafeInteger(bkBizId) || bkBizId < 1 || bkBizId > 2147483647)
    throw new ParamInvalidError('--biz-id must be an integer from 1 to 2147483647')
  const existing = await deps.db.prisma.project.findUnique({ where: { bkBizId } })
  if (existing) {
    if (existing.name !== name)
      await deps.db.prisma.project.update({ where: { id: existing.id }, data: { name } })
    return { created: false, id: existing.id, bkBizId }
  }
  const p = await deps.db.prisma.project.create({ data: { name, bkBizId, createdAt: BigInt(deps.now()) } })
  return { created: true, id: p.id, bkBizId }
}

export async function grant(deps: AdminDeps, username: string, projectId: number, role: string) {
  if (!(ROLES as readonly string[]).includes(role))
    throw new ParamInvalidError(`--role must be one of ${ROLES.join(', ')}, got ${JSON.stringify(role)}`)
  const user = await deps.db.prisma.user.findUnique({ where: { username } })
  if (!user) throw new ParamInvalidError(`no such user: ${username}`)
  const project =
    Number.isSafeInteger(projectId) && projectId <= 2147483647
      ? await deps.db.prisma.project.findUnique({ where: { id: projectId } })
      : null
  if (!project) throw new ParamInvalidError(`no such project id: ${projectId}`)
  await deps.db.prisma.membership.upsert({
    where: { projectId_userId: { projectId, userId: user.id } },
    update: { role: role as Role },
    create: { projectId, userId: user.id, role: role as Role, createdAt: BigInt(deps.now()) },
  })
  return { username, projectId, role }
}
export { addCommonTemplate } from './templates'
