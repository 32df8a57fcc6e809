// Typed HTTP client of the broker: the only way the partner reaches it. Failures are values, never exceptions.
import { z } from 'zod'
import {
  AckResponse,
  ConversationsResponse,
  CreateGroupResponse,
  HealthResponse,
  HistoryResponse,
  LeaveResponse,
  ListenResponse,
  MembersResponse,
  RenameResponse,
  PartnersResponse,
  RegisterResponse,
  Success,
  TalkResponse,
  UnseenResponse,
} from '../wire/responses.ts'

export { ConversationEntry as ConversationView, MessageView, PartnerView } from '../wire/responses.ts'
export type { ListenResponse as Listened, TalkResponse as Talked } from '../wire/responses.ts'
export type DeliveryMark = { conversationId: string; seq: number }

export type BrokerError =
  /** Nothing answered: the broker is down, or the network failed before a reply. */
  | { kind: 'unreachable'; message: string }
  | { kind: 'rejected'; status: number; message: string; body: unknown }
  | { kind: 'invalid_response'; message: string }
export type BrokerResult<T> = { ok: true; value: T } | { ok: false; error: BrokerError }

type Retry = 'idempotent' | 'connect-only' | 'never'
type RequestOptions = {
  body?: unknown
  headers?: Record<string, string>
  timeoutMs?: number
  signal?: AbortSignal
  retry?: Retry
  /** The bearer token to send: the current one when undefined, none when null. */
  auth?: string | null
}

export type BrokerClientOptions = {
  /** One broker, or several serving one log (PostgreSQL): the client fails over to the next when one is down. */
  baseUrl: string | string[]
  /** The current token (read on each request: it changes when the partner registers again). */
  token: () => string | undefined
  fetch?: typeof fetch
  /** Pauses before the 2nd and 3rd attempt of a retryable request. */
  retryDelaysMs?: number[]
}

const isRefused = (error: unknown) => (error as { code?: string })?.code === 'ECONNREFUSED'

export function createBrokerClient(options: BrokerClientOptions) {
  const doFetch = options.fetch ?? fetch
  const delays = options.retryDelaysMs ?? [150, 500]
  const enc = encodeURIComponent
  const urls = Array.isArray(options.baseUrl) ? options.baseUrl : [options.baseUrl]
  let current = 0

  /**
   * Fetches from the current broker. A refused connection (nothing was sent) goes straight on to the next
   * broker of the list; any other failure to get an answer moves the client to the next broker for the
   * following request, and the caller's retry policy decides whether to send this one again there.
   */
  async function fetchAny(path: string, init: RequestInit, cancelled?: AbortSignal): Promise<Response> {
    for (let tried = 1; ; tried++) {
      const at = current
      try {
        const response = await doFetch(`${urls[at]}${path}`, init)
        // A broker stopping (or cut off from its database) answers 503: the next request goes to another one.
        if (response.status === 503 && urls.length > 1 && current === at) current = (at + 1) % urls.length
        return response
      } catch (error) {
        // The caller giving up is no sign of a broker down; a timeout is.
        if (urls.length > 1 && current === at && !cancelled?.aborted) current = (at + 1) % urls.length
        if (!isRefused(error) || tried >= urls.length) throw error
      }
    }
  }

  async function attempt<T>(schema: z.ZodType<T>, method: string, path: string, o: RequestOptions) {
    const headers: Record<string, string> = { accept: 'application/json', ...o.headers }
    const token = o.auth === undefined ? options.token() : o.auth
    if (token) headers.authorization = `Bearer ${token}`
    if (o.body !== undefined) headers['content-type'] = 'application/json'
    const timeout = AbortSignal.timeout(o.timeoutMs ?? 10_000)
    let response: Response
    try {
      response = await fetchAny(path, {
        method,
        headers,
        body: o.body === undefined ? undefined : JSON.stringify(o.body),
        signal: o.signal ? AbortSignal.any([o.signal, timeout]) : timeout,
      }, o.signal)
    } catch (error) {
      const message = isRefused(error) ? 'connection refused' : (error as Error).message
      return { result: { ok: false, error: { kind: 'unreachable', message } } as const, refused: isRefused(error) }
    }
    const text = await response.text().catch(() => '')
    let body: unknown
    try {
      body = text === '' ? undefined : JSON.parse(text)
    } catch {
      body = text
    }
    if (!response.ok) {
      const said = (body as { error?: unknown })?.error
      const message = typeof said === 'string' ? said : text.slice(0, 300) || response.statusText
      return { result: { ok: false, error: { kind: 'rejected', status: response.status, message, body } } as const }
    }
    const parsed = schema.safeParse(body)
    if (!parsed.success) {
      const message = `unexpected answer to ${method} ${path}: ${parsed.error.issues[0]?.message ?? 'invalid'}`
      return { result: { ok: false, error: { kind: 'invalid_response', message } } as const }
    }
    return { result: { ok: true, value: parsed.data } as const }
  }

  async function request<T>(schema: z.ZodType<T>, method: string, path: string, o: RequestOptions = {}): Promise<BrokerResult<T>> {
    const retry = o.retry ?? (method === 'GET' ? 'idempotent' : 'connect-only')
    for (let i = 0; ; i++) {
      const { result, refused } = await attempt(schema, method, path, o)
      if (result.ok || i >= delays.length || o.signal?.aborted) return result
      const transient =
        result.error.kind === 'unreachable' ||
        (result.error.kind === 'rejected' && [502, 503, 504].includes(result.error.status))
      const again = retry === 'idempotent' ? transient : retry === 'connect-only' ? refused === true : false
      if (!again) return result
      await Bun.sleep(delays[i] ?? 0)
    }
  }

  return {
    /** The broker the client talks to now. */
    get baseUrl(): string {
      return urls[current]!
    },
    register: (body: { partnerId: string; name?: string; projectPath?: string; rename?: boolean }, token?: string | null) =>
      // `token: null` registers without credentials: the first registration of an id, or after a reset broker.
      request(RegisterResponse, 'POST', '/register', {
        body,
        retry: 'idempotent',
        auth: token,
      }),
    unregister: (partnerId: string, sessionId?: string, timeoutMs = 2000) =>
      request(Success, 'POST', '/unregister', { body: { partnerId, sessionId }, timeoutMs, retry: 'never' }),
    /** Sends a message; `idempotencyKey` makes every retry of this call the same message. */
    talk: (body: { fromId: string; to?: string; conversationId?: string; content: string; idempotencyKey: string }) =>
      request(TalkResponse, 'POST', '/talk', {
        body,
        headers: { 'idempotency-key': body.idempotencyKey },
        retry: 'idempotent',
      }),
    /** Long-poll: messages with seq > after, at once if any, else waits up to `waitS` seconds. 409 if `after` is past the log. */
    listen: (partnerId: string, q: { after: number; waitS: number; conversationId?: string }, signal?: AbortSignal) =>
      request(
        ListenResponse,
        'GET',
        `/listen/${enc(partnerId)}?after=${q.after}&wait=${Math.round(q.waitS)}${q.conversationId ? `&conversationId=${enc(q.conversationId)}` : ''}`,
        { signal, timeoutMs: q.waitS * 1000 + 15_000, retry: 'never' },
      ),
    ack: (partnerId: string, cursor: number, conversationId?: string) =>
      request(AckResponse, 'POST', `/listen/${enc(partnerId)}/ack`, { body: { cursor, conversationId }, retry: 'idempotent' }),
    /** Messages the session was not shown in any way yet (seq > after); with `waitS`, waits for one as the wake hook. */
    unseen: (partnerId: string, q: { after: number; waitS: number; timeoutMs?: number }, signal?: AbortSignal) =>
      request(UnseenResponse, 'GET', `/listen/${enc(partnerId)}/unseen?after=${q.after}&wait=${Math.round(q.waitS)}`, {
        signal,
        timeoutMs: q.timeoutMs ?? q.waitS * 1000 + 15_000,
        retry: 'never',
      }),
    /** Records that messages up to each mark were pushed into the session or surfaced to its model. */
    report: (partnerId: string, state: 'pushed' | 'surfaced', marks: DeliveryMark[], timeoutMs?: number) =>
      request(Success, 'POST', `/listen/${enc(partnerId)}/report`, { body: { state, marks }, timeoutMs, retry: 'idempotent' }),
    /**
     * Opens the SSE stream of the partner's messages after `after`; the caller reads (and cancels) the body.
     * `session` says what this process is to the broker: one whose client accepts channel pushes, or not.
     */
    async stream(
      partnerId: string,
      after: number,
      signal: AbortSignal,
      session?: { kind: 'push' | 'connected'; id: string },
    ): Promise<BrokerResult<Response>> {
      const token = options.token()
      const as = session ? `&session=${session.kind}&sessionId=${enc(session.id)}` : ''
      try {
        const response = await fetchAny(`/listen/${enc(partnerId)}/stream?after=${after}${as}`, {
          headers: { accept: 'text/event-stream', ...(token ? { authorization: `Bearer ${token}` } : {}) },
          signal,
        }, signal)
        if (response.ok) return { ok: true, value: response }
        const body = (await response.json().catch(() => ({}))) as { error?: string }
        return { ok: false, error: { kind: 'rejected', status: response.status, message: body.error ?? response.statusText, body } }
      } catch (error) {
        return { ok: false, error: { kind: 'unreachable', message: (error as Error).message } }
      }
    },
    createConversation: (body: { creatorId: string; name: string; participants: string[] }) =>
      request(CreateGroupResponse, 'POST', '/conversations', { body }),
    conversations: (partnerId: string) =>
      request(ConversationsResponse, 'GET', `/conversations/${enc(partnerId)}`),
    leave: (conversationId: string, partnerId: string) =>
      request(LeaveResponse, 'POST', `/conversations/${enc(conversationId)}/leave`, { body: { partnerId }, retry: 'idempotent' }),
    /** Adds partners to a group; adding a current member again is nothing, so a retry is harmless. */
    addMembers: (conversationId: string, partnerId: string, members: string[]) =>
      request(MembersResponse, 'POST', `/conversations/${enc(conversationId)}/members`, {
        body: { partnerId, members },
        retry: 'idempotent',
      }),
    rename: (conversationId: string, partnerId: string, name: string) =>
      request(RenameResponse, 'POST', `/conversations/${enc(conversationId)}/rename`, { body: { partnerId, name }, retry: 'idempotent' }),
    history: (conversationId: string, limit?: number) =>
      request(HistoryResponse, 'GET', `/conversations/${enc(conversationId)}/messages${limit ? `?limit=${limit}` : ''}`),
    /** One page of partners by id (the broker's default size unless `limit`); `next_after_id` is set when more follow. */
    partners: (q: { limit?: number; afterId?: string } = {}) => {
      const params = new URLSearchParams()
      if (q.limit) params.set('limit', String(q.limit))
      if (q.afterId) params.set('after_id', q.afterId)
      const query = params.size > 0 ? `?${params}` : ''
      return request(PartnersResponse, 'GET', `/partners${query}`)
    },
    setStatus: (partnerId: string, message: string | null) =>
      request(Success, 'POST', `/partners/${enc(partnerId)}/status`, { body: { message }, retry: 'idempotent' }),
    setNotifications: (partnerId: string, enabled: boolean) =>
      request(Success, 'POST', `/partners/${enc(partnerId)}/notifications`, { body: { enabled }, retry: 'idempotent' }),
    health: () => request(HealthResponse, 'GET', '/health', { retry: 'never', timeoutMs: 2000 }),
  }
}
export type BrokerClient = ReturnType<typeof createBrokerClient>
