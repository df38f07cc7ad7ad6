import { Link } from '@tanstack/react-router'
import { useTranslation } from 'react-i18next'

export function NotFoundPage() {
  const { t } = useTranslation()
  return (
    <div>
      <p role="alert">{t('app.notFound')}</p>
      <Link to="/projects">{t('app.home')}</Link>
    </div>
  )
}
