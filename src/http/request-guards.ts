// Hostile-input guards that run before any route: JSON-only bodies within the size and nesting limits, and no browsers in open mode.
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

/**
 * Open mode on loopback trusts whoever reaches the port, and a web page the operator has open can reach it
 * too: by a cross-site request (Origin, Sec-Fetch-Site) or by DNS rebinding (a foreign Host). Such requests
 * are refused; other local programs send none of these signs. Returns why, or null. `checkHost` is off when
 * DUO_ALLOW_OPEN_NETWORK=1, where a reverse proxy on the same machine may forward any Host.
 */
export function browserRefusal(headers: Headers, checkHost = true): string | null {
  const origin = headers.get('origin')
  if (origin !== null && origin !== 'null' && !isLoopback(hostnameOf(origin) ?? ''))
    return `requests from web pages (Origin ${JSON.stringify(origin.slice(0, 100))}) are refused by a broker in open mode`
  if (origin === 'null' || headers.get('sec-fetch-site') === 'cross-site')
    return 'cross-site requests from web pages are refused by a broker in open mode'
  const host = headers.get('host')
  if (checkHost && host !== null && !isLoopback(hostnameOf(host) ?? ''))
    return `a broker in open mode on loopback answers only to loopback names, not Host ${JSON.stringify(host.slice(0, 100))} (use token mode, or DUO_ALLOW_OPEN_NETWORK=1)`
  return null
}
