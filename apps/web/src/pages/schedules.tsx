import { useTranslation } from 'react-i18next'

export function SchedulesPage() {
  const { t } = useTranslation()
  return (
    <div>
      <h1>{t('schedules.title')}</h1>
      <p>{t('schedules.missing')}</p>
    </div>
  )
}
