import {
  DISPLAYED_TASK_STATES,
  type DisplayedTaskState,
  type TaskFilter,
  type TaskSearchParams,
} from '@stdops/core'
import { type Db, join, type Sql, sql } from '@stdops/db'
import type { Caller } from './auth'
import type { Deps } from './deps'
import { authorize, type ProjectRef, resolveProject } from './projects'
import { openWaker } from './wake'

/**
 * The console's task list: one page of a project's tasks with their displayed state, the number
 * that match, and how many match in each state (the other filters applied), so that the state
 * filter's buttons can show their counts.
 */

/**
 * A task's displayed state in SQL (over `tasks t`): FAILED while the task runs and a node waits after failing,
 * otherwise its own state (as the status tree displays it).
 */
export const HAS_FAILED_NODE = sql`EXISTS (SELECT 1 FROM node_states n WHERE n.task_id = t.id AND n.state = 'FAILED')`
const DISPLAYED = sql`(CASE WHEN t.state = 'RUNNING' AND ${HAS_FAILED_NODE} THEN 'FAILED' ELSE t.state END)`

export interface TaskRow {
  id: number
  name: string
  state: DisplayedTaskState
  creator: string
  executor: string
  template_id: number | null
  template_name: string | null
  /** epoch ms */
  created_at: number
  started_at: number | null
  finished_at: number | null
}

export type StateCounts = Record<DisplayedTaskState, number>

const MAX_INT = 2147483647

/** The WHERE conditions of a filter, the state filter aside. */
function conditions(db: Db, projectId: number, f: TaskFilter): Sql[] {
  const conds: Sql[] = [sql`t.project_id = ${projectId}`]
  if (f.template_id !== undefined)
    conds.push(sql`t.template_id = ${f.template_id > MAX_INT ? -1 : f.template_id}`)
  if (f.creator !== undefined) conds.push(sql`t.creator = ${f.creator}`)
  if (f.executor !== undefined) conds.push(sql`t.executor = ${f.executor}`)
  if (f.created_after !== undefined) conds.push(sql`t.created_at >= ${f.created_after}`)
  if (f.created_before !== undefined) conds.push(sql`t.created_at <= ${f.created_before}`)
  const text = f.text?.trim()
  if (text) {
    // A literal, case-insensitive part of the name (no LIKE wildcards), or the id itself.
    const contains =
      db.provider === 'postgresql'
        ? sql`strpos(lower(t.name), lower(${text})) > 0`
        : sql`instr(lower(t.name), lower(${text})) > 0`
    const id = /^\d{1,10}$/.test(text) && Number(text) <= MAX_INT ? Number(text) : null
    conds.push(id === null ? contains : sql`(${contains} OR t.id = ${id})`)
  }
  return conds
}

const stateCondition = (states: readonly DisplayedTaskState[]) => sql`${DISPLAYED} IN (${join(states)})`

export function emptyCounts(): StateCounts {
  return Object.fromEntries(DISPLAYED_TASK_STATES.map((s) => [s, 0])) as StateCounts
}

/** How many tasks match `f` in each displayed state (the state filter itself ignored). */
export async function countByState(deps: Deps, projectId: number, f: TaskFilter): Promise<StateCounts> {
  const rows = await deps.db.query<{ state: DisplayedTaskState; n: number | string }>(
    sql`SELECT ${DISPLAYED} AS state, COUNT(*) AS n FROM tasks t WHERE ${join(conditions(deps.db, projectId, f), ' AND ')}
        GROUP BY 1`,
  )
  const counts = emptyCounts()
  for (const r of rows) if (r.state in counts) counts[r.state] = Number(r.n)
  return counts
}

interface RawRow {
  id: number
  name: string
  state: DisplayedTaskState
  creator: string
  executor: string
  template_id: number | null
  template_name: string | null
  created_at: number | string
  started_at: number | string | null
  finished_at: number | string | null
}

const ms = (v: number | string | null) => (v === null ? null : Number(v))
const toRow = (r: RawRow): TaskRow => ({
  id: Number(r.id),
  name: r.name,
  state: r.state,
  creator: r.creator,
  executor: r.executor,
  template_id: r.template_id === null ? null : Number(r.template_id),
  template_name: r.template_name,
  created_at: Number(r.created_at),
  started_at: ms(r.started_at),
  finished_at: ms(r.finished_at),
})

const SELECT_ROWS = sql`SELECT t.id, t.name, ${DISPLAYED} AS state, t.creator, t.executor, t.template_id,
  tp.name AS template_name, t.created_at, t.started_at, t.finished_at
  FROM tasks t LEFT JOIN templates tp ON tp.id = t.template_id`

export async function searchTasks(deps: Deps, caller: Caller, ref: ProjectRef, p: TaskSearchParams) {
  const project = await resolveProject(deps, caller, ref)
  authorize(caller, project, 'project_view')
  const conds = conditions(deps.db, project.id, p)
  const filtered = p.states && p.states.length > 0 ? [...conds, stateCondition(p.states)] : conds
  const where = join(filtered, ' AND ')
  const [rows, [total], counts] = await Promise.all([
    deps.db.query<RawRow>(
      sql`${SELECT_ROWS} WHERE ${where} ORDER BY t.id DESC LIMIT ${p.limit} OFFSET ${p.offset}`,
    ),
    deps.db.query<{ n: number | string }>(sql`SELECT COUNT(*) AS n FROM tasks t WHERE ${where}`),
    countByState(deps, project.id, p),
  ])
  return { list: rows.map(toRow), count: Number(total?.n ?? 0), counts }
}

/** The rows of these tasks of the project (missing ids are left out). */
export async function taskRows(deps: Deps, projectId: number, ids: readonly number[]): Promise<TaskRow[]> {
  const wanted = ids.filter((id) => id <= MAX_INT)
  if (wanted.length === 0) return []
  const rows = await deps.db.query<RawRow>(
    sql`${SELECT_ROWS} WHERE t.project_id = ${projectId} AND t.id IN (${join(wanted)})`,
  )
  return rows.map(toRow)
}

export type TaskChange =
  /** the current rows of the followed tasks that changed (all of them in the first message) */
  | { type: 'rows'; rows: TaskRow[] }
  /** the per-state counts of the search, when they changed (first message: the current counts) */
  | { type: 'counts'; counts: StateCounts }

/**
 * Follows a page of tasks and the counts of its search, for a list that stays current without
 * asking again: yields the rows that changed and the counts when they change. Every message is a
 * current snapshot (never a delta), so a client that reconnects simply gets the current state
 * first. Cheap while nothing happens: one indexed `MAX(id)` of the event log per poll; the rows
 * are read again only after an event committed anywhere, and the counts at most every
 * `countsEveryMs`.
 */
export async function* followTaskChanges(
  deps: Deps,
  caller: Caller,
  ref: ProjectRef,
  p: TaskFilter & { task_ids: number[] },
  signal: AbortSignal | undefined,
  opts: { pollMs?: number; countsEveryMs?: number } = {},
): AsyncGenerator<TaskChange, void, undefined> {
  const project = await resolveProject(deps, caller, ref)
  authorize(caller, project, 'project_view')
  const countsEveryMs = opts.countsEveryMs ?? 1000
  // Like the task event stream: ends when the server stops, counted in flight until it has.
  signal = signal ? AbortSignal.any([signal, deps.lifecycle.closing]) : deps.lifecycle.closing
  const leave = deps.lifecycle.enter()
  const waker = await openWaker(deps, signal, opts.pollMs ?? 150, { projectId: project.id })
  const sent = new Map<number, string>()
  let sentCounts = ''
  let marker: number | null = null
  let countsDue = true
  let countedAt = 0
  try {
    while (!signal?.aborted) {
      const [latest] = await deps.db.query<{ m: number | string | null }>(
        sql`SELECT MAX(id) AS m FROM task_events`,
      )
      const now = Number(latest?.m ?? 0)
      if (now !== marker) {
        const first = marker === null
        marker = now
        countsDue = true
        const changed = (await taskRows(deps, project.id, p.task_ids)).filter((row) => {
          const print = `${row.state}|${row.started_at}|${row.finished_at}`
          if (sent.get(row.id) === print) return false
          sent.set(row.id, print)
          return true
        })
        if (first || changed.length > 0) yield { type: 'rows', rows: changed }
      }
      if (countsDue && Date.now() - countedAt >= countsEveryMs) {
        countsDue = false
        countedAt = Date.now()
        const counts = await countByState(deps, project.id, p)
        const print = JSON.stringify(counts)
        if (print !== sentCounts) {
          sentCounts = print
          yield { type: 'counts', counts }
        }
      }
      await waker.sleep()
    }
  } finally {
    await waker.close()
    leave()
  }
}
