import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { createDb, sql } from '../src/index'

/** The SQLite database holds hashed credentials, sealed secrets and maybe the server key: this user only. */

const root = mkdtempSync(join(tmpdir(), 'stdops-modes-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))

const mode = (path: string) => statSync(path).mode & 0o777

describe('SQLite file modes', () => {
  it('creates its directories 0700 and the database, -wal and -shm files 0600', async () => {
    const dir = join(root, 'fresh', 'data')
    const file = join(dir, 'stdops.db')
    const db = createDb(`file:${file}`)
    try {
      await db.migrate()
      await db.execute(sql`INSERT INTO settings (key, value) VALUES (${'probe'}, ${'x'})`)
      expect(mode(join(root, 'fresh'))).toBe(0o700)
      expect(mode(dir)).toBe(0o700)
      for (const f of [file, `${file}-wal`, `${file}-shm`]) expect(mode(f), f).toBe(0o600)
    } finally {
      await db.close()
    }
  })

  it('narrows an existing world-readable database file to 0600, and leaves an existing directory alone', async () => {
    const dir = join(root, 'shared')
    const file = join(dir, 'old.db')
    const db0 = createDb(`file:${file}`)
    await db0.migrate()
    await db0.close()
    chmodSync(dir, 0o755)
    chmodSync(file, 0o644)
    writeFileSync(join(dir, 'other'), 'not ours')
    const db = createDb(`file:${file}`)
    try {
      await db.migrate()
      expect(mode(file)).toBe(0o600)
      expect(mode(dir)).toBe(0o755)
      expect(mode(join(dir, 'other'))).toBe(0o644)
    } finally {
      await db.close()
    }
  })
})
