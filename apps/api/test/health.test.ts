import { renameSync } from 'node:fs'
import { connect, createServer, type Server as NetServer, type Socket } from 'node:net'
import { sql, sqlitePath } from '@stdops/db'
import { testDatabaseBaseUrl } from '@stdops/db/testing'
import { afterEach, describe, expect, it } from 'vitest'
import { type Harness, lib, startHarness, waitFor } from './harness'
import { isPostgres, killAll, serverEnv, startProcess, stopProcess } from './procs'

/**
 * /healthz and /readyz: unauthenticated, cheap; /readyz fails while the database is unreachable,
 * its migrations are not all applied, the worker is not running or the process is stopping, and
 * recovers when the cause goes away.
 */

let h: Harness | null = null
let proxy: TcpProxy | null = null
afterEach(async () => {
  await h?.close()
  h = null
  await proxy?.close()
  proxy = null
  await killAll()
})

const get = async (base: string, path: string) => {
  const res = await fetch(`${base}${path}`)
  return {
    status: res.status,
    body: (await res.json()) as { status: string; checks?: Record<string, string> },
  }
}

/**
 * A TCP proxy in front of PostgreSQL: `cut()` makes the database unreachable for whoever goes
 * through it (open connections reset, new ones refused), `restore()` makes it reachable again on
 * the same port.
 */
interface TcpProxy {
  port: number
  cut(): Promise<void>
  restore(): Promise<void>
  close(): Promise<void>
}

async function startProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const sockets = new Set<Socket>()
  let server: NetServer
  let port = 0
  const listen = () =>
    new Promise<void>((resolve) => {
      server = createServer((client) => {
        const upstream = connect(target.port, target.host)
        for (const s of [client, upstream]) {
          sockets.add(s)
          s.on('close', () => sockets.delete(s))
          s.on('error', () => {})
        }
        client.pipe(upstream).pipe(client)
      })
      server.listen(port, '127.0.0.1', () => {
        port = (server.address() as { port: number }).port
        resolve()
      })
    })
  const cut = async () => {
    await new Promise<void>((resolve) => {
      server.close(() => resolve())
      for (const s of sockets) s.destroy()
    })
  }
  await listen()
  return {
    get port() {
      return port
    },
    cut,
    restore: listen,
    close: cut,
  }
}

describe('/healthz and /readyz', () => {
  it('answer without credentials: up, and ready with every check ok', async () => {
    h = await startHarness()
    expect(await get(h.url, '/healthz')).toEqual({ status: 200, body: { status: 'ok' } })
    expect(await get(h.url, '/readyz')).toEqual({
      status: 200,
      body: { status: 'ready', checks: { database: 'ok', migrations: 'ok', worker: 'ok' } },
    })
  })

  it('without a worker in the process, /readyz has no worker check', async () => {
    h = await startHarness({ worker: false })
    expect((await get(h.url, '/readyz')).body.checks).toEqual({ database: 'ok', migrations: 'ok' })
  })

  it('/readyz fails while a shipped migration is not applied, and recovers once it is', async () => {
    h = await startHarness()
    const [latest] = await h.deps.db.query<Record<string, unknown>>(
      sql`SELECT * FROM _prisma_migrations ORDER BY migration_name DESC LIMIT 1`,
    )
    await h.deps.db.execute(sql`DELETE FROM _prisma_migrations WHERE id = ${latest!.id as string}`)
    const down = await get(h.url, '/readyz')
    expect(down.status).toBe(503)
    expect(down.body.checks?.migrations).toBe(`pending: ${latest!.migration_name as string}`)
    await h.deps.db.execute(sql`INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at, finished_at, applied_steps_count)
      VALUES (${latest!.id as string}, ${latest!.checksum as string}, ${latest!.migration_name as string}, ${latest!.started_at as string}, ${latest!.finished_at as string}, 1)`)
    expect((await get(h.url, '/readyz')).status).toBe(200)
  })

  it('/readyz fails once the worker has stopped, and while the process is stopping', async () => {
    h = await startHarness()
    await h.deps.engine.stop({ drainMs: 0 })
    const stopped = await get(h.url, '/readyz')
    expect(stopped.status).toBe(503)
    expect(stopped.body.checks?.worker).toBe('the worker is stopped')
    h.deps.lifecycle.beginStop()
    expect((await get(h.url, '/readyz')).body.checks?.process).toBe('stopping')
  })

  it('a worker whose claim loop has not gone round for over 10 s is not ready', async () => {
    h = await startHarness()
    const fresh = await lib.createReadinessCheck(h.deps)()
    expect(fresh.checks.worker).toBe('ok')
    // The real worker, seen from a clock a minute ahead: its last round is a minute old.
    const later = await lib.createReadinessCheck({ ...h.deps, now: () => Date.now() + 60_000 })()
    expect(later.ready).toBe(false)
    expect(later.checks.worker).toMatch(/^the worker loop last went round (59|60|61) s ago$/)
  })

  it.runIf(isPostgres())(
    'PostgreSQL: /readyz fails while the database is unreachable and recovers after, /healthz stays up',
    async () => {
      const base = new URL(testDatabaseBaseUrl()!)
      const through = await startProxy({ host: base.hostname, port: Number(base.port || 5432) })
      proxy = through
      h = await startHarness({
        viaUrl: (dbUrl) => {
          const u = new URL(dbUrl)
          u.hostname = '127.0.0.1'
          u.port = String(through.port)
          return u.toString()
        },
      })
      expect((await get(h.url, '/readyz')).status).toBe(200)
      await proxy.cut()
      const down = await get(h.url, '/readyz')
      expect(down.status).toBe(503)
      expect(down.body.checks?.database).toMatch(/^unreachable: /)
      expect((await get(h.url, '/healthz')).status).toBe(200)
      await proxy.restore()
      await waitFor(async () => ((await get(h!.url, '/readyz')).status === 200 ? true : undefined), 15_000)
    },
  )

  it.skipIf(isPostgres())(
    'SQLite: /readyz fails while the database file is not where it was opened (moved away), and recovers when it is back',
    async () => {
      h = await startHarness()
      const path = sqlitePath(h.dbUrl)
      renameSync(path, `${path}.moved`)
      const down = await get(h.url, '/readyz')
      expect(down.status).toBe(503)
      expect(down.body.checks?.database).toBe(`database file ${path} is missing`)
      expect((await get(h.url, '/healthz')).status).toBe(200)
      renameSync(`${path}.moved`, path)
      expect((await get(h.url, '/readyz')).status).toBe(200)
    },
  )

  it('a worker process serves /healthz and /readyz on STDOPS_OPS_PORT', async () => {
    const harness = await startHarness({ worker: false })
    h = harness
    const worker = await startProcess('worker', serverEnv(harness.dbUrl, { STDOPS_OPS_PORT: '0' }))
    const line = await waitFor(async () =>
      worker.lines.find((l) => l.includes('operations endpoints serving')),
    )
    const address = (JSON.parse(line!) as { address: string }).address
    expect(await get(address, '/readyz')).toEqual({
      status: 200,
      body: { status: 'ready', checks: { database: 'ok', migrations: 'ok', worker: 'ok' } },
    })
    expect((await stopProcess(worker)).code).toBe(0)
  })
})
