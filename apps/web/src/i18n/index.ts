import i18next from 'i18next'
import LanguageDetector from 'i18next-browser-languagedetector'
import { initReactI18next } from 'react-i18next'
import { en } from './en'
import { zhCN } from './zh-CN'

export const LANGUAGES = [
  { code: 'en', label: 'English' },
  { code: 'zh-CN', label: '简体中文' },
] as const
export type Language = (typeof LANGUAGES)[number]['code']

declare module 'i18next' {
  interface CustomTypeOptions {
    defaultNS: 'translation'
    resources: { translation: typeof en }
  }
}

/**
 * One catalogue per language; the language is the user's choice (kept in localStorage) or else
 * the browser's, any Chinese variant reading Simplified Chinese (bk-sops's users read it first).
 */
export function setUpI18n() {
  if (i18next.isInitialized) return i18next
  void i18next
    .use(LanguageDetector)
    .use(initReactI18next)
    .init({
      resources: { en: { translation: en }, 'zh-CN': { translation: zhCN } },
      supportedLngs: ['en', 'zh-CN'],
      fallbackLng: 'en',
      interpolation: { escapeValue: false }, // React escapes
      detection: {
        order: ['localStorage', 'navigator'],
        lookupLocalStorage: 'stdops.language',
        caches: ['localStorage'],
        convertDetectedLanguage: (lng: string) => (lng.toLowerCase().startsWith('zh') ? 'zh-CN' : 'en'),
      },
      returnNull: false,
    })
  i18next.on('languageChanged', (lng) => {
    document.documentElement.lang = lng
  })
  document.documentElement.lang = i18next.language
  return i18next
}
