import { createHash } from 'node:crypto'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { authHeader, esb, type Harness, type Identity, makeIdentity, startHarness, waitFor } from './harness'

const EXAMPLE = join(dirname(fileURLToPath(import.meta.url)), '..', 'examples', 'components', 'sha256.mjs')

/** start → sha256_text(${who}) → end, its digest kept in ${digest} and reported as a task output. */
const tree = {
  start_event: { id: 'n_start', type: 'EmptyStartEvent', incoming: [], outgoing: 'l1' },
  end_event: { id: 'n_end', type: 'EmptyEndEvent', incoming: ['l2'], outgoing: '' },
  activities: {
    n_hash: {
      id: 'n_hash',
      name: 'Hash',
      type: 'ServiceActivity',
      incoming: ['l1'],
      outgoing: 'l2',
      component: {
        code: 'sha256_text',
        data: { text: { hook: true, value: '${who}' }, rounds: { hook: false, value: 2 } },
      },
    },
  },
  gateways: {},
  flows: {
    l1: { id: 'l1', source: 'n_start', target: 'n_hash', is_default: false },
    l2: { id: 'l2', source: 'n_hash', target: 'n_end', is_default: false },
  },
  constants: {
    '${who}': { key: '${who}', name: 'who', value: 'world', source_type: 'custom' },
    '${digest}': {
      key: '${digest}',
      name: 'digest',
      value: '',
      source_type: 'component_outputs',
      source_info: { n_hash: ['digest'] },
    },
  },
  outputs: ['${digest}'],
}

let h: Harness
let id: Identity
beforeAll(async () => {
  h = await startHarness({ env: { STDOPS_COMPONENTS: EXAMPLE } })
  id = await makeIdentity(h.deps)
})
afterAll(async () => {
  await h.close()
})

describe('a deployment registers its own components through STDOPS_COMPONENTS', () => {
  it('runs the example component in a task and reports its output', async () => {
    const headers = authHeader(id)
    const tpl = await esb(h.url, 'create_template', {
      headers,
      body: { bk_biz_id: id.bkBizId, name: 'hash', pipeline_tree: tree },
    })
    expect(tpl.body).toMatchObject({ result: true })
    const templateId = (tpl.body.data as { template_id: number }).template_id
    const created = await esb(h.url, 'create_and_start_task', {
      headers,
      body: { bk_biz_id: id.bkBizId, template_id: templateId, name: 'hash it', constants: { who: 'stdops' } },
    })
    expect(created.body).toMatchObject({ result: true })
    const taskId = (created.body.data as { task_id: number }).task_id
    const detail = await waitFor(async () => {
      const r = await esb(h.url, 'get_task_detail', {
        headers,
        query: { bk_biz_id: id.bkBizId, task_id: taskId },
      })
      const d = r.body.data as { state: string; outputs: Record<string, unknown> }
      return d.state === 'FINISHED' ? d : undefined
    })
    const once = createHash('sha256').update('stdops').digest('hex')
    expect(detail.outputs).toEqual([
      { key: '${digest}', name: 'digest', value: createHash('sha256').update(once).digest('hex') },
    ])
  })

  it('refuses a tree that names a component nobody registered', async () => {
    const bad = structuredClone(tree)
    bad.activities.n_hash.component.code = 'not_registered_anywhere'
    const r = await esb(h.url, 'create_template', {
      headers: authHeader(id),
      body: { bk_biz_id: id.bkBizId, name: 'bad', pipeline_tree: bad },
    })
    expect(r.body).toMatchObject({ result: false, code: 3540000 })
    expect(r.body.message).toContain('not_registered_anywhere')
  })
})
