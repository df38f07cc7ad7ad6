import react from '@vitejs/plugin-react'
import { defineConfig } from 'vite'

/**
 * `pnpm dev`: Vite on :5173 with the API proxied to a running server (`pnpm start`, or
 * STDOPS_DEV_API). The console and the API then share one origin, as in production, so the
 * SameSite=Strict cookie and the event stream work unchanged.
 */
const api = process.env.STDOPS_DEV_API ?? 'http://127.0.0.1:8000'

export default defineConfig({
  plugins: [react()],
  server: {
    port: 5173,
    proxy: { '/trpc': { target: api, changeOrigin: false } },
  },
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: true, chunkSizeWarningLimit: 1500 },
})
