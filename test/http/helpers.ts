// Shared helpers for the HTTP tests: a real broker on loopback with a temporary database, and small callers.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type BrokerConfig, configFromEnv } from '../../src/http/config.ts'
import { NO_RATE_LIMITS, RATE_LIMIT_DEFAULTS } from '../../src/http/rate-limits.ts'
import { type RunningBroker, startBroker } from '../../src/http/server.ts'

/** For load tests: thousands of messages between two agents, as the benchmark sends (no loop guard, no rate limits). */
export const LOAD: Partial<BrokerConfig> = { maxHops: 0, rateLimits: NO_RATE_LIMITS }
/** For tests that register more new partners from one address than the registration limit allows in a minute. */
export const MANY_PARTNERS: Partial<BrokerConfig> = { rateLimits: { ...RATE_LIMIT_DEFAULTS, register: 0 } }
/** The same for a broker process. */
export const LOAD_ENV = { DUO_MAX_HOPS: '0', DUO_RATE_LIMITS: 'off' }

export type Reply<T = any> = { status: number; body: T; headers: Headers }

export type TestBroker = RunningBroker & {
  dir: string
  dbPath: string
  /** Calls the broker; `body` is sent as JSON when given. The reply body is parsed JSON (or the raw text). */
  call<T = any>(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<Reply<T>>
  get<T = any>(path: string, headers?: Record<string, string>): Promise<Reply<T>>
  post<T = any>(path: string, body?: unknown, headers?: Record<string, string>): Promise<Reply<T>>
  /** Registers partners (open mode) and returns nothing; throws on refusal. */
  register(...ids: string[]): Promise<void>
  /** Sends a message and returns the broker's answer; throws on refusal. */
  talk(fromId: string, target: { to?: string; conversationId?: string }, content: string): Promise<TalkReply>
  /** The current last seq of the log (from /health). */
  lastSeq(): Promise<number>
  /** Resolves once at least `n` listeners are parked waiting for a commit; throws after 5 s saying how many are. */
  untilParked(n: number): Promise<void>
  /** Stops the broker and removes its temporary directory. */
  close(): Promise<void>
}

export type TalkReply = { success: true; conversationId: string; messageId: number; seq: number; notified: number; queued: number }

export type Message = {
  id: number
  seq: number
  conversation_id: string
  from_id: string
  from_kind?: 'agent' | 'human'
  content: string
  created_at: string
}

/** The parsed JSON of a reply body, or its raw text when it is not JSON. */
export function parseOrText(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

export function tempDir(prefix = 'duo-http-'): string {
  return mkdtempSync(join(tmpdir(), prefix))
}

/** JSON calls to a broker at `url` (in this process or another), and the few every test needs. */
export function clientOf(url: string) {
  const call = async <T = any>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply<T>> => {
    const response = await fetch(url + path, {
      method,
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    })
    return { status: response.status, body: parseOrText(await response.text()) as T, headers: response.headers }
  }
  return {
    call,
    get: <T = any>(path: string, headers?: Record<string, string>) => call<T>('GET', path, undefined, headers),
    post: <T = any>(path: string, body?: unknown, headers?: Record<string, string>) => call<T>('POST', path, body ?? {}, headers),
    async register(...ids: string[]): Promise<void> {
      for (const partnerId of ids) {
        const reply = await call('POST', '/register', { partnerId })
        if (reply.status !== 200) throw new Error(`register ${partnerId}: ${reply.status} ${JSON.stringify(reply.body)}`)
      }
    },
    async talk(fromId: string, target: { to?: string; conversationId?: string }, content: string): Promise<TalkReply> {
      const reply = await call('POST', '/talk', { fromId, ...target, content })
      if (reply.status !== 200) throw new Error(`talk ${fromId}: ${reply.status} ${JSON.stringify(reply.body)}`)
      return reply.body
    },
    async lastSeq(): Promise<number> {
      return (await call('GET', '/health')).body.last_seq
    },
  }
}

export async function startTestBroker(overrides: Partial<BrokerConfig> = {}, now?: () => Date): Promise<TestBroker> {
  const dir = tempDir()
  const dbPath = join(dir, 'duo.db')
  const broker = await startBroker({
    ...configFromEnv({}),
    host: '127.0.0.1',
    port: 0,
    dbPath,
    auth: 'open',
    sync: 'normal',
    ...overrides,
  }, now)
  const test: TestBroker = {
    ...broker,
    ...clientOf(broker.url),
    dir,
    dbPath,
    async untilParked(n) {
      if (!(await eventually(() => broker.parked() >= n, 5000, 2)))
        throw new Error(`expected ${n} parked listeners within 5 s, ${broker.parked()} are`)
    },
    async close() {
      await broker.stop()
      rmSync(dir, { recursive: true, force: true })
    },
  }
  return test
}

/** Resolves after `ms` milliseconds. */
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Whether `promise` is still pending after `ms` milliseconds. */
export async function stillPending(promise: Promise<unknown>, ms: number): Promise<boolean> {
  const pending = Symbol('pending')
  return (await Promise.race([promise.then(() => null, () => null), sleep(ms).then(() => pending)])) === pending
}

/** Polls `check` until it returns true or `ms` pass. */
export async function eventually(check: () => Promise<boolean> | boolean, ms = 3000, every = 20): Promise<boolean> {
  const until = Date.now() + ms
  while (Date.now() < until) {
    if (await check()) return true
    await sleep(every)
  }
  return check()
}

export type SseFrame = { id?: string; event?: string; data?: string; comment?: string }

/**
 * Reads a `text/event-stream` body: `text` is every byte received so far as text; `frames` the parsed frames
 * (comments included, as `{comment}`). `until` resolves once a predicate over the frames holds (or rejects after `ms`).
 */
export function readSse(response: Response) {
  const reader = response.body!.getReader()
  const decoder = new TextDecoder()
  const state = { text: '', frames: [] as SseFrame[], done: false }
  let parsedUpTo = 0
  const waiters = new Set<() => void>()
  const pump = (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read()
        if (done) break
        state.text += decoder.decode(value, { stream: true })
        let end: number
        while ((end = state.text.indexOf('\n\n', parsedUpTo)) !== -1) {
          const block = state.text.slice(parsedUpTo, end)
          parsedUpTo = end + 2
          const frame: SseFrame = {}
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) frame.comment = line.slice(1).trim()
            else {
              const colon = line.indexOf(':')
              const field = line.slice(0, colon) as 'id' | 'event' | 'data'
              frame[field] = line.slice(colon + 1).replace(/^ /, '')
            }
          }
          state.frames.push(frame)
        }
        for (const wake of waiters) wake()
      }
    } catch {
      // aborted
    } finally {
      state.done = true
      for (const wake of waiters) wake()
    }
  })()
  return {
    state,
    /** The `data` of every `message`-like frame (not comments), parsed as JSON. */
    data: <T = any>(): T[] => state.frames.filter((f) => f.data !== undefined).map((f) => JSON.parse(f.data!) as T),
    async until(predicate: (frames: SseFrame[]) => boolean, ms = 5000): Promise<void> {
      const deadline = Date.now() + ms
      while (!predicate(state.frames)) {
        if (state.done) throw new Error(`stream ended before the condition held; got:\n${state.text.slice(-2000)}`)
        const left = deadline - Date.now()
        if (left <= 0) throw new Error(`timed out waiting on the stream; got:\n${state.text.slice(-2000)}`)
        await new Promise<void>((resolve) => {
          const wake = () => {
            waiters.delete(wake)
            clearTimeout(timer)
            resolve()
          }
          const timer = setTimeout(wake, left)
          waiters.add(wake)
        })
      }
    },
    async cancel(): Promise<void> {
      await reader.cancel().catch(() => {})
      await pump
    },
  }
}
