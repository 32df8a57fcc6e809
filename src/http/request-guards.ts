// Hostile-input guards that run before any route: JSON-only bodies within the size and nesting limits, and no foreign web pages.
import { isIP } from 'node:net'
import { isLoopback } from './config.ts'
import { HttpError } from './deps.ts'

/** Our bodies nest two levels deep; past this, a body is an attack (validating it took Elysia ~40 s at 500k levels). */
export const MAX_JSON_DEPTH = 32

const JSON_MEDIA_TYPE = /^application\/(?:[\w.+-]+\+)?json$/i

export const tooLargeMessage = (maxBytes: number) => `the request body is larger than the limit of ${maxBytes} bytes`

/** The deepest array/object nesting of JSON text, scanning no further once it passes `stopAfter`. */
export function nestingDepth(text: string, stopAfter = Number.POSITIVE_INFINITY): number {
  let depth = 0
  let deepest = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c) i++
      else if (c === 0x22) inString = false
    } else if (c === 0x22) inString = true
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > deepest && (deepest = depth) > stopAfter) return deepest
    } else if (c === 0x5d || c === 0x7d) depth--
  }
  return deepest
}

/** The whole body, refused with 413 as soon as it passes `limit` (a chunked body declares no length up front). */
async function readAtMost(body: ReadableStream<Uint8Array>, limit: number): Promise<Uint8Array> {
  const reader = body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > limit) {
      await reader.cancel().catch(() => {})
      throw new HttpError(413, tooLargeMessage(limit))
    }
    chunks.push(value)
  }
  return Buffer.concat(chunks)
}

/**
 * Elysia `parse` hook for every route: an empty body is null; anything else must be UTF-8 JSON sent as
 * `application/json`. Refusing forms also means a web page cannot post into the broker: a cross-site JSON
 * request needs a CORS preflight, which the broker never grants. Errors thrown here reach `onError`
 * wrapped in Elysia's ParseError (as `cause`).
 */
export function jsonBodyParser(maxBytes: number) {
  return async function parseJsonBody({ request }: { request: Request }): Promise<unknown> {
    if (request.body === null) return null
    // A declared length was held to the limit in onRequest, so such a body is read whole, natively: the
    // stream reader costs about 10 µs more CPU a request. Chunked bodies (no length, or both) are counted as they come.
    const declared = request.headers.get('content-length') !== null && request.headers.get('transfer-encoding') === null
    const bytes = declared ? new Uint8Array(await request.arrayBuffer()) : await readAtMost(request.body, maxBytes)
    if (bytes.byteLength === 0) return null
    const contentType = request.headers.get('content-type') ?? ''
    if (!JSON_MEDIA_TYPE.test(contentType.split(';')[0]!.trim()))
      throw new HttpError(
        400,
        `the request body must be JSON sent with Content-Type: application/json (got ${contentType ? JSON.stringify(contentType.slice(0, 100)) : 'no Content-Type'})`,
      )
    let text: string
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(bytes)
    } catch {
      throw new HttpError(400, 'the request body is not valid UTF-8')
    }
    if (nestingDepth(text, MAX_JSON_DEPTH) > MAX_JSON_DEPTH)
      throw new HttpError(400, `the request body nests arrays or objects deeper than ${MAX_JSON_DEPTH} levels`)
    try {
      return JSON.parse(text)
    } catch {
      throw new HttpError(400, 'the request body is not valid JSON (send Content-Type: application/json)')
    }
  }
}

const hostnameOf = (value: string): string | null => {
  try {
    return new URL(value.includes('://') ? value : `http://${value}`).hostname
  } catch {
    return null
  }
}

/** Host and Origin as `host[:port]`, the form a Host header has and `URL.host` gives. */
const hostOf = (value: string): string | null => {
  try {
    return new URL(value.includes('://') ? value : `http://${value}`).host
  } catch {
    return null
  }
}

/**
 * Whether `hostname` may name this broker in a Host header. DNS rebinding makes a page's own name resolve
 * to the broker, so the Host it sends is a name of the attacker's: loopback names and IP literals are
 * therefore safe, and any other name only when the operator listed it (DUO_ALLOWED_HOSTS, e.g. the name a
 * reverse proxy forwards).
 */
export function acceptableHost(hostname: string, allowedHosts: readonly string[]): boolean {
  const bare = hostname.replace(/^\[(.*)\]$/, '$1')
  return isLoopback(hostname) || hostname === 'localhost' || hostname.endsWith('.localhost') || isIP(bare) !== 0 || allowedHosts.includes(hostname)
}

/**
 * Whether a request comes from a page of the broker's own origin (its console): an `Origin` whose host and port
 * are the request's `Host`, and `Sec-Fetch-Site` absent or `same-origin`. For routes that act on a browser's
 * cookie (the console), require this on every request that changes state, on top of `webPageRefusal`.
 */
export function fromOwnOrigin(headers: Headers): boolean {
  const origin = headers.get('origin')
  const site = headers.get('sec-fetch-site')
  return origin !== null && (site === null || site === 'same-origin') && originIsHost(origin, headers.get('host'))
}

/** Whether a web `origin` (scheme, host, port) names the host the request was sent to: the broker's own origin. */
const originIsHost = (origin: string, host: string | null): boolean =>
  host !== null && /^https?:\/\//i.test(origin) && hostOf(origin) === hostOf(host)

/** Host headers judged lately, per policy: a broker is asked under a handful of names, each parsed once. */
const hostVerdicts = new WeakMap<WebPagePolicy, Map<string, boolean>>()
const HOST_VERDICTS_MAX = 64

function hostAccepted(host: string, policy: WebPagePolicy): boolean {
  let verdicts = hostVerdicts.get(policy)
  if (!verdicts) hostVerdicts.set(policy, (verdicts = new Map()))
  let accepted = verdicts.get(host)
  if (accepted === undefined) {
    const name = hostnameOf(host)
    accepted = name !== null && acceptableHost(name, policy.allowedHosts)
    // Bounded: a client sending a new Host each time only ever costs the parse.
    if (verdicts.size >= HOST_VERDICTS_MAX) verdicts.clear()
    verdicts.set(host, accepted)
  }
  return accepted
}

export type WebPagePolicy = {
  /** Check the Host (against DNS rebinding); off only in open mode with DUO_ALLOW_OPEN_NETWORK=1, where a proxy may forward any. */
  checkHost: boolean
  /** Names besides loopback and IP literals that may appear in Host (DUO_ALLOWED_HOSTS). */
  allowedHosts: readonly string[]
}

/**
 * Why a request is refused as coming from a web page, or null. Applied to every request in both modes: a page
 * the operator has open can reach the broker by a cross-site request (a foreign `Origin`, `Sec-Fetch-Site`
 * cross-site or same-site) or by DNS rebinding (a same-origin request to a name of the attacker's, seen in
 * `Host`). The broker's own pages pass: their `Origin` is the broker's own (see `fromOwnOrigin`), and a typed-in
 * address sends `Sec-Fetch-Site: none`. Other local programs send none of these headers.
 */
export function webPageRefusal(headers: Headers, policy: WebPagePolicy, request?: Pick<Request, 'method' | 'url'>): string | null {
  const host = headers.get('host')
  if (policy.checkHost && host !== null && !hostAccepted(host, policy))
    return `this broker does not answer to the name ${JSON.stringify(host.slice(0, 100))} (a web page using DNS rebinding sends such a Host): use 127.0.0.1 or localhost, or list the name in the broker's DUO_ALLOWED_HOSTS`
  // Following a link to the console from another site is a top-level navigation: it carries no cookie of ours
  // (SameSite=Strict) and gets only the console's static page, which shows nothing before sign-in.
  if (request !== undefined && isConsoleNavigation(headers, request)) return null
  const site = headers.get('sec-fetch-site')
  if (site !== null && site !== 'same-origin' && site !== 'none')
    return `requests from other web sites are refused (Sec-Fetch-Site: ${JSON.stringify(site.slice(0, 20))})`
  const origin = headers.get('origin')
  if (origin !== null && !originIsHost(origin, host))
    return `requests from web pages of another origin are refused (Origin ${JSON.stringify(origin.slice(0, 100))}); only the broker's own pages may call it`
  return null
}

/** A browser opening the console page itself (a link followed, a bookmark): GET `/` as a top-level document. */
export function isConsoleNavigation(headers: Headers, request: Pick<Request, 'method' | 'url'>): boolean {
  return (
    request.method === 'GET' &&
    headers.get('sec-fetch-mode') === 'navigate' &&
    headers.get('sec-fetch-dest') === 'document' &&
    headers.get('origin') === null &&
    new URL(request.url).pathname === '/'
  )
}
