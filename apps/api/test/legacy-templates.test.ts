import { createTreeBuilder } from '@stdops/core/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  expectParamInvalid,
  LEGACY_TIME,
  type LegacyClient,
  legacyClient,
  ok,
  quickTree,
  rowCounts,
  sleepTree,
} from './fixtures'
import { type Harness, makeIdentity, startHarness } from './harness'

describe('create_template, get_template_list, get_template_info', () => {
  let h: Harness
  let c: LegacyClient

  beforeAll(async () => {
    h = await startHarness({ worker: false })
    c = legacyClient(h, await makeIdentity(h.deps, { role: 'admin' }))
  })
  afterAll(async () => {
    await h?.close()
  })

  it('create_template answers {template_id, template_name, pipeline_template_id} and get_template_info gives back the tree as it was sent', async () => {
    const { tree } = sleepTree('5')
    const data = ok(
      await c.post('create_template', { name: 'deploy', pipeline_tree: tree, description: 'ships it' }),
    )
    expect(Object.keys(data).sort()).toEqual(['pipeline_template_id', 'template_id', 'template_name'])
    expect(data.template_name).toBe('deploy')
    const templateId = data.template_id as number
    expect(Number.isInteger(templateId)).toBe(true)

    const info = ok(await c.get('get_template_info', { template_id: templateId }))
    expect(info).toMatchObject({ id: templateId, name: 'deploy', creator: c.id.username })
    // the editor's drawing keys (location, line) and every extra key survive
    expect(info.pipeline_tree).toEqual(tree)
    expect(info.create_time).toMatch(LEGACY_TIME)
    expect(info.edit_time).toMatch(LEGACY_TIME)
    const row = await h.deps.db.prisma.template.findUniqueOrThrow({ where: { id: templateId } })
    expect(row.description).toBe('ships it')
    expect(row.projectId).toBe(c.id.projectId)
  })

  it('get_template_info accepts the id as a string of digits', async () => {
    const templateId = ok<{ template_id: number }>(
      await c.post('create_template', { name: 'by string', pipeline_tree: quickTree().tree }),
    ).template_id
    expect(ok(await c.get('get_template_info', { template_id: String(templateId) })).id).toBe(templateId)
  })

  it("get_template_list lists the project's templates with id, name, creator, create_time, edit_time, and no other project's", async () => {
    const own = legacyClient(h, await makeIdentity(h.deps, { role: 'admin' }))
    const other = legacyClient(h, await makeIdentity(h.deps, { role: 'admin' }))
    const ids: number[] = []
    for (const name of ['first', 'second', 'third']) {
      ids.push(
        ok(await own.post('create_template', { name, pipeline_tree: quickTree().tree }))
          .template_id as number,
      )
    }
    ok(await other.post('create_template', { name: 'elsewhere', pipeline_tree: quickTree().tree }))
    const list = ok<Array<Record<string, unknown>>>(await own.get('get_template_list'))
    expect(list.map((t) => t.id).sort()).toEqual([...ids].sort())
    for (const t of list) {
      expect(t).toMatchObject({ creator: own.id.username })
      expect(Object.keys(t)).toEqual(
        expect.arrayContaining(['id', 'name', 'creator', 'create_time', 'edit_time']),
      )
      expect(t.create_time).toMatch(LEGACY_TIME)
      expect(t.edit_time).toMatch(LEGACY_TIME)
    }
    expect(list.map((t) => t.name).sort()).toEqual(['first', 'second', 'third'])
  })

  it('get_template_list of a project without templates is an empty list', async () => {
    const empty = legacyClient(h, await makeIdentity(h.deps, { role: 'viewer' }))
    expect(ok(await empty.get('get_template_list'))).toEqual([])
  })

  it('a name of 1 and of 100 characters is accepted, and unicode is kept as sent', async () => {
    for (const name of ['x', 'n'.repeat(100), '部署 🚀 «prod» \'quoted\' "double"']) {
      const templateId = ok<{ template_id: number }>(
        await c.post('create_template', { name, pipeline_tree: quickTree().tree }),
      ).template_id
      expect(ok(await c.get('get_template_info', { template_id: templateId })).name).toBe(name)
    }
  })

  describe('refusals write no template', () => {
    let before: Awaited<ReturnType<typeof rowCounts>>
    const refuse = async (body: Record<string, unknown>, field: string | RegExp) => {
      before = await rowCounts(h)
      expectParamInvalid(await c.post('create_template', body), field)
      expect(await rowCounts(h)).toEqual(before)
    }

    it('an empty or too long name, or one that is not a string', async () => {
      const tree = quickTree().tree
      await refuse({ name: '', pipeline_tree: tree }, /name/)
      await refuse({ name: 'n'.repeat(101), pipeline_tree: tree }, /name: must be at most 100 characters/)
      await refuse({ name: 42, pipeline_tree: tree }, /name/)
      await refuse({ name: null, pipeline_tree: tree }, /name/)
    })

    it('a missing pipeline_tree, or one that is not an object', async () => {
      await refuse({ name: 'x' }, /pipeline_tree: is required/)
      for (const pipeline_tree of ['{}', [], 1, null, true])
        await refuse({ name: 'x', pipeline_tree }, /pipeline_tree/)
    })

    it('an empty pipeline tree names what is missing', async () => {
      await refuse({ name: 'x', pipeline_tree: {} }, /^invalid pipeline_tree: .*start_event/)
    })

    it('an unknown component code names the activity and the code', async () => {
      const b = createTreeBuilder()
      const act = b.activity('no_such_component')
      b.chain(b.startId, act, b.endId)
      await refuse(
        { name: 'x', pipeline_tree: b.build() },
        `invalid pipeline_tree: activity ${act} uses unknown component no_such_component`,
      )
    })

    it('an input that references an undefined constant names it', async () => {
      const b = createTreeBuilder()
      const act = b.activity('sleep_timer', { data: { bk_timing: { hook: true, value: '${nope}' } } })
      b.chain(b.startId, act, b.endId)
      await refuse({ name: 'x', pipeline_tree: b.build() }, /^invalid pipeline_tree: .*\$\{nope\}/)
    })

    it('an activity without an outgoing flow names the degree rule', async () => {
      const b = createTreeBuilder()
      const act = b.activity('set_variables', { data: { variables: { hook: false, value: {} } } })
      const dangling = b.activity('set_variables', { data: { variables: { hook: false, value: {} } } })
      b.chain(b.startId, act, b.endId)
      b.flow(act, dangling)
      await refuse({ name: 'x', pipeline_tree: b.build() }, /^invalid pipeline_tree: .*(outgoing|incoming)/)
    })

    it('constants that reference each other in a cycle', async () => {
      const b = createTreeBuilder()
      b.constant('a', '${b}')
      b.constant('b', '${a}')
      const act = b.activity('set_variables', { data: { variables: { hook: false, value: { x: '${a}' } } } })
      b.chain(b.startId, act, b.endId)
      await refuse({ name: 'x', pipeline_tree: b.build() }, /^invalid pipeline_tree: .*(cycle|\$\{a\})/i)
    })

    it('get_template_info with a bad or missing template_id', async () => {
      expectParamInvalid(await c.get('get_template_info', { template_id: 'abc' }), 'template_id')
      expectParamInvalid(await c.get('get_template_info', { template_id: '0' }), 'template_id')
      expectParamInvalid(await c.get('get_template_info'), /template_id: is required/)
    })
  })

  it('get_template_info of a template that does not exist answers 3540400 naming it', async () => {
    const reply = await c.get('get_template_info', { template_id: 2 ** 53 - 1 })
    expect(reply.body).toMatchObject({
      result: false,
      code: 3540400,
      message: `template[id=${2 ** 53 - 1}] does not exist in project(${c.id.bkBizId})`,
    })
  })
})
