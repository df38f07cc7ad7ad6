import type { EnvelopeReply, Harness, Identity } from './harness'

/**
 * Calls as bk-sops's Python clients make them (its ESB SDK over `requests`): credentials among the
 * parameters, POST bodies as `data=json.dumps(params)` — JSON with no Content-Type header —, and
 * GET parameters written by `requests`, where a Python bool becomes `True` / `False` and a list
 * repeats its key.
 */
export type PyValue = string | number | boolean | null | PyValue[] | { [k: string]: PyValue }

const pyText = (v: PyValue): string =>
  v === true
    ? 'True'
    : v === false
      ? 'False'
      : v === null
        ? 'None'
        : typeof v === 'object'
          ? JSON.stringify(v)
          : String(v)

export function pythonClient(h: Pick<Harness, 'url'>, id: Identity) {
  const credentials = { bk_app_code: id.appCode, bk_app_secret: id.appSecret, bk_token: id.token }
  const send = async (url: string, init: RequestInit): Promise<EnvelopeReply> => {
    const res = await fetch(url, init)
    const text = await res.text()
    return { status: res.status, headers: res.headers, body: JSON.parse(text) }
  }
  return {
    id,
    /** `requests.post(url, data=json.dumps(params))`: a byte body, so no Content-Type at all. */
    post: (api: string, params: Record<string, unknown> = {}) =>
      send(`${h.url}/api/c/compapi/v2/sops/${api}/`, {
        method: 'POST',
        body: new TextEncoder().encode(
          JSON.stringify({ ...credentials, bk_biz_id: String(id.bkBizId), ...params }),
        ),
      }),
    /** `requests.get(url, params=params)` */
    get: (api: string, params: Record<string, PyValue> = {}) => {
      const qs = new URLSearchParams()
      for (const [k, v] of Object.entries({ ...credentials, bk_biz_id: String(id.bkBizId), ...params })) {
        if (Array.isArray(v)) for (const item of v) qs.append(k, pyText(item))
        else qs.append(k, pyText(v))
      }
      return send(`${h.url}/api/c/compapi/v2/sops/${api}/?${qs.toString()}`, { method: 'GET' })
    },
  }
}
export type PythonClient = ReturnType<typeof pythonClient>
