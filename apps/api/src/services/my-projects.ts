import { sql } from '@stdops/db'
import type { Caller } from './auth'
import type { Deps } from './deps'
import type { Role } from './projects'
import { HAS_FAILED_NODE } from './task-search'

export interface ProjectSummary {
  project_id: number
  bk_biz_id: number
  name: string
  role: Role
  /** tasks running with no failed node */
  running: number
  /** running tasks with a failed node waiting for an operator (displayed FAILED) */
  failed: number
  /** paused tasks */
  paused: number
}

/**
 * The projects the caller has a role in, each with the number of its tasks that are running,
 * failed (waiting for an operator) and paused. Only the caller's own memberships: a project
 * without one is not listed (an app's trust does not list every project).
 */
export async function myProjects(deps: Deps, caller: Caller): Promise<ProjectSummary[]> {
  if (caller.userId === null) return []
  const rows = await deps.db.query<{
    project_id: number
    bk_biz_id: number
    name: string
    role: Role
    running: number | string | null
    failed: number | string | null
    paused: number | string | null
  }>(sql`SELECT p.id AS project_id, p.bk_biz_id, p.name, m.role,
      c.running, c.failed, c.paused
    FROM memberships m JOIN projects p ON p.id = m.project_id
    LEFT JOIN (
      SELECT s.project_id,
        SUM(CASE WHEN s.state = 'RUNNING' AND s.has_failed = 0 THEN 1 ELSE 0 END) AS running,
        SUM(CASE WHEN s.state = 'RUNNING' AND s.has_failed = 1 THEN 1 ELSE 0 END) AS failed,
        SUM(CASE WHEN s.state = 'SUSPENDED' THEN 1 ELSE 0 END) AS paused
      FROM (SELECT t.project_id, t.state,
              CASE WHEN ${HAS_FAILED_NODE} THEN 1 ELSE 0 END AS has_failed
            FROM tasks t JOIN memberships mm ON mm.project_id = t.project_id AND mm.user_id = ${caller.userId}
            WHERE t.state IN ('RUNNING', 'SUSPENDED')) s
      GROUP BY s.project_id) c ON c.project_id = p.id
    WHERE m.user_id = ${caller.userId}
    ORDER BY p.bk_biz_id`)
  return rows.map((r) => ({
    project_id: Number(r.project_id),
    bk_biz_id: Number(r.bk_biz_id),
    name: r.name,
    role: r.role,
    running: Number(r.running ?? 0),
    failed: Number(r.failed ?? 0),
    paused: Number(r.paused ?? 0),
  }))
}
