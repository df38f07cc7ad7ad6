import { type Client, createClient } from '../client'
import { type Connection, type GlobalFlags, projectRef, resolveConnection } from '../config'
import { UsageError } from '../errors'
import type { Io } from '../io'

/** What every command gets: the streams, the global flags, and (once connected) the server URL for messages. */
export interface CommandContext {
  io: Io
  flags: GlobalFlags
  url?: string
}

export interface Connected {
  conn: Connection
  client: Client
  /** `{ bk_biz_id, scope }` of the project in use; a usage error when none is set */
  project(): { bk_biz_id: number; scope: 'cmdb_biz' | 'project' }
}

export function connect(ctx: CommandContext): Connected {
  const conn = resolveConnection(ctx.flags, ctx.io.env)
  ctx.url = conn.url
  return { conn, client: createClient(conn), project: () => projectRef(conn) }
}

/** A positional id: a positive integer, or a usage error naming the argument. */
export function parseId(value: string, what: string): number {
  if (!/^[1-9]\d*$/.test(value) || !Number.isSafeInteger(Number(value))) {
    throw new UsageError(`${what} must be a positive integer, got '${value}'`)
  }
  return Number(value)
}
