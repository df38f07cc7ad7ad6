import { defineConfig } from 'tsup'

/**
 * One file, dist/stdops.mjs. tsup leaves the package's dependencies (@trpc/client, commander,
 * eventsource, picocolors) as imports and bundles the rest; `@stdops/api` is imported for its
 * types only and leaves nothing behind.
 */
export default defineConfig({
  entry: { stdops: 'src/main.ts' },
  format: ['esm'],
  platform: 'node',
  target: 'node20',
  outDir: 'dist',
  outExtension: () => ({ js: '.mjs' }),
  clean: true,
  splitting: false,
  sourcemap: false,
  dts: false,
  banner: { js: '#!/usr/bin/env node' },
})
