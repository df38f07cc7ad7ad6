import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns'
import ipaddr from 'ipaddr.js'
import { Agent, type Dispatcher, request as undiciRequest } from 'undici'

/**
 * The one HTTP client for calls the server makes on a task's behalf (bk_http_request, callback_url).
 *
 * A task's author chooses the URL, so the call must not become a way into the server's own
 * network: every host is resolved and every address it resolves to must be public unicast
 * (loopback, private, link-local, unique-local, multicast, carrier-grade NAT, unspecified and the
 * reserved ranges are refused, IPv4-mapped IPv6 judged as the IPv4 address it carries), unless
 * `allow` names the host or a range holding the address. The socket connects to the address that
 * was checked (the check runs inside the connection's own DNS lookup, so a name cannot resolve to a
 * public address for the check and a private one for the connection). Redirects are followed here,
 * each hop checked the same way. The response body is read as a stream and abandoned past
 * `maxResponseBytes`; the whole call, redirects included, is bounded by `maxTimeoutMs`.
 *
 * Errors are `OutboundError`s whose messages name the host and what went wrong in terms that do not
 * tell a closed port from an unreachable host.
 */
export interface OutboundOptions {
  /**
   * Hosts (exact names, case-insensitive) and addresses or CIDR ranges (`127.0.0.1`,
   * `10.0.0.0/8`, `::1`) that may be reached although they are not public.
   */
  allow?: readonly string[]
  /** Largest response body read, in bytes. Default 1 MiB. */
  maxResponseBytes?: number
  /** Longest a call may take, redirects included, whatever the caller asks for. Default 60 s. */
  maxTimeoutMs?: number
  /** Redirects followed at most. Default 5. */
  maxRedirects?: number
}

export const OUTBOUND_DEFAULTS = {
  maxResponseBytes: 1024 * 1024,
  maxTimeoutMs: 60_000,
  maxRedirects: 5,
} as const

export type OutboundErrorKind =
  | 'invalid'
  | 'refused'
  | 'unreachable'
  | 'timeout'
  | 'aborted'
  | 'too_large'
  | 'redirects'

export class OutboundError extends Error {
  constructor(
    readonly kind: OutboundErrorKind,
    message: string,
  ) {
    super(message)
    this.name = 'OutboundError'
  }
}

export type OutboundMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'HEAD' | 'OPTIONS'

export interface OutboundRequest {
  url: string
  method?: OutboundMethod
  /** Name/value pairs, repeated names kept. */
  headers?: ReadonlyArray<readonly [string, string]>
  body?: string
  /** Wanted timeout; the client's `maxTimeoutMs` caps it. */
  timeoutMs?: number
  /** The caller's cancellation (revoke, shutdown). */
  signal?: AbortSignal
  /** false: the answer's body is not read (its status and headers are what counts); `text` is ''. */
  readBody?: boolean
}

export interface OutboundResponse {
  status: number
  headers: Record<string, string>
  /** The body decoded as UTF-8 (at most `maxResponseBytes` bytes were read). */
  text: string
  /** The URL that answered, after redirects. */
  url: string
}

export interface OutboundClient {
  readonly limits: Required<Omit<OutboundOptions, 'allow'>>
  /** One call, following redirects; rejects with an OutboundError. */
  request(req: OutboundRequest): Promise<OutboundResponse>
  /**
   * Refuses (OutboundError `invalid` or `refused`) a URL that is not http(s) or whose host is, or
   * resolves to, an address calls may not reach. A name that does not resolve now is let through:
   * it is checked again when called.
   */
  check(url: string): Promise<void>
  /**
   * Closes the connections. Called after the worker stopped (its calls finished, or were aborted
   * when the drain ran out): a call still open then is cut rather than waited for, so that a
   * stopping process never waits on a slow service.
   */
  close(): Promise<void>
}

type Ip = ipaddr.IPv4 | ipaddr.IPv6

/** `allow` entries, parsed; a malformed range is an error naming it. */
export function parseAllowList(entries: readonly string[]): {
  hosts: Set<string>
  ranges: Array<[Ip, number]>
} {
  const hosts = new Set<string>()
  const ranges: Array<[Ip, number]> = []
  for (const raw of entries) {
    const entry = raw.trim()
    if (entry === '') continue
    const bare = entry.replace(/^\[(.*)\]$/, '$1')
    if (entry.includes('/')) {
      try {
        const [ip, bits] = ipaddr.parseCIDR(bare)
        ranges.push([ip.kind() === 'ipv6' ? (ip as ipaddr.IPv6) : ip, bits])
      } catch {
        throw new Error(`outbound allow list: "${entry}" is not a valid CIDR range`)
      }
    } else if (ipaddr.isValid(bare)) {
      const ip = ipaddr.parse(bare)
      ranges.push([ip, ip.kind() === 'ipv4' ? 32 : 128])
    } else if (/^[a-z0-9.-]+$/i.test(entry)) hosts.add(entry.toLowerCase().replace(/\.$/, ''))
    else
      throw new Error(`outbound allow list: "${entry}" is neither a host name, an address nor a CIDR range`)
  }
  return { hosts, ranges }
}

/** The range an address belongs to when calls may not reach it, else null ("unicast"). */
export function forbiddenRange(address: string): string | null {
  if (!ipaddr.isValid(address)) return 'invalid'
  // ::ffff:127.0.0.1 is 127.0.0.1 on the wire: judge the IPv4 address
  const ip = ipaddr.process(address)
  const range = ip.range()
  return range === 'unicast' ? null : range
}

interface Policy {
  /** Null when the address may be reached from `host`, else the reason. */
  refusal(host: string, address: string): string | null
}

function createPolicy(allow: readonly string[]): Policy {
  const { hosts, ranges } = parseAllowList(allow)
  return {
    refusal(host, address) {
      if (hosts.has(host.toLowerCase().replace(/\.$/, ''))) return null
      const range = forbiddenRange(address)
      if (range === null) return null
      const ip = ipaddr.process(address)
      for (const [net, bits] of ranges) {
        const candidate = net.kind() === ip.kind() ? ip : null
        if (candidate && (candidate as ipaddr.IPv4).match(net as ipaddr.IPv4, bits)) return null
      }
      return range
    },
  }
}

const describeRange = (range: string) =>
  ({
    loopback: 'a loopback address',
    private: 'a private address',
    linkLocal: 'a link-local address',
    uniqueLocal: 'a unique-local address',
    multicast: 'a multicast address',
    unspecified: 'an unspecified address',
    broadcast: 'the broadcast address',
    carrierGradeNat: 'a carrier-grade NAT address',
    invalid: 'an invalid address',
  })[range] ?? `a reserved address (${range})`

/** Thrown inside the connection's lookup; recognised when the request fails. */
class RefusedAddress extends Error {
  constructor(
    readonly host: string,
    readonly range: string,
  ) {
    super(`${host} resolves to ${describeRange(range)}`)
  }
}

function refusedMessage(host: string, range: string, literal: boolean): string {
  const what = literal ? `${host} is ${describeRange(range)}` : `${host} resolves to ${describeRange(range)}`
  return `destination refused: ${what}; calls reach public addresses only (STDOPS_OUTBOUND_ALLOW lists exceptions)`
}

type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void

function guardedLookup(policy: Policy) {
  return (hostname: string, options: LookupOptions, callback: LookupCallback) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, [])
      if (addresses.length === 0)
        return callback(Object.assign(new Error('no address'), { code: 'ENOTFOUND' }), [])
      // every address must pass: the connection may try any of them
      for (const a of addresses) {
        const range = policy.refusal(hostname, a.address)
        if (range !== null) return callback(new RefusedAddress(hostname, range) as NodeJS.ErrnoException, [])
      }
      if (options.all) callback(null, addresses)
      else callback(null, addresses[0]!.address, addresses[0]!.family)
    })
  }
}

/** The URL's host without IPv6 brackets. */
const bareHost = (url: URL) => url.hostname.replace(/^\[(.*)\]$/, '$1')

function parseTarget(raw: string): URL {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw new OutboundError('invalid', 'not a valid URL')
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new OutboundError(
      'invalid',
      `only http and https URLs are called (got ${url.protocol.replace(/:$/, '')})`,
    )
  if (url.username || url.password) throw new OutboundError('invalid', 'URLs with credentials are not called')
  return url
}

function findRefused(err: unknown): RefusedAddress | null {
  for (let e: unknown = err, depth = 0; e && depth < 5; depth++) {
    if (e instanceof RefusedAddress) return e
    e = (e as { cause?: unknown }).cause
  }
  return null
}

function flatHeaders(headers: Dispatcher.ResponseData['headers']): Record<string, string> {
  const flat: Record<string, string> = {}
  for (const [k, v] of Object.entries(headers))
    if (v !== undefined) flat[k] = Array.isArray(v) ? v.join(', ') : v
  return flat
}

const REDIRECTS = new Set([301, 302, 303, 307, 308])
const CREDENTIAL_HEADERS = new Set(['authorization', 'cookie', 'proxy-authorization'])

export function createOutboundClient(options: OutboundOptions = {}): OutboundClient {
  const limits = {
    maxResponseBytes: options.maxResponseBytes ?? OUTBOUND_DEFAULTS.maxResponseBytes,
    maxTimeoutMs: options.maxTimeoutMs ?? OUTBOUND_DEFAULTS.maxTimeoutMs,
    maxRedirects: options.maxRedirects ?? OUTBOUND_DEFAULTS.maxRedirects,
  }
  const policy = createPolicy(options.allow ?? [])
  const agent = new Agent({
    connect: { lookup: guardedLookup(policy) as never },
    headersTimeout: limits.maxTimeoutMs,
    bodyTimeout: limits.maxTimeoutMs,
  })

  /** Refuses a host that is itself a forbidden address (the connection does no lookup for those). */
  function checkLiteral(url: URL): void {
    const host = bareHost(url)
    if (!ipaddr.isValid(host)) return
    const range = policy.refusal(host, host)
    if (range !== null) throw new OutboundError('refused', refusedMessage(url.hostname, range, true))
  }

  async function readCapped(body: Dispatcher.ResponseData['body'], origin: string): Promise<string> {
    const chunks: Buffer[] = []
    let total = 0
    for await (const chunk of body) {
      total += (chunk as Buffer).length
      if (total > limits.maxResponseBytes) {
        body.destroy()
        throw new OutboundError(
          'too_large',
          `the response from ${origin} is larger than ${limits.maxResponseBytes} bytes (STDOPS_OUTBOUND_MAX_BYTES); nothing of it was kept`,
        )
      }
      chunks.push(chunk as Buffer)
    }
    return Buffer.concat(chunks).toString('utf8')
  }

  return {
    limits,
    async check(raw) {
      const url = parseTarget(raw)
      checkLiteral(url)
      const host = bareHost(url)
      if (ipaddr.isValid(host)) return
      const addresses = await new Promise<LookupAddress[]>((resolve) =>
        dnsLookup(host, { all: true }, (err, list) => resolve(err ? [] : list)),
      )
      for (const a of addresses) {
        const range = policy.refusal(host, a.address)
        if (range !== null) throw new OutboundError('refused', refusedMessage(url.hostname, range, false))
      }
    },
    async request(req) {
      const timeoutMs = Math.min(req.timeoutMs ?? limits.maxTimeoutMs, limits.maxTimeoutMs)
      const timeout = AbortSignal.timeout(timeoutMs)
      const signal = req.signal ? AbortSignal.any([req.signal, timeout]) : timeout
      let url = parseTarget(req.url)
      let method: OutboundMethod = req.method ?? 'GET'
      let body = req.body
      let headers = [...(req.headers ?? [])]
      for (let hop = 0; ; hop++) {
        checkLiteral(url)
        const origin = url.origin
        let res: Dispatcher.ResponseData
        try {
          res = await undiciRequest(url, {
            dispatcher: agent,
            method,
            headers: headers.flat(),
            signal,
            ...(body === undefined ? {} : { body }),
          })
        } catch (err) {
          if (req.signal?.aborted)
            throw new OutboundError('aborted', 'the call was cancelled (task revoked or worker stopping)')
          if (timeout.aborted)
            throw new OutboundError('timeout', `timed out after ${timeoutMs / 1000} s waiting for ${origin}`)
          const refused = findRefused(err)
          if (refused) throw new OutboundError('refused', refusedMessage(refused.host, refused.range, false))
          // One message for every network failure: a closed port, a silent host and an unknown
          // name look alike from here.
          throw new OutboundError('unreachable', `could not get an answer from ${origin}`)
        }
        // An abort that comes after the answer (the caller's signal, the timeout) errors the body
        // stream; whoever reads it sees that error, and it must never surface as an uncaught one.
        res.body.on('error', () => {})
        try {
          const location = res.headers.location
          if (REDIRECTS.has(res.statusCode) && typeof location === 'string') {
            await res.body.dump()
            if (hop >= limits.maxRedirects)
              throw new OutboundError(
                'redirects',
                `more than ${limits.maxRedirects} redirects, starting from ${req.url}`,
              )
            let next: URL
            try {
              next = parseTarget(new URL(location, url).href)
            } catch (err) {
              throw new OutboundError('invalid', `redirect from ${origin} refused: ${(err as Error).message}`)
            }
            if (
              res.statusCode === 303 ||
              ((res.statusCode === 301 || res.statusCode === 302) && method === 'POST')
            ) {
              if (method !== 'HEAD') method = 'GET'
              body = undefined
              headers = headers.filter(([n]) => !/^content-/i.test(n))
            }
            if (next.origin !== url.origin)
              headers = headers.filter(([n]) => !CREDENTIAL_HEADERS.has(n.toLowerCase()))
            url = next
            continue
          }
          if (req.readBody === false) {
            res.body.destroy()
            return { status: res.statusCode, headers: flatHeaders(res.headers), text: '', url: url.href }
          }
          const declared = Number(res.headers['content-length'])
          if (Number.isFinite(declared) && declared > limits.maxResponseBytes) {
            res.body.destroy()
            throw new OutboundError(
              'too_large',
              `the response from ${origin} is larger than ${limits.maxResponseBytes} bytes (STDOPS_OUTBOUND_MAX_BYTES); nothing of it was kept`,
            )
          }
          const text = await readCapped(res.body, origin)
          const flat: Record<string, string> = {}
          for (const [k, v] of Object.entries(res.headers))
            if (v !== undefined) flat[k] = Array.isArray(v) ? v.join(', ') : v
          return { status: res.statusCode, headers: flat, text, url: url.href }
        } catch (err) {
          res.body.destroy()
          if (err instanceof OutboundError) throw err
          if (req.signal?.aborted)
            throw new OutboundError('aborted', 'the call was cancelled (task revoked or worker stopping)')
          if (timeout.aborted)
            throw new OutboundError('timeout', `timed out after ${timeoutMs / 1000} s waiting for ${origin}`)
          throw new OutboundError('unreachable', `the answer from ${origin} broke off`)
        }
      }
    },
    close: () => agent.destroy(),
  }
}
