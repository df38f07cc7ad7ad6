import { describe, expect, it } from 'vitest'
import type { z } from 'zod'
import {
  CreateTaskParamsSchema,
  CreateTemplateParamsSchema,
  formatZodError,
  GetTaskListParamsSchema,
  GetTaskOperateRecordParamsSchema,
  GetTasksStatusParamsSchema,
  GetTemplateListParamsSchema,
  IdSchema,
  OperateTaskParamsSchema,
} from '../src/index'

/** The sentence a failed parse gives, or the parsed value. */
function parse<S extends z.ZodType>(schema: S, input: unknown) {
  const result = schema.safeParse(input)
  return result.success
    ? { ok: true as const, value: result.data }
    : { ok: false as const, message: formatZodError(result.error) }
}

describe('IdSchema', () => {
  it.each([
    [1, 1],
    ['1', 1],
    ['42', 42],
    [2 ** 53 - 1, 2 ** 53 - 1],
    [String(2 ** 53 - 1), 2 ** 53 - 1],
  ])('accepts %j as %j', (input, expected) => {
    expect(IdSchema.parse(input)).toBe(expected)
  })

  it.each([
    '0',
    '-1',
    '1.5',
    '1e3',
    ' 1',
    '1 ',
    '01',
    '',
    '0x10',
    String(2 ** 53),
    '99999999999999999999',
    0,
    -1,
    1.5,
    2 ** 53,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    true,
    null,
    [1],
    { id: 1 },
  ])('rejects %j', (input) => {
    expect(parse(IdSchema, input)).toEqual({
      ok: false,
      message: 'invalid param: must be a positive integer',
    })
  })

  it('reports a missing id as required', () => {
    expect(parse(OperateTaskParamsSchema, { bk_biz_id: 1 })).toEqual({
      ok: false,
      message: 'invalid param: task_id: is required',
    })
  })
})

describe('common fields', () => {
  it('defaults scope to cmdb_biz and drops unknown keys such as credentials', () => {
    const result = parse(OperateTaskParamsSchema, {
      bk_biz_id: '2',
      task_id: 3,
      action: 'start',
      bk_app_code: 'app',
      bk_app_secret: 's',
    })
    expect(result).toEqual({
      ok: true,
      value: { bk_biz_id: 2, scope: 'cmdb_biz', task_id: 3, action: 'start' },
    })
  })

  it('accepts scope project and refuses any other scope', () => {
    expect(parse(GetTemplateListParamsSchema, { bk_biz_id: 1, scope: 'project' })).toEqual({
      ok: true,
      value: { bk_biz_id: 1, scope: 'project', template_source: 'project' },
    })
    expect(parse(GetTemplateListParamsSchema, { bk_biz_id: 1, scope: 'biz' })).toEqual({
      ok: false,
      message: 'invalid param: scope: must be cmdb_biz or project',
    })
  })

  it('requires bk_biz_id', () => {
    expect(parse(GetTemplateListParamsSchema, {})).toEqual({
      ok: false,
      message: 'invalid param: bk_biz_id: is required',
    })
  })
})

describe('operate_task params', () => {
  it('leaves a missing or unknown action to transitionTask', () => {
    expect(parse(OperateTaskParamsSchema, { bk_biz_id: 1, task_id: 1 })).toMatchObject({ ok: true })
    expect(parse(OperateTaskParamsSchema, { bk_biz_id: 1, task_id: 1, action: 'explode' })).toMatchObject({
      ok: true,
    })
  })
})

describe('create_task params', () => {
  const base = { bk_biz_id: 1, template_id: '7', name: 'deploy' }

  it('accepts the optional fields', () => {
    const input = {
      ...base,
      constants: { '${x}': 1 },
      pipeline_tree: { start_event: {} },
      description: 'd',
      callback_url: 'https://example.com/cb',
    }
    expect(parse(CreateTaskParamsSchema, input)).toEqual({
      ok: true,
      value: { ...input, template_id: 7, scope: 'cmdb_biz', template_source: 'project' },
    })
  })

  it.each([
    [{ name: '' }, 'invalid param: name: must not be empty'],
    [{ name: 'x'.repeat(101) }, 'invalid param: name: must be at most 100 characters'],
    [{ name: 5 }, 'invalid param: name: must be a string'],
    [{ name: undefined }, 'invalid param: name: is required'],
    [{ constants: [1] }, 'invalid param: constants: must be an object'],
    [{ pipeline_tree: 'tree' }, 'invalid param: pipeline_tree: must be an object'],
    [{ callback_url: 'ftp://example.com' }, 'invalid param: callback_url: must be an http(s) URL'],
    [{ callback_url: 'http://' }, 'invalid param: callback_url: must be an http(s) URL'],
  ])('refuses %j', (change, message) => {
    expect(parse(CreateTaskParamsSchema, { ...base, ...change })).toEqual({ ok: false, message })
  })

  it('accepts a name of exactly 100 characters', () => {
    expect(parse(CreateTaskParamsSchema, { ...base, name: 'x'.repeat(100) })).toMatchObject({ ok: true })
  })
})

describe('get_tasks_status params', () => {
  it('answers an empty list with an empty list (bk-sops does), so it is accepted', () => {
    expect(parse(GetTasksStatusParamsSchema, { bk_biz_id: 1, task_id_list: [] })).toMatchObject({ ok: true })
  })

  it('accepts 1 to 50 ids', () => {
    expect(
      parse(GetTasksStatusParamsSchema, {
        bk_biz_id: 1,
        task_id_list: ['1', 2],
        include_children_status: true,
      }),
    ).toEqual({
      ok: true,
      value: { bk_biz_id: 1, scope: 'cmdb_biz', task_id_list: [1, 2], include_children_status: true },
    })
  })

  it.each([
    [Array.from({ length: 51 }, (_, i) => i + 1), 'invalid param: task_id_list: must have at most 50 ids'],
    [[1, 'x'], 'invalid param: task_id_list.1: must be a positive integer'],
    ['1,2', 'invalid param: task_id_list: must be a list of task ids'],
  ])('refuses %j', (list, message) => {
    expect(parse(GetTasksStatusParamsSchema, { bk_biz_id: 1, task_id_list: list })).toEqual({
      ok: false,
      message,
    })
  })
})

describe('get_task_list params', () => {
  it('cuts a limit above 200 to 200, keeps 0, and reads True/False and ISO 8601 times', () => {
    expect(
      parse(GetTaskListParamsSchema, {
        bk_biz_id: 1,
        limit: '201',
        is_started: 'True',
        is_finished: 'False',
        create_time_end: '2024-01-01T00:00:00Z',
      }),
    ).toMatchObject({ ok: true, value: { limit: 200, is_started: true, is_finished: false } })
    expect(parse(GetTaskListParamsSchema, { bk_biz_id: 1, limit: 0 })).toMatchObject({
      ok: true,
      value: { limit: 0 },
    })
  })

  it('defaults offset 0 and limit 100', () => {
    expect(parse(GetTaskListParamsSchema, { bk_biz_id: '1' })).toEqual({
      ok: true,
      value: { bk_biz_id: 1, scope: 'cmdb_biz', offset: 0, limit: 100 },
    })
  })

  it('reads numbers and booleans from query strings', () => {
    const query = {
      bk_biz_id: '1',
      offset: '20',
      limit: '200',
      is_started: 'true',
      is_finished: '0',
      template_id: '5',
      keyword: 'deploy',
      executor: 'admin',
      create_time_start: '2024-01-01 00:00:00',
      create_time_end: '2024-01-31',
    }
    expect(parse(GetTaskListParamsSchema, query)).toEqual({
      ok: true,
      value: {
        ...query,
        bk_biz_id: 1,
        scope: 'cmdb_biz',
        offset: 20,
        limit: 200,
        is_started: true,
        is_finished: false,
        template_id: 5,
      },
    })
  })

  it.each([
    [{ limit: '-1' }, 'invalid param: limit: must be an integer from 0 to 9007199254740991'],
    [{ limit: 'ten' }, 'invalid param: limit: must be an integer from 0 to 9007199254740991'],
    [{ offset: '-1' }, 'invalid param: offset: must be an integer from 0 to 9007199254740991'],
    [{ is_started: 'yes' }, 'invalid param: is_started: must be true or false'],
    [
      { create_time_start: '2024-13-01' },
      'invalid param: create_time_start: must be a time as YYYY-MM-DD HH:MM:SS (optionally with a UTC offset such as +0800), ISO 8601 or YYYY-MM-DD',
    ],
    [
      { create_time_end: '2024-01-01T25:00:00Z' },
      'invalid param: create_time_end: must be a time as YYYY-MM-DD HH:MM:SS (optionally with a UTC offset such as +0800), ISO 8601 or YYYY-MM-DD',
    ],
  ])('refuses %j', (change, message) => {
    expect(parse(GetTaskListParamsSchema, { bk_biz_id: 1, ...change })).toEqual({ ok: false, message })
  })
})

describe('other params', () => {
  it('takes an optional node_id for operate records', () => {
    expect(
      parse(GetTaskOperateRecordParamsSchema, { bk_biz_id: 1, task_id: 2, node_id: 'n1' }),
    ).toMatchObject({
      ok: true,
      value: { node_id: 'n1' },
    })
  })

  it('requires a pipeline tree object for create_template', () => {
    expect(parse(CreateTemplateParamsSchema, { bk_biz_id: 1, name: 't' })).toEqual({
      ok: false,
      message: 'invalid param: pipeline_tree: is required',
    })
  })
})

describe('formatZodError', () => {
  it('names the first failing field only', () => {
    expect(parse(CreateTaskParamsSchema, { bk_biz_id: 0, template_id: 'x' })).toEqual({
      ok: false,
      message: 'invalid param: bk_biz_id: must be a positive integer',
    })
  })
})
