import { execFileSync, spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parse as parseYaml } from 'yaml'
import { type Harness, startHarness } from './harness'
import { REPO } from './procs'

/**
 * The Grafana dashboard and the Prometheus alert rules in deploy/ name only metrics (and labels)
 * that stdops exports, and docs/operations.md documents every metric it exports. promtool, when
 * installed (Debian's `prometheus` package), checks the rules too.
 */

let h: Harness
let exported: Map<string, { type: string; labels: Set<string> }>

beforeAll(async () => {
  h = await startHarness({ worker: false })
  exported = new Map()
  const declared = new Map(
    h.deps.metrics.registry
      .getMetricsAsArray()
      .map((m) => [m.name, (m as unknown as { labelNames?: string[] }).labelNames ?? []]),
  )
  for (const m of await h.deps.metrics.registry.getMetricsAsJSON()) {
    const labels = new Set<string>(['instance', 'job', ...(declared.get(m.name) ?? [])])
    for (const v of m.values as Array<{ labels: Record<string, unknown> }>)
      for (const k of Object.keys(v.labels)) labels.add(k)
    exported.set(m.name, { type: String(m.type), labels })
  }
})
afterAll(async () => {
  await h?.close()
})

const dashboard = () =>
  JSON.parse(readFileSync(join(REPO, 'deploy', 'grafana', 'stdops.json'), 'utf8')) as {
    panels: Array<{ type: string; title: string; targets?: Array<{ expr: string }> }>
  }
const rules = () =>
  parseYaml(readFileSync(join(REPO, 'deploy', 'prometheus', 'stdops-alerts.yml'), 'utf8')) as {
    groups: Array<{ name: string; rules: Array<{ alert: string; expr: string }> }>
  }

/** Every `stdops_…` series an expression selects, with the label names its selector uses. */
function selectors(expr: string): Array<{ series: string; labels: string[] }> {
  const found: Array<{ series: string; labels: string[] }> = []
  for (const m of expr.matchAll(/\b(stdops_[a-z0-9_]+)(\{([^}]*)\})?/g)) {
    const labels = [...(m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)/g)].map((l) => l[1]!)
    found.push({ series: m[1]!, labels })
  }
  return found
}

/** The exported metric a series belongs to (a histogram's _bucket, _sum and _count included). */
function metricOf(series: string): { name: string; extra: string[] } | null {
  if (exported.has(series)) return { name: series, extra: [] }
  const m = /^(.*)_(bucket|sum|count)$/.exec(series)
  if (m && exported.get(m[1]!)?.type === 'histogram')
    return { name: m[1]!, extra: m[2] === 'bucket' ? ['le'] : [] }
  return null
}

function expectKnown(where: string, expr: string) {
  const used = selectors(expr)
  expect(used.length, `${where}: ${expr}`).toBeGreaterThan(0)
  for (const s of used) {
    const metric = metricOf(s.series)
    expect(metric, `${where} names ${s.series}, which stdops does not export`).not.toBeNull()
    const allowed = new Set([...exported.get(metric!.name)!.labels, ...metric!.extra])
    for (const l of s.labels) expect(allowed.has(l), `${where}: ${s.series} has no label ${l}`).toBe(true)
  }
}

describe('monitoring assets', () => {
  it('the Grafana dashboard parses and every panel queries only exported metrics and labels', () => {
    const d = dashboard()
    const targets = d.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })))
    expect(targets.length).toBeGreaterThan(20)
    for (const t of targets) expectKnown(`panel "${t.panel}"`, t.expr)
  })

  it('the alert rules cover stuck tasks, a growing backlog and failing nodes, over exported metrics only', () => {
    const all = rules().groups.flatMap((g) => g.rules)
    expect(all.map((r) => r.alert)).toEqual(
      expect.arrayContaining(['StdopsTasksStuck', 'StdopsBacklogGrowing', 'StdopsNodesFailing']),
    )
    for (const r of all) {
      if (r.alert === 'StdopsProcessDown') {
        expect(r.expr).toBe('up{job="stdops"} == 0')
        continue
      }
      expectKnown(`alert ${r.alert}`, r.expr)
    }
  })

  const promtool = spawnSync('promtool', ['--version']).status === 0
  it.runIf(promtool)('promtool accepts the alert rules', () => {
    const out = execFileSync(
      'promtool',
      ['check', 'rules', join(REPO, 'deploy', 'prometheus', 'stdops-alerts.yml')],
      {
        encoding: 'utf8',
      },
    )
    expect(out).toMatch(/SUCCESS: \d+ rules found/)
  })

  it('docs/operations.md documents every metric stdops exports', () => {
    const doc = readFileSync(join(REPO, 'docs', 'operations.md'), 'utf8')
    const ours = [...exported.keys()].filter((n) => !/^stdops_(process|nodejs)_/.test(n))
    expect(ours.length).toBeGreaterThan(15)
    for (const name of ours) expect(doc, name).toContain(`\`${name}\``)
  })
})
