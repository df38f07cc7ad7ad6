import { useQuery } from '@tanstack/react-query'
import { getRouteApi, Link, useNavigate } from '@tanstack/react-router'
import { useCallback, useMemo } from 'react'
import { useTranslation } from 'react-i18next'
import { PipelineCanvas } from '../components/canvas'
import { ErrorNote, JsonView, Loading } from '../components/common'
import { toDrawGraph } from '../lib/graph'
import { useTRPC } from '../trpc'

const route = getRouteApi('/projects/$bizId/templates/$templateId')

/** A template, read-only: the same canvas as a task's, its constants, and a way to run it. */
export function TemplatePage() {
  const { t } = useTranslation()
  const trpc = useTRPC()
  const { bizId, templateId } = route.useParams()
  const { node } = route.useSearch()
  const navigate = useNavigate({ from: '/projects/$bizId/templates/$templateId' })
  const template = useQuery(trpc.template.get.queryOptions({ bk_biz_id: bizId, template_id: templateId }))
  const tree = template.data?.pipeline_tree
  const graph = useMemo(() => (tree === undefined ? null : toDrawGraph(tree)), [tree])
  const select = useCallback((id: string) => void navigate({ search: { node: id } }), [navigate])
  if (template.isPending) return <Loading />
  if (template.error) return <ErrorNote error={template.error} onRetry={() => void template.refetch()} />
  const constants = Object.values(
    ((tree as { constants?: unknown }).constants ?? {}) as Record<
      string,
      { key: string; name?: string; value?: unknown; show_type?: string }
    >,
  )
  const selected = node ? graph?.byId.get(node) : undefined
  const data = node
    ? (tree as { activities?: Record<string, { component?: { data?: unknown } }> }).activities?.[node]
        ?.component?.data
    : undefined
  return (
    <div className="template-page">
      <div className="page-head">
        <h1>{template.data.name}</h1>
        <Link
          to="/projects/$bizId/templates/$templateId/new"
          params={{ bizId, templateId }}
          className="button primary"
        >
          {t('templates.newTask')}
        </Link>
      </div>
      {template.data.description && <p>{template.data.description}</p>}
      {graph && (
        <div className="task-body">
          <PipelineCanvas
            graph={graph}
            store={null}
            selected={node ?? null}
            onSelect={select}
            label={t('templates.canvas')}
          />
          {selected && (
            <aside className="node-panel" aria-label={t('node.panel')}>
              <div className="panel-head">
                <h2>{selected.name || t(`node.kinds.${selected.kind}`)}</h2>
                <Link
                  from="/projects/$bizId/templates/$templateId"
                  search={{}}
                  aria-label={t('node.close')}
                  className="icon"
                >
                  ×
                </Link>
              </div>
              <p>
                {t(`node.kinds.${selected.kind}`)} {selected.code && <code>{selected.code}</code>}
              </p>
              {data !== undefined && <JsonView value={data} label={t('node.inputs')} />}
            </aside>
          )}
        </div>
      )}
      <section aria-label={t('templates.constants')}>
        <h2>{t('templates.constants')}</h2>
        {constants.length === 0 ? (
          <p>{t('data.empty')}</p>
        ) : (
          <table className="table">
            <thead>
              <tr>
                <th scope="col">{t('data.key')}</th>
                <th scope="col">{t('common.name')}</th>
                <th scope="col">{t('data.value')}</th>
              </tr>
            </thead>
            <tbody>
              {constants.map((c) => (
                <tr key={c.key}>
                  <td>
                    <code>{c.key}</code>
                  </td>
                  <td>{c.name ?? ''}</td>
                  <td>
                    <code>{typeof c.value === 'string' ? c.value : JSON.stringify(c.value)}</code>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
    </div>
  )
}
