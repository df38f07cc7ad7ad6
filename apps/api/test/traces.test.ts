import { context, propagation, trace } from '@opentelemetry/api'
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base'
import { createTreeBuilder } from '@stdops/core/testing'
import { sql } from '@stdops/db'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTemplate, legacyClient, ok, waitForState } from './fixtures'
import { type Harness, lib, makeIdentity, startHarness } from './harness'

/**
 * Traces, recorded in memory: a request that starts a task is one span (continuing the caller's
 * traceparent), its operation one span under it, and each node execution a span of its own that
 * links to the request the task keeps; never a span per task.
 */

const exporter = new InMemorySpanExporter()
let h: Harness

beforeAll(async () => {
  await lib.startTracing({ serviceName: 'stdops-test', spanProcessors: [new SimpleSpanProcessor(exporter)] })
  h = await startHarness()
})
afterAll(async () => {
  await h?.close()
  await lib.stopTracing()
  trace.disable()
  context.disable()
  propagation.disable()
})

const CALLER_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736'
const CALLER_SPAN = '00f067aa0ba902b7'

describe('traces', () => {
  it('one request that starts a task: its span, its operation under it, and node spans linked to it', async () => {
    const id = await makeIdentity(h.deps)
    const c = legacyClient(h, id)
    const b = createTreeBuilder()
    const vars = b.activity('set_variables', { data: { variables: { hook: false, value: { a: '1' } } } })
    const wait = b.activity('sleep_timer', { data: { bk_timing: { hook: false, value: '0.2' } } })
    b.chain(b.startId, vars, wait, b.endId)
    const templateId = await createTemplate(c, b.build())
    exporter.reset()

    const reply = await c.post(
      'create_and_start_task',
      { template_id: templateId, name: 'traced' },
      { traceparent: `00-${CALLER_TRACE}-${CALLER_SPAN}-01` },
    )
    const taskId = ok<{ task_id: number }>(reply).task_id
    await waitForState(c, taskId, 'FINISHED')

    const spans = exporter.getFinishedSpans()
    const named = (name: string) => spans.filter((s) => s.name === name)
    const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId

    // The request: one span, continuing the caller's trace; the envelope's trace_id is its trace.
    const requests = spans.filter(
      (s) => s.instrumentationScope.name === '@fastify/otel' && s.spanContext().traceId === CALLER_TRACE,
    )
    expect(requests).toHaveLength(1)
    const request = requests[0]!
    expect(parentOf(request)).toBe(CALLER_SPAN)
    expect(reply.body.trace_id).toBe(CALLER_TRACE)

    // The start operation: one span, under the request's.
    const [operation] = named('stdops.operation start')
    expect(operation?.spanContext().traceId).toBe(CALLER_TRACE)
    expect(parentOf(operation!)).toBe(request.spanContext().spanId)

    // The task keeps the request's traceparent.
    const [row] = await h.deps.db.query<{ traceparent: string }>(
      sql`SELECT traceparent FROM tasks WHERE id = ${taskId}`,
    )
    expect(row?.traceparent).toBe(`00-${CALLER_TRACE}-${request.spanContext().spanId}-01`)

    // Each node execution is a span of its own trace, linked to the request.
    const nodeSpans = spans.filter((s) => s.name.startsWith('stdops.node '))
    expect(nodeSpans.map((s) => s.name).sort()).toEqual([
      'stdops.node set_variables',
      // sleep_timer: its execute step (which sets the timer) and its due step
      'stdops.node sleep_timer',
      'stdops.node sleep_timer',
    ])
    for (const s of nodeSpans) {
      expect(s.spanContext().traceId).not.toBe(CALLER_TRACE)
      expect(parentOf(s)).toBeUndefined()
      expect(s.links.map((l) => [l.context.traceId, l.context.spanId])).toEqual([
        [CALLER_TRACE, request.spanContext().spanId],
      ])
      expect(s.attributes['stdops.task.id']).toBe(taskId)
    }
    expect(nodeSpans.find((s) => s.name === 'stdops.node set_variables')?.attributes['stdops.node.id']).toBe(
      vars,
    )

    // Claims that found work are spans too; nothing spans the whole task.
    expect(named('stdops.claim').length).toBeGreaterThan(0)
    expect(spans.filter((s) => /task/i.test(s.name))).toEqual([])
  })
})
