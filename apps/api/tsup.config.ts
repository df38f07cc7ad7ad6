import { cpSync, rmSync } from 'node:fs'
import { defineConfig } from 'tsup'

/**
 * The production build: the server compiled to JavaScript in dist/, so that nothing compiles
 * TypeScript at run time.
 *
 * - dist/cli.mjs: the server's command line (`bin/stdops-server.mjs` runs it).
 * - dist/library.mjs: the same server as a library (createRuntime, createServer …), for an
 *   in-process host: the integration tests load it with TEST_SERVER=dist.
 * - dist/tracing.mjs: starts trace export when configured; the bin loads it before the server,
 *   so that the instrumented modules are patched before anything imports them.
 *
 * The workspace packages (@stdops/core, db, engine) are TypeScript sources and are bundled in;
 * every other package stays an import, resolved at run time from this package's node_modules,
 * which is why this package declares the database drivers and Prisma's runtime that
 * @stdops/db uses. The committed migrations are copied beside the bundle (dist/prisma): the
 * server applies them at start.
 */
export default defineConfig({
  entry: { cli: 'src/cli.ts', library: 'src/library.ts', tracing: 'src/tracing-main.ts' },
  format: ['esm'],
  platform: 'node',
  target: 'node20',
  outDir: 'dist',
  outExtension: () => ({ js: '.mjs' }),
  clean: true,
  splitting: true,
  sourcemap: true,
  dts: false,
  skipNodeModulesBundle: true,
  removeNodeProtocol: false,
  noExternal: [/^@stdops\//],
  async onSuccess() {
    rmSync('dist/prisma', { recursive: true, force: true })
    for (const provider of ['sqlite', 'postgresql']) {
      cpSync(`../../packages/db/prisma/${provider}/migrations`, `dist/prisma/${provider}/migrations`, {
        recursive: true,
      })
    }
  },
})
