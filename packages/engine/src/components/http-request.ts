import { evaluateCondition } from '@stdops/core'
import { z } from 'zod'
import { defineComponent } from './define'

const blankToUndefined = (v: unknown) => (v === '' || v === null ? undefined : v)

const SecondsSchema = z.preprocess(blankToUndefined, z.coerce.number().positive().max(3600).default(60))

const HeaderSchema = z.preprocess(
  blankToUndefined,
  z
    .array(
      z.object({
        name: z.string().min(1),
        value: z.union([z.string(), z.number(), z.boolean()]).transform(String),
      }),
    )
    .default([]),
)

const BodySchema = z.preprocess(
  (v) => (typeof v === 'object' && v !== null ? JSON.stringify(v) : blankToUndefined(v)),
  z.string().optional(),
)

export const HttpRequestInputsSchema = z.object({
  bk_http_request_method: z.preprocess(
    (v) => (typeof v === 'string' ? v.toUpperCase() : blankToUndefined(v)),
    z.enum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS']).default('GET'),
  ),
  bk_http_request_url: z.url({ protocol: /^https?$/ }),
  bk_http_request_header: HeaderSchema,
  bk_http_request_body: BodySchema,
  bk_http_timeout: SecondsSchema,
  bk_http_success_exp: z.preprocess(blankToUndefined, z.string().optional()),
})

const MAX_ERROR_BODY = 500

function parseBody(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

export const httpRequest = defineComponent({
  code: 'bk_http_request',
  name: 'HTTP request',
  version: '1.0',
  inputs: HttpRequestInputsSchema,
  outputs: z.object({ status_code: z.number().int(), data: z.unknown() }),
  async execute(inputs, ctx) {
    const method = inputs.bk_http_request_method
    const headers = new Headers()
    for (const { name, value } of inputs.bk_http_request_header) headers.append(name, value)
    const body = method === 'GET' || method === 'HEAD' ? undefined : inputs.bk_http_request_body
    if (body !== undefined && !headers.has('content-type')) headers.set('content-type', 'application/json')
    const timeout = AbortSignal.timeout(inputs.bk_http_timeout * 1000)
    const signal = AbortSignal.any([ctx.signal, timeout])

    let status: number
    let data: unknown
    try {
      const res = await ctx.fetch(inputs.bk_http_request_url, {
        method,
        headers,
        signal,
        ...(body === undefined ? {} : { body }),
      })
      status = res.status
      data = parseBody(await res.text())
    } catch (err) {
      if (ctx.signal.aborted)
        return { status: 'failed', error: 'request aborted: the task was revoked or the worker stopped' }
      if (timeout.aborted)
        return { status: 'failed', error: `request timed out after ${inputs.bk_http_timeout} s` }
      const cause = (err as { cause?: { message?: string } }).cause?.message
      const message = err instanceof Error ? err.message : String(err)
      return { status: 'failed', error: `request failed: ${message}${cause ? ` (${cause})` : ''}` }
    }

    const resp = { status_code: status, data }
    let ok: boolean
    if (inputs.bk_http_success_exp === undefined) ok = status >= 200 && status < 300
    else {
      try {
        ok = evaluateCondition(inputs.bk_http_success_exp, { resp })
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err)
        return {
          status: 'failed',
          error: `success expression "${inputs.bk_http_success_exp}" failed: ${message}`,
        }
      }
    }
    if (ok) return { status: 'finished', outputs: resp }
    const text = typeof data === 'string' ? data : JSON.stringify(data)
    const excerpt = text.length > MAX_ERROR_BODY ? `${text.slice(0, MAX_ERROR_BODY)}…` : text
    const rule =
      inputs.bk_http_success_exp === undefined
        ? 'status is not 2xx'
        : `"${inputs.bk_http_success_exp}" does not hold`
    return { status: 'failed', error: `request returned status ${status} (${rule}): ${excerpt}` }
  },
})
