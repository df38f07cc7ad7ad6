import { useQuery } from '@tanstack/react-query'
import { getRouteApi, Link } from '@tanstack/react-router'
import { useTranslation } from 'react-i18next'
import { ErrorNote, Loading, Time } from '../components/common'
import { parseLegacyTime } from '../lib/time'
import { useTRPC } from '../trpc'

const route = getRouteApi('/projects/$bizId/templates')

export function TemplatesPage() {
  const { t } = useTranslation()
  const trpc = useTRPC()
  const { bizId } = route.useParams()
  const list = useQuery(trpc.template.list.queryOptions({ bk_biz_id: bizId }))
  if (list.isPending) return <Loading />
  if (list.error) return <ErrorNote error={list.error} onRetry={() => void list.refetch()} />
  return (
    <div>
      <h1>{t('templates.title')}</h1>
      {list.data.length === 0 ? (
        <p>{t('templates.empty')}</p>
      ) : (
        <table className="table">
          <thead>
            <tr>
              <th scope="col">{t('common.id')}</th>
              <th scope="col">{t('common.name')}</th>
              <th scope="col">{t('common.creator')}</th>
              <th scope="col">{t('common.edited')}</th>
              <th scope="col">
                <span className="visually-hidden">{t('common.actions')}</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {list.data.map((tp) => (
              <tr key={tp.id}>
                <td>{tp.id}</td>
                <th scope="row">
                  <Link
                    to="/projects/$bizId/templates/$templateId"
                    params={{ bizId, templateId: tp.id }}
                    aria-label={t('templates.view', { name: tp.name })}
                  >
                    {tp.name}
                  </Link>
                </th>
                <td>{tp.creator}</td>
                <td>
                  <Time ms={parseLegacyTime(tp.edit_time)} />
                </td>
                <td className="row-actions">
                  <Link
                    to="/projects/$bizId/templates/$templateId/new"
                    params={{ bizId, templateId: tp.id }}
                    aria-label={t('templates.newTaskFrom', { name: tp.name })}
                    className="button"
                  >
                    {t('templates.newTask')}
                  </Link>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  )
}
