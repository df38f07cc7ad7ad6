import { createContext, useContext } from 'react'
import type { Connection } from './lib/connection'
import type { Client } from './trpc'

export interface AppServices {
  client: Client
  connection: Connection
}

export const AppContext = createContext<AppServices | null>(null)

export function useApp(): AppServices {
  const app = useContext(AppContext)
  if (!app) throw new Error('useApp outside the app')
  return app
}
