import type { PrismaClient } from './generated/sqlite/client'
import type { Sql } from './sql'

export type Provider = 'sqlite' | 'postgresql'
export type Row = Record<string, unknown>

/** Runs statements: the database itself, or one open transaction. */
export interface Executor {
  readonly provider: Provider
  query<T = Row>(q: Sql): Promise<T[]>
  /** Returns the number of rows changed. */
  execute(q: Sql): Promise<number>
  /**
   * Runs `fn` once what this executor wrote is committed: after the transaction's COMMIT (never
   * when it rolls back, and once only when a retried transaction commits at last), or at once
   * outside a transaction. For reports about a change (metrics), not for work it causes.
   */
  afterCommit(fn: () => void): void
  /**
   * Once what this executor wrote is committed (as afterCommit), wakes the listeners of `channel`
   * in every process (PostgreSQL NOTIFY; in-process on SQLite). Coalesced: a channel is notified
   * at most once a tick, its payload the distinct keys published, comma-separated (`*` when they
   * do not fit). A hint to look, never the data itself.
   */
  publish(channel: string, key: string): void
}

export interface Db extends Executor {
  /** Prisma for the cold paths (admin, templates, listings). Both generated clients share this API. */
  readonly prisma: PrismaClient
  readonly url: string
  /**
   * Runs `fn` in one transaction: commit when it resolves, roll back when it throws; resolves
   * only once committed. Do no I/O but the executor's inside `fn`: on SQLite the connection is
   * held for the whole call. On SQLite (group commit) transactions queued behind each other share
   * one COMMIT, each in its own savepoint: one that throws still rolls back alone, but a COMMIT
   * that fails fails them all.
   */
  tx<T>(fn: (tx: Executor) => Promise<T>): Promise<T>
  /** Cross-process wake-ups: PostgreSQL LISTEN/NOTIFY; in-process only on SQLite. */
  notify(channel: string, payload: string): Promise<void>
  listen(channel: string, onMessage: (payload: string) => void): Promise<() => Promise<void>>
  close(): Promise<void>
}
