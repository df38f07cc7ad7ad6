import { NotFoundError, PermissionDeniedError } from '@stdops/core'
import { sql } from '@stdops/db'
import type { Caller } from './auth'
import type { Deps } from './deps'

export type Scope = 'cmdb_biz' | 'project'
export interface ProjectRef {
  bk_biz_id: number
  scope: Scope
}
export interface Project {
  id: number
  name: string
  bkBizId: number
  /** As the caller named it, for messages. */
  ref: ProjectRef
}

export const ROLES = ['viewer', 'operator', 'admin'] as const
export type Role = (typeof ROLES)[number]

/** bk-sops's IAM actions, and the least role that holds each (esb-api.md §6). */
export const ACTIONS = {
  task_view: 'viewer',
  project_view: 'viewer',
  create_task: 'operator',
  task_operate: 'operator',
  template_edit: 'admin',
} as const satisfies Record<string, Role>
export type Action = keyof typeof ACTIONS

const rank = (r: string) => ROLES.indexOf(r as Role)

export async function resolveProject(deps: Deps, ref: ProjectRef): Promise<Project> {
  // Ids beyond the INTEGER column's range name no row; asking would only make PostgreSQL refuse.
  const rows =
    ref.bk_biz_id > 2147483647
      ? []
      : await deps.db.query<{ id: number; name: string; bk_biz_id: number }>(
          ref.scope === 'project'
            ? sql`SELECT id, name, bk_biz_id FROM projects WHERE id = ${ref.bk_biz_id}`
            : sql`SELECT id, name, bk_biz_id FROM projects WHERE bk_biz_id = ${ref.bk_biz_id}`,
        )
  const row = rows[0]
  if (!row) throw new NotFoundError(`project(${ref.bk_biz_id}) with scope(${ref.scope}) does not exist.`)
  return { id: row.id, name: row.name, bkBizId: row.bk_biz_id, ref }
}

/** Trusted apps pass (bk-sops's app whitelist); everyone else needs a role in the project. */
export async function authorize(deps: Deps, caller: Caller, project: Project, ...actions: Action[]): Promise<void> {
  if (caller.app.trusted) return
  const [m] =
    caller.userId === null
      ? []
      : await deps.db.query<{ role: string }>(
          sql`SELECT role FROM memberships WHERE project_id = ${project.id} AND user_id = ${caller.userId}`,
        )
  for (const action of actions) {
    if (!m || rank(m.role) < rank(ACTIONS[action])) {
      throw new PermissionDeniedError(
        `permission denied: action ${action} on project(${project.ref.bk_biz_id}) for user ${caller.username}`,
      )
    }
  }
}
