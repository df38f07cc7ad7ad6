import { describe, expect, it } from 'vitest'
import { en } from './en'
import { zhCN } from './zh-CN'

const keys = (o: object, prefix = ''): string[] =>
  Object.entries(o).flatMap(([k, v]) =>
    typeof v === 'object' ? keys(v as object, `${prefix}${k}.`) : [`${prefix}${k}`],
  )
const placeholders = (s: string) => [...s.matchAll(/\{\{(\w+)\}\}/g)].map((m) => m[1]).sort()
const at = (o: object, path: string) =>
  path.split('.').reduce<unknown>((v, k) => (v as Record<string, unknown>)[k], o) as string

describe('the message catalogue', () => {
  it('has every English key in Simplified Chinese, with the same placeholders', () => {
    expect(keys(zhCN).sort()).toEqual(keys(en).sort())
    for (const k of keys(en)) expect(placeholders(at(zhCN, k)), k).toEqual(placeholders(at(en, k)))
  })

  it('has no empty message', () => {
    for (const k of keys(en)) {
      expect(at(en, k).trim(), k).not.toBe('')
      expect(at(zhCN, k).trim(), k).not.toBe('')
    }
  })
})
