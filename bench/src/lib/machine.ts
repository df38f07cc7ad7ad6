import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { availableParallelism, loadavg, totalmem } from 'node:os'
import { REPO_DIR } from './proc'

export interface Machine {
  nproc: number
  memory: string
  node: string
  cpu: string
  date: string
  loadavg: string
  loadavgAfter?: string
  commit: string
  postgres?: string | null
}

function cpuModel(): string {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))
    return m?.[1]?.trim() ?? 'unknown'
  } catch {
    return 'unknown'
  }
}

function commit(): string {
  try {
    const sha = execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      cwd: REPO_DIR,
      encoding: 'utf8',
    }).trim()
    const dirty =
      execFileSync('git', ['status', '--porcelain'], { cwd: REPO_DIR, encoding: 'utf8' }).trim().length > 0
    return dirty ? `${sha} (with uncommitted changes)` : sha
  } catch {
    return 'unknown'
  }
}

export function machine(): Machine {
  return {
    nproc: availableParallelism(),
    memory: `${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
    node: process.version,
    cpu: cpuModel(),
    date: new Date().toISOString(),
    loadavg: loadavg()
      .map((l) => l.toFixed(2))
      .join(' '),
    commit: commit(),
  }
}
