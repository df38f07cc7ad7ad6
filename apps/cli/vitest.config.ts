import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // The tests run the built CLI (dist/stdops.mjs): build it once before any file runs.
    globalSetup: ['test/build.global.ts'],
    maxWorkers: 2,
  },
})
