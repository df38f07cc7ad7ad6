import { addApp, addProject, addUser, grant } from './services/admin'
import type { Deps } from './services/deps'
import { createTemplate } from './services/templates'

export const DEMO_TREE = {
  start_event: { id: 'n_start', type: 'EmptyStartEvent', incoming: [], outgoing: 'l1' },
  end_event: { id: 'n_end', type: 'EmptyEndEvent', incoming: ['l3'], outgoing: '' },
  activities: {
    n_greet: {
      id: 'n_greet',
      name: 'Greet',
      type: 'ServiceActivity',
      incoming: ['l1'],
      outgoing: 'l2',
      component: {
        code: 'set_variables',
        data: { variables: { hook: false, value: { greeting: 'hello ${who}' } } },
      },
    },
    n_wait: {
      id: 'n_wait',
      name: 'Wait a moment',
      type: 'ServiceActivity',
      incoming: ['l2'],
      outgoing: 'l3',
      component: { code: 'sleep_timer', data: { bk_timing: { hook: true, value: '${wait_seconds}' } } },
    },
  },
  gateways: {},
  flows: {
    l1: { id: 'l1', source: 'n_start', target: 'n_greet', is_default: false },
    l2: { id: 'l2', source: 'n_greet', target: 'n_wait', is_default: false },
    l3: { id: 'l3', source: 'n_wait', target: 'n_end', is_default: false },
  },
  constants: {
    '${who}': {
      key: '${who}',
      name: 'Who to greet',
      value: 'world',
      source_type: 'custom',
      show_type: 'show',
    },
    '${wait_seconds}': {
      key: '${wait_seconds}',
      name: 'Seconds to wait',
      value: '5',
      source_type: 'custom',
      show_type: 'show',
    },
  },
  outputs: ['${who}'],
}

/**
 * On an empty database: a demo app, a user with a token, a project (bk_biz_id 2) and a template,
 * so that a first `pnpm start` can be tried at once. Returns what to print, or null when the
 * database already had apps.
 */
export async function bootstrapDemo(deps: Deps, port: number) {
  if ((await deps.db.prisma.app.count()) > 0) return null
  const app = await addApp(deps, 'demo', { userSkip: false })
  const user = await addUser(deps, 'admin', {})
  const project = await addProject(deps, 'Demo project', 2)
  await grant(deps, 'admin', project.id, 'admin')
  const caller = {
    app: { id: 0, code: 'demo', trusted: false },
    username: 'admin',
    userId: (await deps.db.prisma.user.findUniqueOrThrow({ where: { username: 'admin' } })).id,
  }
  const { template_id } = await createTemplate(
    deps,
    caller,
    { bk_biz_id: 2, scope: 'cmdb_biz' },
    { name: 'Demo: greet and wait', pipeline_tree: DEMO_TREE },
  )
  const auth = JSON.stringify({ bk_app_code: 'demo', bk_app_secret: app.secret, bk_token: user.token })
  const body = JSON.stringify({
    bk_biz_id: 2,
    template_id,
    name: 'my first task',
    constants: { who: 'stdops' },
  })
  return [
    'stdops: created demo data (shown once; secrets are stored only as hashes):',
    `  app code:   demo`,
    `  app secret: ${app.secret}`,
    `  user:       admin (role admin in project bk_biz_id 2, id ${project.id})`,
    `  bk_token:   ${user.token}`,
    `  template:   ${template_id}`,
    'Create and start a task:',
    `  curl -s -X POST http://127.0.0.1:${port}/v2/sops/create_and_start_task/ -H 'X-Bkapi-Authorization: ${auth}' -d '${body}'`,
    'Then watch it (replace TASK_ID):',
    `  curl -s -H 'X-Bkapi-Authorization: ${auth}' 'http://127.0.0.1:${port}/v2/sops/get_task_status/?bk_biz_id=2&task_id=TASK_ID'`,
  ].join('\n')
}
