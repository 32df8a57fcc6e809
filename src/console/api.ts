// The console's calls to its own broker: same-origin fetches that carry the session cookie, errors as the API words them.

export type Partner = {
  id: string
  name: string
  kind?: 'agent' | 'human'
  status: string
  status_message: string | null
  isListening: boolean
  last_seen: string
  reachability?: string
  sessions?: number
}

export type Conversation = {
  id: string
  name: string | null
  type: 'direct' | 'group'
  created_by: string
  created_at: string
  is_archived: boolean
  last_message_seq: number | null
  message_count: number
  participants: string[]
  /** The loop guard stopped agents here; a human message or a resume lets them talk again. */
  is_paused?: boolean
  hops?: number
}

export type Message = {
  id: number
  seq: number
  conversation_id: string
  from_id: string
  from_kind?: 'agent' | 'human'
  content: string
  created_at: string
}

export type Envelope = { seq: number; type: string; at: string; data: Record<string, unknown>; hash: string }

export type Receipt = { partnerId: string; state: string; at: string | null }
export type Receipts = { seq: number; conversationId: string; from: string; recipients: Receipt[] }

export type Session = { auth: 'token' | 'open'; signedIn: boolean; expiresAt: string | null }

export type LogHealth = { last_seq: number; verified_through: number; problem: string | null }

/** A refusal from the broker, with its sentence for a person and its machine-readable reason. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly reason?: string,
  ) {
    super(message)
  }
}

export async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(path, {
    method,
    credentials: 'same-origin',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await response.text()
  let parsed: unknown = null
  try {
    parsed = text ? JSON.parse(text) : null
  } catch {
    parsed = null
  }
  if (!response.ok) {
    const error = parsed as { error?: string; reason?: string } | null
    throw new ApiError(response.status, error?.error ?? `HTTP ${response.status}`, error?.reason)
  }
  return parsed as T
}

export const api = {
  session: () => call<Session>('GET', '/session'),
  signIn: (token: string) => call<Session>('POST', '/session', { token }),
  signOut: () => call<{ success: true }>('DELETE', '/session'),
  partners: () => call<{ partners: Partner[] }>('GET', '/partners'),
  conversations: () => call<{ conversations: Conversation[] }>('GET', '/conversations'),
  messages: (id: string, limit: number, before?: number) =>
    call<{ messages: Message[] }>(
      'GET',
      `/conversations/${encodeURIComponent(id)}/messages?limit=${limit}${before === undefined ? '' : `&before=${before}`}`,
    ),
  events: (after: number, limit: number) => call<{ events: Envelope[]; next: number }>('GET', `/events?after=${after}&limit=${limit}`),
  logHealth: () => call<LogHealth>('GET', '/log/health'),
  receipts: (seq: number) => call<Receipts>('GET', `/messages/${seq}/receipts`),
  registerHuman: (partnerId: string) => call<unknown>('POST', '/register', { partnerId, kind: 'human' }),
  talk: (body: { fromId: string; to?: string; conversationId?: string; content: string }) =>
    call<{ conversationId: string; seq: number }>('POST', '/talk', body),
  createGroup: (creatorId: string, name: string, participants: string[]) =>
    call<{ conversation: { id: string } }>('POST', '/conversations', { creatorId, name, participants }),
  addMember: (conversationId: string, byId: string, member: string) =>
    call<unknown>('POST', `/conversations/${encodeURIComponent(conversationId)}/members`, { partnerId: byId, members: [member] }),
  removeMember: (conversationId: string, byId: string, member: string) =>
    call<unknown>('DELETE', `/conversations/${encodeURIComponent(conversationId)}/members`, { partnerId: byId, members: [member] }),
  /** As the operator (the session): no partner named. */
  pause: (conversationId: string) => call<unknown>('POST', `/conversations/${encodeURIComponent(conversationId)}/pause`, {}),
  resume: (conversationId: string) => call<unknown>('POST', `/conversations/${encodeURIComponent(conversationId)}/resume`, {}),
}
