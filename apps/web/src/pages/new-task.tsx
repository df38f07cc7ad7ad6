import { useMutation, useQuery } from '@tanstack/react-query'
import { getRouteApi, useNavigate } from '@tanstack/react-router'
import { type FormEvent, useId, useState } from 'react'
import { useTranslation } from 'react-i18next'
import { useApp } from '../app-context'
import { ErrorNote, Loading } from '../components/common'
import { useConstantsForm } from '../components/constants-form'
import { useTRPC } from '../trpc'

const route = getRouteApi('/projects/$bizId/templates/$templateId/new')

const stamp = (d: Date) =>
  `${d.getFullYear()}${String(d.getMonth() + 1).padStart(2, '0')}${String(d.getDate()).padStart(2, '0')}${String(
    d.getHours(),
  ).padStart(2, '0')}${String(d.getMinutes()).padStart(2, '0')}${String(d.getSeconds()).padStart(2, '0')}`

/** A form built from the template's constants (names, defaults, show_type): create a task, and start it. */
export function NewTaskPage() {
  const { t } = useTranslation()
  const trpc = useTRPC()
  const { client } = useApp()
  const navigate = useNavigate()
  const { bizId, templateId } = route.useParams()
  const template = useQuery(trpc.template.get.queryOptions({ bk_biz_id: bizId, template_id: templateId }))
  const form = useConstantsForm(template.data?.pipeline_tree)
  const [name, setName] = useState<string | null>(null)
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
  const submit = (start: boolean) => (e?: FormEvent) => {
    e?.preventDefault()
    setInvalid(null)
    const collected = form.collect()
    if (!collected.ok) return setInvalid(collected.message)
    create.mutate({ start, constants: collected.constants })
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
        {form.view}
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
