import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { Link, Outlet, useNavigate, useRouterState } from '@tanstack/react-router'
import { useEffect } from 'react'
import { useTranslation } from 'react-i18next'
import { useApp } from '../app-context'
import { LANGUAGES } from '../i18n'
import { utcPreference } from '../lib/prefs'
import { useStoreValue } from '../lib/value-store'
import { refusalOf, useTRPC } from '../trpc'
import { ErrorNote, Loading } from './common'

/** Who is signed in (null while unknown or signed out), for pages that check roles. */
export function useSession() {
  const trpc = useTRPC()
  return useQuery({ ...trpc.session.me.queryOptions(), staleTime: 60_000 })
}

/** The user's role in the project with this bk_biz_id (null: none). */
export function useRole(bizId: number) {
  const me = useSession().data
  return me?.roles.find((r) => r.bk_biz_id === bizId)?.role ?? null
}

function OfflineBanner() {
  const { t } = useTranslation()
  const { connection } = useApp()
  const online = useStoreValue(connection.state, (s) => s.online)
  if (online) return null
  return (
    <output className="offline" aria-live="polite">
      {t('connection.offline')}
    </output>
  )
}

function Preferences() {
  const { t, i18n } = useTranslation()
  const utc = useStoreValue(utcPreference, (v) => v)
  return (
    <div className="prefs">
      <label>
        <span className="visually-hidden">{t('prefs.language')}</span>
        <select
          aria-label={t('prefs.language')}
          value={i18n.resolvedLanguage ?? 'en'}
          onChange={(e) => void i18n.changeLanguage(e.target.value)}
        >
          {LANGUAGES.map((l) => (
            <option key={l.code} value={l.code} lang={l.code}>
              {l.label}
            </option>
          ))}
        </select>
      </label>
      <label className="check">
        <input type="checkbox" checked={utc} onChange={(e) => utcPreference.set(e.target.checked)} />
        {t('prefs.utc')}
      </label>
    </div>
  )
}

function ProjectNav({ bizId }: { bizId: number }) {
  const { t } = useTranslation()
  const params = { bizId }
  return (
    <>
      <Link to="/projects/$bizId/tasks" params={params} activeProps={{ 'aria-current': 'page' }}>
        {t('nav.tasks')}
      </Link>
      <Link to="/projects/$bizId/templates" params={params} activeProps={{ 'aria-current': 'page' }}>
        {t('nav.templates')}
      </Link>
      <Link to="/projects/$bizId/schedules" params={params} activeProps={{ 'aria-current': 'page' }}>
        {t('nav.schedules')}
      </Link>
    </>
  )
}

/**
 * The frame of every page: navigation, language and time-zone switches, the user and sign-out,
 * and the offline notice. Signed-out visitors are sent to the sign-in page (and back after).
 */
export function Shell() {
  const { t } = useTranslation()
  const trpc = useTRPC()
  const queryClient = useQueryClient()
  const navigate = useNavigate()
  const location = useRouterState({ select: (s) => s.location })
  const bizId = useRouterState({
    select: (s) => {
      const match = s.matches.find((m) => 'bizId' in (m.params as object))
      return match ? (match.params as { bizId: number }).bizId : null
    },
  })
  const onSignIn = location.pathname === '/sign-in'
  const session = useSession()
  const signedOut = session.error !== null && refusalOf(session.error).unauthorized
  useEffect(() => {
    if (signedOut && !onSignIn)
      void navigate({ to: '/sign-in', search: { redirect: location.href }, replace: true })
  }, [signedOut, onSignIn, navigate, location.href])
  const signOut = useMutation(
    trpc.session.signOut.mutationOptions({
      onSuccess: () => {
        queryClient.clear()
        void navigate({ to: '/sign-in' })
      },
    }),
  )
  useEffect(() => {
    document.title = t('app.title')
  }, [t])

  return (
    <div className="app">
      <a className="skip" href="#main">
        {t('app.skipToContent')}
      </a>
      <header className="topbar">
        <Link to="/projects" className="brand">
          stdops
        </Link>
        {session.data && (
          <nav aria-label={t('app.mainNav')} className="mainnav">
            <Link to="/projects" activeOptions={{ exact: true }} activeProps={{ 'aria-current': 'page' }}>
              {t('nav.projects')}
            </Link>
            {bizId !== null && (
              <>
                <span className="crumb">{t('nav.project', { bizId })}</span>
                <ProjectNav bizId={bizId} />
              </>
            )}
          </nav>
        )}
        <div className="spacer" />
        <Preferences />
        {session.data && (
          <div className="user">
            <span>{t('prefs.signedInAs', { user: session.data.username })}</span>
            <button type="button" onClick={() => signOut.mutate()} disabled={signOut.isPending}>
              {t('prefs.signOut')}
            </button>
          </div>
        )}
      </header>
      <OfflineBanner />
      <main id="main" tabIndex={-1}>
        {onSignIn || session.data ? (
          <Outlet />
        ) : session.isPending ? (
          <Loading />
        ) : signedOut ? null : (
          <ErrorNote error={session.error} onRetry={() => void session.refetch()} />
        )}
      </main>
    </div>
  )
}
