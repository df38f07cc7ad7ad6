/**
 * What a node costs the database: the statements each node transaction runs, counted by wrapping
 * the Db the engine is given (every statement of a transaction, BEGIN and COMMIT included).
 */
import { linearTree } from '@stdops/core/testing'
import type { Db, Executor, Sql } from '@stdops/db'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Engine } from '../src/index'
import { createHarness, type Harness, insertTask, operate, PROVIDER, states, waitForState } from './helpers'

/** The statements of one transaction, BEGIN and COMMIT included. */
type Transaction = string[]

const text = (q: Sql) => q.compile(PROVIDER).text.replace(/\s+/g, ' ').trim()

/** `db`, with every committed transaction's statements appended to `log` (statements outside one as a transaction of their own). */
function counting(db: Db, log: Transaction[]): Db {
  const wrap = (e: Executor, into: () => string[]): Executor => ({
    provider: e.provider,
    query: (q) => {
      into().push(text(q))
      return e.query(q)
    },
    execute: (q) => {
      into().push(text(q))
      return e.execute(q)
    },
    afterCommit: (fn) => e.afterCommit(fn),
    publish: (channel, key) => e.publish(channel, key),
  })
  const single = (): string[] => {
    const one: string[] = []
    log.push(one)
    return one
  }
  const base = wrap(db, single)
  return {
    ...db,
    query: base.query,
    execute: base.execute,
    tx: async (fn) => {
      let statements: string[] = []
      const result = await db.tx((tx) => {
        // A transaction tried again counts its last try only.
        statements = ['BEGIN']
        return fn(wrap(tx, () => statements))
      })
      log.push([...statements, 'COMMIT'])
      return result
    },
  }
}

let h: Harness
let engine: Engine
const log: Transaction[] = []

beforeAll(async () => {
  h = await createHarness()
  engine = await h.engine({ db: counting(h.db, log) })
})
afterAll(async () => {
  await h?.close()
})

describe('statements per node', () => {
  it('a linear node: its completion and its successor start are one transaction; on PostgreSQL of at most 6 statements', async () => {
    const N = 20
    const id = await insertTask(h.db, linearTree(N, 'noop'))
    await operate(engine, id, 'start')
    log.length = 0
    await waitForState(h.db, id, 'FINISHED')
    const s = await states(h.db, id)
    expect(Object.values(s).filter((x) => x === 'FINISHED')).toHaveLength(N + 2)
    // A node transaction writes node rows: the first activity's start, then each completion
    // with the start of the next activity (the last one finishes the task).
    const nodeTx = log.filter(
      (t) => t[0] === 'BEGIN' && t.some((q) => /\bnode_states\b/.test(q) && /INSERT/.test(q)),
    )
    expect(nodeTx).toHaveLength(N + 1)
    if (PROVIDER === 'postgresql') {
      const sizes = nodeTx.map((t) => t.length)
      expect(Math.max(...sizes)).toBeLessThanOrEqual(6)
      // Everything the run cost, claims and autocommit statements included, per node.
      const all = log.reduce((n, t) => n + t.length, 0)
      expect(all / N).toBeLessThanOrEqual(6)
    }
  })
})
