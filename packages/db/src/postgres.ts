import { createHash } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { PrismaPg } from '@prisma/adapter-pg'
import pg from 'pg'
import { PrismaClient } from './generated/postgresql/client'
import type { PrismaClient as SqlitePrismaClient } from './generated/sqlite/client'
import { loadMigrations, MIGRATIONS_TABLE_SQL, newMigrationId } from './migrations'
import { createPublisher, type Publisher } from './publish'
import type { Sql } from './sql'
import type { Db, Executor, Row } from './types'

// BIGINT columns hold epoch milliseconds and counts: all below 2^53, so read them as numbers.
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === 20) return (v: string) => Number(v)
    return pg.types.getTypeParser(oid, format as 'text')
  },
}

// Retried transparently: the transaction lost a deadlock or a serialization race and did nothing.
const RETRYABLE = new Set(['40001', '40P01'])
const MIGRATION_LOCK = 72707369 // Prisma's own advisory lock key for migrations

function statementName(text: string): string {
  return `s${createHash('sha1').update(text).digest('hex').slice(0, 16)}`
}

/** Runs what was deferred to a commit; one failing report does not stop the others. */
export function runCommitted(fns: Array<() => void>) {
  for (const fn of fns) {
    try {
      fn()
    } catch {
      // a report about a committed change must not undo the caller's success
    }
  }
}

function executorFor(
  client: pg.Pool | pg.PoolClient,
  committed: Array<() => void> | null,
  publisher: Publisher,
): Executor {
  const run = async (q: Sql) => {
    const { text, values } = q.compile('postgresql')
    return client.query({ name: statementName(text), text, values: values as unknown[] })
  }
  const afterCommit = (fn: () => void) => {
    if (committed) committed.push(fn)
    else runCommitted([fn])
  }
  return {
    provider: 'postgresql',
    query: async <T = Row>(q: Sql) => (await run(q)).rows as T[],
    execute: async (q: Sql) => (await run(q)).rowCount ?? 0,
    afterCommit,
    publish: (channel, key) => afterCommit(() => publisher.add(channel, key)),
  }
}

export function createPostgresDb(
  url: string,
  opts: { poolSize?: number } = {},
): Db & { migrate(): Promise<string[]> } {
  const pool = new pg.Pool({ connectionString: url, max: opts.poolSize ?? 10, types })
  pool.on('error', () => {
    // An idle client lost its connection; the pool replaces it on the next checkout.
  })
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool) }) as unknown as SqlitePrismaClient
  const notify = async (channel: string, payload: string) => {
    await pool.query('SELECT pg_notify($1, $2)', [channel, payload])
  }
  // A failed NOTIFY only delays the listeners until their next poll.
  const publisher = createPublisher(notify)
  const base = executorFor(pool, null, publisher)
  const emitter = new EventEmitter()
  emitter.setMaxListeners(0)
  let listener: Promise<pg.Client> | null = null
  const channels = new Set<string>()

  let closed = false
  const getListener = () => {
    listener ??= (async () => {
      const c = new pg.Client({ connectionString: url })
      c.on('notification', (n) => emitter.emit(n.channel, n.payload ?? ''))
      c.on('error', () => {
        // The LISTEN connection died: open a new one and listen again on every channel.
        // Meanwhile the listeners' own polling covers what a lost notification would have said.
        listener = null
        if (!closed && channels.size > 0) setTimeout(() => void relisten(), 1000).unref()
      })
      await c.connect()
      return c
    })()
    return listener
  }
  const relisten = async () => {
    if (closed) return
    try {
      const c = await getListener()
      for (const ch of channels) await c.query(`LISTEN ${pg.escapeIdentifier(ch)}`)
    } catch {
      listener = null
      if (!closed) setTimeout(() => void relisten(), 1000).unref()
    }
  }

  const tx = async <T>(fn: (tx: Executor) => Promise<T>): Promise<T> => {
    for (let attempt = 1; ; attempt++) {
      const client = await pool.connect()
      // A connection lost mid-transaction (killed, network) rejects the statement in flight and
      // also emits 'error' on the client: handled here, or it would take the process down. The
      // broken client is then destroyed rather than returned to the pool.
      let lost: Error | undefined
      const onLost = (err: Error) => {
        lost = err
      }
      client.on('error', onLost)
      const committed: Array<() => void> = []
      try {
        await client.query('BEGIN')
        const result = await fn(executorFor(client, committed, publisher))
        await client.query('COMMIT')
        runCommitted(committed)
        return result
      } catch (err) {
        if (!lost) await client.query('ROLLBACK').catch(() => {})
        const code = (err as { code?: string }).code
        if (code && RETRYABLE.has(code) && attempt < 5) continue
        throw err
      } finally {
        client.off('error', onLost)
        client.release(lost)
      }
    }
  }

  return {
    provider: 'postgresql',
    url,
    prisma,
    query: base.query,
    execute: base.execute,
    afterCommit: base.afterCommit,
    publish: base.publish,
    tx,
    notify,
    listen: async (channel, onMessage) => {
      const c = await getListener()
      if (!channels.has(channel)) {
        channels.add(channel)
        await c.query(`LISTEN ${pg.escapeIdentifier(channel)}`)
      }
      emitter.on(channel, onMessage)
      return async () => {
        emitter.off(channel, onMessage)
      }
    },
    migrate: async () => {
      const client = await pool.connect()
      const done: string[] = []
      try {
        await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK])
        await client.query(MIGRATIONS_TABLE_SQL.postgresql)
        const { rows } = await client.query<{ migration_name: string }>(
          'SELECT migration_name FROM _prisma_migrations WHERE rolled_back_at IS NULL',
        )
        const applied = new Set(rows.map((r) => r.migration_name))
        for (const m of loadMigrations('postgresql')) {
          if (applied.has(m.name)) continue
          await client.query('BEGIN')
          try {
            await client.query(m.sql)
            await client.query(
              `INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at, finished_at, applied_steps_count)
               VALUES ($1, $2, $3, now(), now(), 1)`,
              [newMigrationId(), m.checksum, m.name],
            )
            await client.query('COMMIT')
          } catch (err) {
            await client.query('ROLLBACK').catch(() => {})
            throw err
          }
          done.push(m.name)
        }
      } finally {
        await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => {})
        client.release()
      }
      return done
    },
    close: async () => {
      // What committed last still wakes its listeners.
      await publisher.flush()
      closed = true
      await prisma.$disconnect()
      if (listener) await (await listener).end().catch(() => {})
      await pool.end().catch(() => {})
    },
  }
}
