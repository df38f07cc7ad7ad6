import { formatZodError, LegacyCode, maskSealedText, ParamInvalidError } from '@stdops/core'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { authenticate, type Credentials, credentialsFrom } from '../services/auth'
import type { Deps } from '../services/deps'
import { toRefusal } from '../services/errors'
import { LEGACY_APIS } from './apis'
import { type Envelope, traceIdFrom } from './envelope'

const PREFIXES = ['/v2/sops', '/api/c/compapi/v2/sops'] as const

declare module 'fastify' {
  interface FastifyRequest {
    legacyIds?: { requestId: string; traceId: string }
  }
}

function ids(req: FastifyRequest) {
  req.legacyIds ??= {
    requestId: req.id,
    traceId: traceIdFrom(req.headers.traceparent),
  }
  return req.legacyIds
}

export function sendEnvelope(
  req: FastifyRequest,
  reply: FastifyReply,
  body: {
    result: boolean
    code: number
    data: unknown
    message: string
    extra?: Record<string, unknown> | undefined
  },
  status = 200,
) {
  const { requestId, traceId } = ids(req)
  const envelope: Envelope = {
    result: body.result,
    code: body.code,
    data: body.data,
    message: body.message,
    request_id: requestId,
    trace_id: traceId,
    ...body.extra,
  }
  return (
    reply
      .status(status)
      .header('x-request-id', requestId)
      .header('sops-trace-id', traceId)
      .header('content-type', 'application/json; charset=utf-8')
      // secret constants are stored sealed; no reply shows them otherwise than masked
      .send(maskSealedText(JSON.stringify(envelope)))
  )
}

/** HTTP 404 with the envelope: no such API. */
export function sendNotFound(req: FastifyRequest, reply: FastifyReply, api: string) {
  return sendEnvelope(
    req,
    reply,
    {
      result: false,
      code: LegacyCode.COMPONENT_NOT_FOUND,
      data: null,
      message: `component not found: ${api}`,
    },
    404,
  )
}

export function sendRefusal(
  req: FastifyRequest,
  reply: FastifyReply,
  err: unknown,
  deps: Pick<Deps, 'logger'>,
) {
  const { requestId } = ids(req)
  const r = toRefusal(err, requestId)
  if (r.internal) deps.logger.error({ err, request_id: requestId }, 'internal error in legacy api')
  return sendEnvelope(
    req,
    reply,
    { result: false, code: r.code, data: null, message: r.message },
    r.httpStatus,
  )
}

/** The credentials of a request: the X-Bkapi-Authorization header when present, else the body or query. */
function requestCredentials(headerValue: unknown, params: Record<string, unknown>): Credentials {
  if (typeof headerValue === 'string' && headerValue.length > 0) {
    let parsed: unknown
    try {
      parsed = JSON.parse(headerValue)
    } catch {
      parsed = null
    }
    // A header that is not a JSON object carries no credentials: authentication then fails at its first check.
    return parsed && typeof parsed === 'object' && !Array.isArray(parsed)
      ? credentialsFrom(parsed as Record<string, unknown>)
      : {}
  }
  return credentialsFrom(params)
}

export function registerLegacyRoutes(app: FastifyInstance, deps: Deps) {
  const handle = async (req: FastifyRequest, reply: FastifyReply) => {
    const name = (req.params as { api: string }).api
    const api = Object.hasOwn(LEGACY_APIS, name) ? LEGACY_APIS[name] : undefined
    if (!api) return sendNotFound(req, reply, name)
    if (req.method !== api.method) {
      return sendEnvelope(
        req,
        reply,
        {
          result: false,
          code: LegacyCode.METHOD_NOT_ALLOWED,
          data: null,
          message: `method ${req.method} not allowed for ${name}, use ${api.method}`,
        },
        405,
      )
    }
    try {
      let params: Record<string, unknown>
      if (api.method === 'POST') {
        const raw = req.body as string | undefined
        let body: unknown
        try {
          body = raw === undefined || raw === '' ? undefined : JSON.parse(raw)
        } catch {
          body = undefined
        }
        if (!body || typeof body !== 'object' || Array.isArray(body)) {
          // Authentication comes first when the credentials do not depend on the body.
          const header = req.headers['x-bkapi-authorization']
          if (typeof header === 'string' && header.length > 0)
            await authenticate(deps, requestCredentials(header, {}), req.ip)
          throw new ParamInvalidError('invalid param format')
        }
        params = body as Record<string, unknown>
      } else {
        params = { ...(req.query as Record<string, unknown>) }
      }
      const caller = await authenticate(
        deps,
        requestCredentials(req.headers['x-bkapi-authorization'], params),
        req.ip,
      )
      const parsed = api.params.safeParse(params)
      if (!parsed.success) throw new ParamInvalidError(formatZodError(parsed.error))
      const out = await api.run(deps, caller, parsed.data)
      return sendEnvelope(req, reply, {
        result: true,
        code: LegacyCode.SUCCESS,
        data: out.data,
        message: 'success',
        extra: out.extra,
      })
    } catch (err) {
      return sendRefusal(req, reply, err, deps)
    }
  }

  for (const prefix of PREFIXES) {
    app.route({
      method: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'],
      url: `${prefix}/:api`,
      handler: handle,
    })
  }
}
