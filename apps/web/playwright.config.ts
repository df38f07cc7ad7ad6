import { defineConfig } from '@playwright/test'

/**
 * The console's browser tests: Debian's Chromium (never a downloaded browser), one worker (the
 * machine has two cores and the tests share one real server per worker), a real `pnpm start`
 * server on a temporary database (see e2e/server.ts).
 */
export default defineConfig({
  testDir: 'e2e',
  globalSetup: './e2e/global-setup.ts',
  workers: 1,
  fullyParallel: false,
  timeout: 90_000,
  expect: { timeout: 20_000 },
  retries: 0,
  reporter: [['list'], ['json', { outputFile: 'test-results/results.json' }]],
  use: {
    viewport: { width: 1440, height: 900 },
    screenshot: 'only-on-failure',
    trace: 'retain-on-failure',
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      // The flags of a quiet, headless Chromium in CI: no sandbox (CI runs as root), no GPU, no
      // QUIC, and none of the browser's own calls home (first-run, updates, sync, background
      // networking), which would only compete for the two cores.
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--disable-dev-shm-usage',
        '--disable-default-apps',
        '--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication',
      ],
    },
  },
})
