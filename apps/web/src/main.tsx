import '@xyflow/react/dist/style.css'
import './styles.css'
import { MutationCache, QueryCache, QueryClient, QueryClientProvider } from '@tanstack/react-query'
import { RouterProvider } from '@tanstack/react-router'
import { StrictMode } from 'react'
import { createRoot } from 'react-dom/client'
import { AppContext } from './app-context'
import { setUpI18n } from './i18n'
import { createConnection } from './lib/connection'
import { makeRouter } from './router'
import { createClient, refusalOf, TRPCProvider } from './trpc'

setUpI18n()

const client = createClient()
let queryClient: QueryClient
const connection = createConnection({
  probe: async () => (await fetch('/healthz', { cache: 'no-store' })).ok,
  onRecovered: () => void queryClient.invalidateQueries(),
})

/** A call that got no answer means the server is out of reach; any answer means it is back. */
const watchCall = {
  onError: (err: unknown) => {
    if (refusalOf(err).network) connection.offline('network')
  },
  onSuccess: () => connection.online('network'),
}

queryClient = new QueryClient({
  queryCache: new QueryCache(watchCall),
  mutationCache: new MutationCache(watchCall),
  defaultOptions: {
    queries: {
      staleTime: 5_000,
      // A refusal will not change by asking again; only a call that got no answer is retried.
      retry: (count, err) => refusalOf(err).network && count < 2,
    },
  },
})

const router = makeRouter(queryClient)

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <AppContext.Provider value={{ client, connection }}>
      <QueryClientProvider client={queryClient}>
        <TRPCProvider trpcClient={client} queryClient={queryClient}>
          <RouterProvider router={router} />
        </TRPCProvider>
      </QueryClientProvider>
    </AppContext.Provider>
  </StrictMode>,
)
