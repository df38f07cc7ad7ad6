import { roleAllows } from '@stdops/core'
import { sql } from '@stdops/db'
import type { Caller } from './auth'
import type { Deps } from './deps'
import { type ProjectRef, resolveProject } from './projects'

/**
 * bk-sops's project APIs: the projects where the caller's user has a role, and one project's
 * detail. They need authentication only (bk-sops's project list is the user's own).
 */

export async function userProjects(deps: Deps, caller: Caller) {
  if (caller.userId === null) return []
  const rows = await deps.db.query<{ project_id: number; bk_biz_id: number; name: string }>(
    sql`SELECT p.id AS project_id, p.bk_biz_id, p.name FROM memberships m JOIN projects p ON p.id = m.project_id
        WHERE m.user_id = ${caller.userId} ORDER BY p.id`,
  )
  return rows.map((r) => ({ project_id: Number(r.project_id), bk_biz_id: Number(r.bk_biz_id), name: r.name }))
}

/** bk-sops's IAM action names a role holds in a project (the app's trust holds them all). */
function projectActions(caller: Caller, role: string | null): string[] {
  const can = (a: Parameters<typeof roleAllows>[1]) => caller.app.trusted || roleAllows(role, a)
  return [
    ...(can('project_view') ? ['project_view'] : []),
    ...(can('template_edit') ? ['project_edit'] : []),
    ...(can('create_task') ? ['project_fast_create_task'] : []),
  ]
}

export async function userProjectDetail(deps: Deps, caller: Caller, ref: ProjectRef) {
  const project = await resolveProject(deps, caller, ref)
  return {
    project_id: project.id,
    project_name: project.name,
    bk_biz_id: project.bkBizId,
    from_cmdb: true,
    bk_biz_name: project.name,
    bk_biz_developer: '',
    bk_biz_maintainer: '',
    bk_biz_tester: '',
    bk_biz_productor: '',
    auth_actions: projectActions(caller, project.role),
  }
}
