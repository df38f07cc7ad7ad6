/** A user's role in a project, least to most. */
export const ROLES = ['viewer', 'operator', 'admin'] as const
export type Role = (typeof ROLES)[number]

/** bk-sops's IAM actions, and the least role that holds each. */
export const ACTIONS = {
  task_view: 'viewer',
  project_view: 'viewer',
  create_task: 'operator',
  task_operate: 'operator',
  template_edit: 'admin',
} as const satisfies Record<string, Role>
export type Action = keyof typeof ACTIONS

/** Whether `role` (null: none in the project) holds `action`. The API's permission check, and the console's. */
export function roleAllows(role: string | null | undefined, action: Action): boolean {
  if (!role) return false
  const rank = (r: string) => ROLES.indexOf(r as Role)
  return rank(role) >= 0 && rank(role) >= rank(ACTIONS[action])
}
