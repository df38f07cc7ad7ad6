/**
 * The probe of section 4 on its own, printed in full (every statement's text):
 *
 *   pnpm --filter @stdops/bench exec tsx src/hotpath.ts [sqlite|postgresql] [iterations]
 */
import type { Kind } from './lib/db'
import { probe } from './probe'
import { probeTables } from './report'

const kind = (process.argv[2] ?? 'sqlite') as Kind
const iterations = Number(process.argv[3] ?? 1000)

probe(kind, { iterations, concurrentSeconds: 3 }).then(
  (r) => {
    process.stdout.write(`${probeTables([r], true)}\n`)
    process.exit(0)
  },
  (err) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
    process.exit(1)
  },
)
