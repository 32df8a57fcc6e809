// A real token-mode broker on loopback for the access and hostile-input tests, plus a raw-socket caller.
import { expect } from 'bun:test'
import { connect } from 'node:net'
import type { BrokerConfig } from '../../src/http/config.ts'
import type { RunningBroker } from '../../src/http/server.ts'
import { parseOrText, startTestBroker } from './helpers.ts'

/** Ids that try to be paths: dot segments, encoded slashes, NUL, bad escapes, unicode. Each must be a 400. */
export const ID_PATH_TRICKS = [
  '..%2F..%2Fetc',
  '..%2F..%2F..%2Fetc%2Fpasswd',
  '%2E%2E%2F',
  'alice%2Fstream',
  '%252e%252e%252f',
  'a%00b',
  '%E0%A4%A',
  '%ZZ',
  '%F0%9F%98%80',
  '%C3%A9t%C3%A9',
  '.env',
]

export type Answer = { status: number; body: any; text: string; type: string | null }

export type SecureBroker = RunningBroker & {
  dir: string
  dbPath: string
  /** fetch + read: `body` is sent as JSON unless it is a string or bytes; `token` becomes a bearer header. */
  call(method: string, path: string, options?: { body?: unknown; token?: string; headers?: Record<string, string> }): Promise<Answer>
  /** Registers a new partner and returns its token. */
  register(partnerId: string): Promise<string>
  lastSeq(): Promise<number>
  untilParked(n: number): Promise<void>
  close(): Promise<void>
}

export async function startSecureBroker(overrides: Partial<BrokerConfig> = {}): Promise<SecureBroker> {
  const broker = await startTestBroker({ auth: 'token', ...overrides })
  const call: SecureBroker['call'] = async (method, path, options = {}) => {
    const headers: Record<string, string> = { ...options.headers }
    if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`
    let body: string | Uint8Array | undefined
    if (options.body !== undefined) {
      if (typeof options.body === 'string' || options.body instanceof Uint8Array) body = options.body
      else body = JSON.stringify(options.body)
      headers['content-type'] ??= 'application/json'
    }
    const response = await fetch(broker.url + path, { method, headers, body, signal: AbortSignal.timeout(10_000) })
    const text = await response.text()
    return { status: response.status, body: parseOrText(text), text, type: response.headers.get('content-type') }
  }
  return {
    ...broker,
    call,
    async register(partnerId) {
      const answer = await call('POST', '/register', { body: { partnerId } })
      if (answer.status !== 200 || typeof answer.body.token !== 'string')
        throw new Error(`register ${partnerId}: ${answer.status} ${answer.text}`)
      return answer.body.token
    },
  }
}

/** Sends raw bytes on one connection (for what fetch will not send: duplicate headers, raw paths) and returns the status line's code and the body. */
export function rawRequest(port: number, text: string): Promise<{ status: number; head: string; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(text))
    let received = ''
    const done = () => {
      clearTimeout(timer)
      socket.destroy()
      const split = received.indexOf('\r\n\r\n')
      const head = split === -1 ? received : received.slice(0, split)
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0)
      resolve({ status, head, body: split === -1 ? '' : received.slice(split + 4) })
    }
    const timer = setTimeout(done, 3000)
    socket.on('data', (chunk) => {
      received += chunk.toString('utf8')
      // Responses here are small and sent whole; stop once the declared length has arrived.
      const split = received.indexOf('\r\n\r\n')
      const length = /content-length: (\d+)/i.exec(received.slice(0, split))?.[1]
      if (split !== -1 && length !== undefined && Buffer.byteLength(received.slice(split + 4)) >= Number(length)) done()
    })
    socket.on('close', done)
    socket.on('error', reject)
  })
}

/** Asserts a refusal in the contract's shape: this status, JSON, a non-empty `error` sentence (a failure shows the reply). */
export function expectRefusal(answer: Answer, status: number): void {
  const sentence = typeof answer.body?.error === 'string' && answer.body.error.length > 0
  // Every refusal also names its kind for programs, in snake_case (`invalid_request`, `request_too_large`, ...).
  const reason = typeof answer.body?.reason === 'string' && /^[a-z]+(_[a-z]+)*$/.test(answer.body.reason)
  expect({
    status: answer.status,
    json: (answer.type ?? '').startsWith('application/json'),
    error: sentence ? 'a sentence' : answer.text,
    reason: reason ? 'a reason' : answer.body?.reason,
  }).toEqual({ status, json: true, error: 'a sentence', reason: 'a reason' })
}
