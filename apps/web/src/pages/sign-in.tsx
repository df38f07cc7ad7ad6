import { useMutation, useQueryClient } from '@tanstack/react-query'
import { getRouteApi, useNavigate } from '@tanstack/react-router'
import { type FormEvent, useId, useState } from 'react'
import { useTranslation } from 'react-i18next'
import { ErrorNote } from '../components/common'
import { useTRPC } from '../trpc'

const route = getRouteApi('/sign-in')

/** Only paths of this console are followed after signing in (no open redirect). */
function safeRedirect(target: string | undefined): string {
  if (!target || !target.startsWith('/') || target.startsWith('//') || target.startsWith('/sign-in'))
    return '/projects'
  return target
}

export function SignInPage() {
  const { t } = useTranslation()
  const trpc = useTRPC()
  const queryClient = useQueryClient()
  const navigate = useNavigate()
  const { redirect } = route.useSearch()
  const [token, setToken] = useState('')
  const id = useId()
  const signIn = useMutation(
    trpc.session.signIn.mutationOptions({
      onSuccess: async () => {
        await queryClient.invalidateQueries()
        await navigate({ href: safeRedirect(redirect), replace: true })
      },
    }),
  )
  const submit = (e: FormEvent) => {
    e.preventDefault()
    signIn.mutate({ token: token.trim() })
  }
  return (
    <div className="signin">
      <h1>{t('signIn.title')}</h1>
      <p>{t('signIn.intro')}</p>
      <form onSubmit={submit}>
        <label htmlFor={id}>{t('signIn.token')}</label>
        <input
          id={id}
          type="password"
          autoComplete="current-password"
          required
          value={token}
          onChange={(e) => setToken(e.target.value)}
        />
        <button type="submit" className="primary" disabled={signIn.isPending || token.trim() === ''}>
          {t('signIn.submit')}
        </button>
      </form>
      {signIn.error && (
        <div>
          <h2 className="visually-hidden">{t('signIn.failed')}</h2>
          <ErrorNote error={signIn.error} />
        </div>
      )}
    </div>
  )
}
