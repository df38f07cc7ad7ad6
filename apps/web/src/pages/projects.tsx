import { useQuery } from '@tanstack/react-query'
import { Link } from '@tanstack/react-router'
import { useTranslation } from 'react-i18next'
import { ErrorNote, Loading } from '../components/common'
import { useTRPC } from '../trpc'

/** The user's projects, each with its running, failed and paused tasks (each a filtered link). */
export function ProjectsPage() {
  const { t } = useTranslation()
  const trpc = useTRPC()
  const projects = useQuery(trpc.console.projects.queryOptions())
  if (projects.isPending) return <Loading />
  if (projects.error) return <ErrorNote error={projects.error} onRetry={() => void projects.refetch()} />
  return (
    <div>
      <h1>{t('projects.title')}</h1>
      {projects.data.length === 0 ? (
        <p>{t('projects.empty')}</p>
      ) : (
        <table className="table">
          <thead>
            <tr>
              <th scope="col">{t('common.name')}</th>
              <th scope="col">{t('projects.bizId')}</th>
              <th scope="col">{t('common.role')}</th>
              <th scope="col">{t('projects.running')}</th>
              <th scope="col">{t('projects.failed')}</th>
              <th scope="col">{t('projects.paused')}</th>
              <th scope="col">
                <span className="visually-hidden">{t('common.actions')}</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {projects.data.map((p) => {
              const params = { bizId: p.bk_biz_id }
              const count = (n: number, what: string, states: Array<'RUNNING' | 'FAILED' | 'SUSPENDED'>) => (
                <Link
                  to="/projects/$bizId/tasks"
                  params={params}
                  search={{ states }}
                  aria-label={t('projects.countLink', { count: n, what, name: p.name })}
                  className={n > 0 ? `count count-${states[0]}` : 'count'}
                >
                  {n}
                </Link>
              )
              return (
                <tr key={p.project_id}>
                  <th scope="row">
                    <Link to="/projects/$bizId/tasks" params={params}>
                      {p.name}
                    </Link>
                  </th>
                  <td>{p.bk_biz_id}</td>
                  <td>{p.role}</td>
                  <td>{count(p.running, t('projects.running'), ['RUNNING'])}</td>
                  <td>{count(p.failed, t('projects.failed'), ['FAILED'])}</td>
                  <td>{count(p.paused, t('projects.paused'), ['SUSPENDED'])}</td>
                  <td className="row-actions">
                    <Link to="/projects/$bizId/templates" params={params}>
                      {t('projects.templatesOf')}
                    </Link>
                  </td>
                </tr>
              )
            })}
          </tbody>
        </table>
      )}
    </div>
  )
}
