import { useMutation, useQuery } from '@tanstack/react-query'
import { getRouteApi, useNavigate } from '@tanstack/react-router'
import { type FormEvent, useId, useMemo, useState } from 'react'
import { useTranslation } from 'react-i18next'
import { useApp } from '../app-context'
import { ErrorNote, Loading } from '../components/common'
import { useTRPC } from '../trpc'

const route = getRouteApi('/projects/$bizId/templates/$templateId/new')

interface ConstantDef {
  key: string
  name?: string
  value?: unknown
  show_type?: string
  source_type?: string
}

/** The constants a person fills in: shown ones, not computed from a node's outputs. */
export function formConstants(tree: unknown): { shown: ConstantDef[]; hidden: ConstantDef[] } {
  const all = Object.values(
    ((tree as { constants?: unknown }).constants ?? {}) as Record<string, ConstantDef>,
  )
  const input = all.filter((c) => c.source_type !== 'component_outputs')
  return {
    shown: input.filter((c) => c.show_type !== 'hide'),
    hidden: input.filter((c) => c.show_type === 'hide'),
  }
}

const stamp = (d: Date) =>
  `${d.getFullYear()}${String(d.getMonth() + 1).padStart(2, '0')}${String(d.getDate()).padStart(2, '0')}${String(
    d.getHours(),
  ).padStart(2, '0')}${String(d.getMinutes()).padStart(2, '0')}${String(d.getSeconds()).padStart(2, '0')}`

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
  const text = typeof c.value === 'string' || c.value === undefined
  return (
    <div className="field">
      <label htmlFor={id}>
        {c.name || c.key} <code className="muted">{c.key}</code>
      </label>
      {text ? (
        <input id={id} value={value} onChange={(e) => onChange(e.target.value)} />
      ) : (
        <textarea id={id} value={value} rows={3} onChange={(e) => onChange(e.target.value)} />
      )}
    </div>
  )
}

/** A form built from the template's constants (names, defaults, show_type): create a task, and start it. */
export function NewTaskPage() {
  const { t } = useTranslation()
  const trpc = useTRPC()
  const { client } = useApp()
  const navigate = useNavigate()
  const { bizId, templateId } = route.useParams()
  const template = useQuery(trpc.template.get.queryOptions({ bk_biz_id: bizId, template_id: templateId }))
  const fields = useMemo(
    () => formConstants(template.data?.pipeline_tree ?? {}),
    [template.data?.pipeline_tree],
  )
  const [name, setName] = useState<string | null>(null)
  const [values, setValues] = useState<Record<string, string>>({})
  const [invalid, setInvalid] = useState<string | null>(null)
  const nameId = useId()
  const create = useMutation({
    mutationFn: async ({ start, constants }: { start: boolean; constants: Record<string, unknown> }) => {
      const created = await client.task.create.mutate({
        bk_biz_id: bizId,
        template_id: templateId,
        name: (name ?? `${template.data?.name ?? 'task'}_${stamp(new Date())}`).trim(),
        constants,
      })
      if (start) await client.task.start.mutate({ bk_biz_id: bizId, task_id: created.task_id })
      return created.task_id
    },
    onSuccess: (taskId) => void navigate({ to: '/projects/$bizId/tasks/$taskId', params: { bizId, taskId } }),
  })
  if (template.isPending) return <Loading />
  if (template.error) return <ErrorNote error={template.error} onRetry={() => void template.refetch()} />
  const shownValue = (c: ConstantDef) =>
    values[c.key] ??
    (typeof c.value === 'string' ? c.value : c.value === undefined ? '' : JSON.stringify(c.value, null, 2))
  const submit = (start: boolean) => (e?: FormEvent) => {
    e?.preventDefault()
    setInvalid(null)
    const constants: Record<string, unknown> = {}
    for (const c of fields.shown) {
      if (values[c.key] === undefined) continue
      if (typeof c.value === 'string' || c.value === undefined) constants[c.key] = values[c.key]
      else {
        try {
          constants[c.key] = JSON.parse(values[c.key]!)
        } catch {
          setInvalid(t('newTask.invalidJson', { name: c.name || c.key }))
          return
        }
      }
    }
    create.mutate({ start, constants })
  }
  const defaultName = `${template.data.name}_${stamp(new Date())}`
  return (
    <div className="new-task">
      <h1>{t('newTask.title', { name: template.data.name })}</h1>
      <form onSubmit={submit(true)}>
        <div className="field">
          <label htmlFor={nameId}>{t('newTask.name')}</label>
          <input
            id={nameId}
            required
            maxLength={100}
            value={name ?? defaultName}
            onChange={(e) => setName(e.target.value)}
          />
        </div>
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
        {invalid && (
          <p role="alert" className="error-note">
            {invalid}
          </p>
        )}
        <div className="form-actions">
          <button type="button" disabled={create.isPending} onClick={() => submit(false)()}>
            {t('newTask.create')}
          </button>
          <button type="submit" className="primary" disabled={create.isPending}>
            {t('newTask.createAndStart')}
          </button>
        </div>
        <ErrorNote error={create.error} />
      </form>
    </div>
  )
}
