import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // The tests run the compiled server too (spawned processes; TEST_SERVER=dist): build it first.
    globalSetup: ['test/build.global.ts'],
    // Files run in parallel, each on its own database; the machine has 2 cores.
    maxWorkers: 2,
  },
})
