/**
 * The floor of the control path: a bare Fastify 5 route that performs the same single
 * compare-and-set on the task row that an operate_task call ends in, with the raw driver, on the
 * same database (better-sqlite3 with stdops's own pragmas; a pg Pool of stdops's default size with a
 * prepared statement). No authentication, no event, no record: what is left is HTTP + one statement.
 *
 * Run by the bench as a child process: DATABASE_URL, PORT.
 */
import { openSqlite } from '@stdops/db'
import Fastify from 'fastify'
import pg from 'pg'

const url = process.env.DATABASE_URL ?? ''
const port = Number(process.env.PORT ?? 0)
const CAS_PG = 'UPDATE tasks SET state = $1, version = version + 1 WHERE id = $2 AND version = $3'
const CAS_SQLITE = 'UPDATE tasks SET state = ?, version = version + 1 WHERE id = ? AND version = ?'

type Cas = (state: string, id: number, version: number) => Promise<number> | number

let cas: Cas
let close: () => Promise<void>
if (url.startsWith('file:')) {
  // better-sqlite3 with SQLITE_PRAGMAS, exactly as stdops opens its own connection.
  const conn = openSqlite(url)
  const stmt = conn.prepare(CAS_SQLITE)
  cas = (state, id, version) => stmt.run(state, id, version).changes
  close = async () => {
    conn.close()
  }
} else {
  const pool = new pg.Pool({ connectionString: url, max: Number(process.env.STDOPS_DB_POOL_SIZE ?? 10) })
  pool.on('error', () => undefined)
  cas = async (state, id, version) =>
    (await pool.query({ name: 'cas', text: CAS_PG, values: [state, id, version] })).rowCount ?? 0
  close = () => pool.end()
}

const app = Fastify({ logger: false })
app.post('/floor/operate', async (req) => {
  const b = req.body as { task_id: number; action: string; version: number }
  const changed = await cas(b.action === 'pause' ? 'SUSPENDED' : 'RUNNING', b.task_id, b.version)
  return changed === 1 ? { code: 0 } : { code: 1, message: 'version moved' }
})
app.get('/healthz', async () => ({ ok: true }))

await app.listen({ port, host: '127.0.0.1' })
const stop = async () => {
  await app.close()
  await close()
  process.exit(0)
}
process.on('SIGTERM', () => void stop())
process.on('SIGINT', () => void stop())
