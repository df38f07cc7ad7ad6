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

const activity = (
  id: string,
  name: string,
  incoming: string,
  outgoing: string,
  code: string,
  data: Record<string, { hook: boolean; value: unknown }>,
) => ({ id, name, type: 'ServiceActivity', incoming: [incoming], outgoing, component: { code, data } })
const flow = (id: string, source: string, target: string) => ({ id, source, target, is_default: false })

/**
 * The console's showcase: an approval point, a node that fails (to retry, skip or force through
 * from the node panel), and a parallel lane beside them, joined by a converge gateway.
 */
export const DEMO_APPROVAL_TREE = {
  start_event: { id: 'n_start', type: 'EmptyStartEvent', incoming: [], outgoing: 'f1' },
  end_event: { id: 'n_end', type: 'EmptyEndEvent', incoming: ['f9'], outgoing: '' },
  activities: {
    n_prepare: activity('n_prepare', 'Prepare', 'f1', 'f2', 'set_variables', {
      variables: { hook: false, value: { target: '${target}' } },
    }),
    n_approve: activity('n_approve', 'Approve the change', 'f3', 'f5', 'pause_node', {
      description: { hook: false, value: 'Approve the change to ${target}' },
    }),
    n_apply: activity('n_apply', 'Apply the change', 'f5', 'f6', 'fail', {
      message: { hook: true, value: '${fail_message}' },
    }),
    n_check: activity('n_check', 'Health check', 'f4', 'f7', 'sleep_timer', {
      bk_timing: { hook: false, value: '2' },
    }),
    n_report: activity('n_report', 'Report', 'f8', 'f9', 'set_variables', {
      variables: { hook: false, value: { report: '${target} done' } },
    }),
  },
  gateways: {
    g_fork: {
      id: 'g_fork',
      name: '',
      type: 'ParallelGateway',
      incoming: ['f2'],
      outgoing: ['f3', 'f4'],
      converge_gateway_id: 'g_join',
    },
    g_join: { id: 'g_join', name: '', type: 'ConvergeGateway', incoming: ['f6', 'f7'], outgoing: ['f8'] },
  },
  flows: {
    f1: flow('f1', 'n_start', 'n_prepare'),
    f2: flow('f2', 'n_prepare', 'g_fork'),
    f3: flow('f3', 'g_fork', 'n_approve'),
    f4: flow('f4', 'g_fork', 'n_check'),
    f5: flow('f5', 'n_approve', 'n_apply'),
    f6: flow('f6', 'n_apply', 'g_join'),
    f7: flow('f7', 'n_check', 'g_join'),
    f8: flow('f8', 'g_join', 'n_report'),
    f9: flow('f9', 'n_report', 'n_end'),
  },
  constants: {
    '${target}': {
      key: '${target}',
      name: 'Target',
      value: 'web-01',
      source_type: 'custom',
      show_type: 'show',
    },
    '${fail_message}': {
      key: '${fail_message}',
      name: 'Error the apply step fails with',
      value: 'apply failed: disk full on ${target}',
      source_type: 'custom',
      show_type: 'show',
    },
  },
  outputs: ['${target}'],
}

/**
 * On an empty database: a demo app, a user with a token, a project (bk_biz_id 2) and a template,
 * so that a first `pnpm start` can be tried at once. Returns what to print, or null when the
 * database already had apps.
 */
export async function bootstrapDemo(deps: Deps, port: number, consoleUrl: string | null = null) {
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
  const approval = await createTemplate(
    deps,
    caller,
    { bk_biz_id: 2, scope: 'cmdb_biz' },
    { name: 'Demo: approve, then a failing step', pipeline_tree: DEMO_APPROVAL_TREE },
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
    `  templates:  ${template_id} (greet and wait), ${approval.template_id} (approve, then a failing step)`,
    'Create and start a task:',
    `  curl -s -X POST http://127.0.0.1:${port}/v2/sops/create_and_start_task/ -H 'X-Bkapi-Authorization: ${auth}' -d '${body}'`,
    'Then watch it (replace TASK_ID):',
    `  curl -s -H 'X-Bkapi-Authorization: ${auth}' 'http://127.0.0.1:${port}/v2/sops/get_task_status/?bk_biz_id=2&task_id=TASK_ID'`,
    ...(consoleUrl
      ? [
          `Web console: ${consoleUrl}`,
          `  sign in with the bk_token above (${user.token}), then open project 2 and start a task from a template`,
        ]
      : []),
  ].join('\n')
}
