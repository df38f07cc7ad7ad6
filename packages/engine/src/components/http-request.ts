import { evaluateCondition } from '@stdops/core'
import { z } from 'zod'
import { OutboundError } from '../outbound'
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
    const headers = inputs.bk_http_request_header.map(({ name, value }) => [name, value] as const)
    const body = method === 'GET' || method === 'HEAD' ? undefined : inputs.bk_http_request_body
    if (body !== undefined && !headers.some(([name]) => name.toLowerCase() === 'content-type'))
      headers.push(['content-type', 'application/json'])

    let status: number
    let data: unknown
    try {
      const res = await ctx.http.request({
        url: inputs.bk_http_request_url,
        method,
        headers,
        signal: ctx.signal,
        timeoutMs: inputs.bk_http_timeout * 1000,
        ...(body === undefined ? {} : { body }),
      })
      status = res.status
      data = parseBody(res.text)
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err)
      if (err instanceof OutboundError && err.kind === 'aborted')
        return { status: 'failed', error: 'request aborted: the task was revoked or the worker stopped' }
      return { status: 'failed', error: `request failed: ${message}` }
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
