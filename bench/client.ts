// The benchmark's client side: JSON calls with keep-alive fetch, a raw-socket SSE reader, statistics.
import { ADMIN_TOKEN } from './procs.ts'

const JSON_HEADERS = { 'content-type': 'application/json' }
export const OPERATOR = { authorization: `Bearer ${ADMIN_TOKEN}` }

export type Reply<T = any> = { status: number; body: T }

export async function post<T = any>(url: string, body: unknown): Promise<Reply<T>> {
  const response = await fetch(url, { method: 'POST', headers: JSON_HEADERS, body: JSON.stringify(body) })
  return { status: response.status, body: (await response.json()) as T }
}

export async function get<T = any>(url: string, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<Reply<T>> {
  const response = await fetch(url, { headers, signal })
  return { status: response.status, body: (await response.json()) as T }
}

/** Runs `fn` over `items` with at most `concurrency` in flight; throws on the first failure. */
export async function pool<T>(items: T[], concurrency: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const i = next++
      await fn(items[i]!, i)
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker))
}

export async function registerAll(base: string, ids: string[]): Promise<void> {
  await pool(ids, 32, async (partnerId) => {
    const reply = await post(`${base}/register`, { partnerId })
    if (reply.status !== 200) throw new Error(`register ${partnerId}: ${reply.status} ${JSON.stringify(reply.body)}`)
  })
}

export type Stats = { n: number; p50: number; p99: number; max: number; mean: number }

export function stats(samples: number[]): Stats {
  if (samples.length === 0) return { n: 0, p50: Number.NaN, p99: Number.NaN, max: Number.NaN, mean: Number.NaN }
  const sorted = Float64Array.from(samples).sort()
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!
  return {
    n: sorted.length,
    p50: at(0.5),
    p99: at(0.99),
    max: sorted[sorted.length - 1]!,
    mean: samples.reduce((a, b) => a + b, 0) / samples.length,
  }
}

/** Polls `/health` until `listening` (partners with a parked listener or an open stream) reaches `n`. */
export async function untilListening(base: string, n: number, deadline: number): Promise<boolean> {
  while (performance.now() < deadline) {
    const health = await get<{ listening: number }>(`${base}/health`)
    if (health.body.listening >= n) return true
    await Bun.sleep(1)
  }
  return false
}

/**
 * One SSE connection on a raw socket: lighter than fetch for a thousand streams, and not held to fetch's
 * default cap of 256 requests in flight. Reports each frame's `id:` as it arrives.
 */
export type SseConnection = { connected: Promise<void>; close(): void; closed: boolean }

export function openSse(base: string, path: string, headers: Record<string, string>, onId: (seq: number) => void): SseConnection {
  const { hostname, port } = new URL(base)
  let pending = ''
  let resolveConnected!: () => void
  let rejectConnected!: (e: Error) => void
  const connected = new Promise<void>((resolve, reject) => {
    resolveConnected = resolve
    rejectConnected = reject
  })
  let isConnected = false
  const connection: SseConnection = { connected, closed: false, close: () => {} }
  const decoder = new TextDecoder('latin1')
  const socketPromise = Bun.connect({
    hostname,
    port: Number(port),
    socket: {
      open(socket) {
        const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')
        socket.write(`GET ${path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nAccept: text/event-stream\r\n${extra}\r\n`)
      },
      data(_socket, bytes) {
        pending += decoder.decode(bytes)
        let newline = pending.lastIndexOf('\n')
        if (newline < 0) return
        const complete = pending.slice(0, newline)
        pending = pending.slice(newline + 1)
        if (!isConnected) {
          if (!complete.startsWith('HTTP/1.1 200')) {
            rejectConnected(new Error(`SSE ${path}: ${complete.split('\n')[0]}`))
            return
          }
          if (complete.includes(': connected')) {
            isConnected = true
            resolveConnected()
          }
        }
        let at = complete.indexOf('id: ')
        while (at >= 0) {
          if (at === 0 || complete.charCodeAt(at - 1) === 10) {
            newline = complete.indexOf('\n', at)
            onId(Number(complete.slice(at + 4, newline < 0 ? undefined : newline)))
          }
          at = complete.indexOf('id: ', at + 4)
        }
      },
      close() {
        connection.closed = true
        if (!isConnected) rejectConnected(new Error(`SSE ${path}: closed before connecting`))
      },
      error(_socket, error) {
        connection.closed = true
        if (!isConnected) rejectConnected(error)
      },
    },
  })
  connection.close = () => {
    void socketPromise.then((s) => s.end()).catch(() => {})
  }
  socketPromise.catch((error) => rejectConnected(error))
  return connection
}
