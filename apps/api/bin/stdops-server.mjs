#!/usr/bin/env node
// Runs the server's TypeScript sources directly (tsx): nothing to build before `pnpm start`.
import { register } from 'tsx/esm/api'

register()
await import('../src/cli.ts')
