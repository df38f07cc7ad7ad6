import {
  type Action,
  NotFoundError,
  PermissionDeniedError,
  type Role,
  roleAllows,
  type TaskState,
} from '@stdops/core'
import { sql } from '@stdops/db'
import type { Caller } from './auth'
import type { Deps } from './deps'

export type Scope = 'cmdb_biz' | 'project'
export interface ProjectRef {
  bk_biz_id: number
  scope: Scope
}
/** The project a request names, from its parsed params. */
export const refOf = (p: ProjectRef): ProjectRef => ({ bk_biz_id: p.bk_biz_id, scope: p.scope })

export interface Project {
  id: number
  name: string
  bkBizId: number
  /** As the caller named it, for messages. */
  ref: ProjectRef
  /** The caller's role here, if any. */
  role: Role | null
}

export { ACTIONS, type Action, ROLES, type Role } from '@stdops/core'

export interface TaskRef {
  id: number
  state: TaskState
  version: number
}

/**
 * The project the caller names, the caller's role in it and, when `taskId` is given, that task if
 * it is in this project: one round trip. Throws for a missing project; the task is null when it
 * is missing or belongs to another project (the two are answered alike).
 */
export async function resolveScope(
  deps: Deps,
  caller: Caller,
  ref: ProjectRef,
  taskId?: number,
): Promise<{ project: Project; task: TaskRef | null }> {
  // Ids beyond the INTEGER column's range name no row; asking would only make PostgreSQL refuse.
  const fits = (n: number) => n <= 2147483647
  const wantedTask = taskId !== undefined && fits(taskId) ? taskId : -1
  const rows = !fits(ref.bk_biz_id)
    ? []
    : await deps.db.query<{
        id: number
        name: string
        bk_biz_id: number
        role: string | null
        task_id: number | null
        state: TaskState | null
        version: number | null
      }>(
        sql`SELECT p.id, p.name, p.bk_biz_id, m.role, t.id AS task_id, t.state, t.version
            FROM projects p
            LEFT JOIN memberships m ON m.project_id = p.id AND m.user_id = ${caller.userId ?? -1}
            LEFT JOIN tasks t ON t.id = ${wantedTask} AND t.project_id = p.id
            WHERE ${ref.scope === 'project' ? sql`p.id = ${ref.bk_biz_id}` : sql`p.bk_biz_id = ${ref.bk_biz_id}`}`,
      )
  const row = rows[0]
  if (!row) throw new NotFoundError(`project(${ref.bk_biz_id}) with scope(${ref.scope}) does not exist.`)
  const project: Project = {
    id: row.id,
    name: row.name,
    bkBizId: row.bk_biz_id,
    ref,
    role: (row.role as Role | null) ?? null,
  }
  const task =
    row.task_id === null ? null : { id: Number(row.task_id), state: row.state!, version: Number(row.version) }
  return { project, task }
}

export async function resolveProject(deps: Deps, caller: Caller, ref: ProjectRef): Promise<Project> {
  return (await resolveScope(deps, caller, ref)).project
}

/** Trusted apps pass (bk-sops's app whitelist); everyone else needs a role in the project. */
export function authorize(caller: Caller, project: Project, ...actions: Action[]): void {
  if (caller.app.trusted) return
  for (const action of actions) {
    if (!roleAllows(project.role, action)) {
      throw new PermissionDeniedError(
        `permission denied: action ${action} on project(${project.ref.bk_biz_id}) for user ${caller.username}`,
      )
    }
  }
}
