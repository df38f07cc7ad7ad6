import { useId, useMemo, useState } from 'react'
import { useTranslation } from 'react-i18next'

/**
 * The form built from a template's constants (names, defaults, `show_type`), shared by the new
 * task page and the schedules page: a text field for a text constant, JSON for any other value.
 */

export interface ConstantDef {
  key: string
  name?: string
  value?: unknown
  show_type?: string
  source_type?: string
}

/** The constants a person fills in: shown ones, not computed from a node's outputs. */
export function formConstants(tree: unknown): { shown: ConstantDef[]; hidden: ConstantDef[] } {
  const all = Object.values(
    ((tree as { constants?: unknown } | null)?.constants ?? {}) as Record<string, ConstantDef>,
  )
  const input = all.filter((c) => c.source_type !== 'component_outputs')
  return {
    shown: input.filter((c) => c.show_type !== 'hide'),
    hidden: input.filter((c) => c.show_type === 'hide'),
  }
}

const isText = (c: ConstantDef) => typeof c.value === 'string' || c.value === undefined

function ConstantField({
  c,
  value,
  onChange,
}: {
  c: ConstantDef
  value: string
  onChange: (v: string) => void
}) {
  const id = useId()
  return (
    <div className="field">
      <label htmlFor={id}>
        {c.name || c.key} <code className="muted">{c.key}</code>
      </label>
      {isText(c) ? (
        <input id={id} value={value} onChange={(e) => onChange(e.target.value)} />
      ) : (
        <textarea id={id} value={value} rows={3} onChange={(e) => onChange(e.target.value)} />
      )}
    </div>
  )
}

export type Collected = { ok: true; constants: Record<string, unknown> } | { ok: false; message: string }

/** The form's state for one template tree: what was edited, and the constants to send. */
export function useConstantsForm(tree: unknown) {
  const { t } = useTranslation()
  const fields = useMemo(() => formConstants(tree ?? {}), [tree])
  const [values, setValues] = useState<Record<string, string>>({})
  const shownValue = (c: ConstantDef) =>
    values[c.key] ??
    (typeof c.value === 'string' ? c.value : c.value === undefined ? '' : JSON.stringify(c.value, null, 2))
  /** Only the edited constants (the others keep the template's values); JSON is checked here. */
  const collect = (): Collected => {
    const constants: Record<string, unknown> = {}
    for (const c of fields.shown) {
      const v = values[c.key]
      if (v === undefined) continue
      if (isText(c)) constants[c.key] = v
      else {
        try {
          constants[c.key] = JSON.parse(v)
        } catch {
          return { ok: false, message: t('newTask.invalidJson', { name: c.name || c.key }) }
        }
      }
    }
    return { ok: true, constants }
  }
  const reset = () => setValues({})
  const view = (
    <fieldset>
      <legend>{t('newTask.constants')}</legend>
      {fields.shown.length === 0 && <p>{t('newTask.noConstants')}</p>}
      {fields.shown.map((c) => (
        <ConstantField
          key={c.key}
          c={c}
          value={shownValue(c)}
          onChange={(v) => setValues((prev) => ({ ...prev, [c.key]: v }))}
        />
      ))}
      {fields.hidden.length > 0 && (
        <p className="muted">{t('newTask.hidden', { count: fields.hidden.length })}</p>
      )}
    </fieldset>
  )
  return { view, collect, reset }
}
