// The console's state: loaded once from the API, then kept current by the event stream (no reload, no polling of messages).
import { api, ApiError, type Conversation, type Envelope, type LogHealth, type Message, type Partner, type Receipts } from './api.ts'
import { followStream } from './sse.ts'

/** At most this many events stay in memory; older ones are a page away in /events. */
const MAX_EVENTS = 20_000
const MESSAGE_PAGE = 1000

export type ReceiptState = Receipts | 'loading' | 'unavailable' | { error: string }

export type State = {
  session: { auth: 'token' | 'open'; signedIn: boolean } | null
  stream: { state: 'idle' | 'live' | 'reconnecting' | 'refused'; detail?: string }
  partners: Partner[]
  conversations: Map<string, Conversation>
  selected: string | null
  /** Per loaded conversation: its messages, oldest first; `complete` once the first message is loaded. */
  messages: Map<string, { list: Message[]; complete: boolean }>
  events: Envelope[]
  oldestEventSeq: number
  lastSeq: number
  health: LogHealth | null
  receipts: Map<number, ReceiptState>
  /** null until the first receipt request says whether the broker has them. */
  receiptsAvailable: boolean | null
  humanId: string
  notice: { text: string; error: boolean } | null
}

type Listener = () => void

/** Everything the console shows, empty: the state before sign-in and after sign-out. */
const blank = (): Omit<State, 'session' | 'humanId' | 'notice'> => ({
  stream: { state: 'idle' },
  partners: [],
  conversations: new Map(),
  selected: null,
  messages: new Map(),
  events: [],
  oldestEventSeq: 0,
  lastSeq: 0,
  health: null,
  receipts: new Map(),
  receiptsAvailable: null,
})

export function createStore() {
  let state: State = { ...blank(), session: null, humanId: localStorage.getItem('duo.humanId') || 'human', notice: null }
  const listeners = new Set<Listener>()
  let scheduled = false
  let live: AbortController | null = null
  const timers = new Map<string, ReturnType<typeof setTimeout>>()
  let wanted: number[] = []

  function set(patch: Partial<State>): void {
    state = { ...state, ...patch }
    // One render per frame, however many events arrive in it.
    if (scheduled) return
    scheduled = true
    queueMicrotask(() => {
      scheduled = false
      for (const listener of listeners) listener()
    })
  }

  /** Runs `fn` at most once per `ms` for `key`, trailing. */
  function throttle(key: string, ms: number, fn: () => void): void {
    if (timers.has(key)) return
    timers.set(
      key,
      setTimeout(() => {
        timers.delete(key)
        fn()
      }, ms),
    )
  }

  const fail = (error: unknown) => {
    // The session expired or was ended elsewhere (or the broker restarted): back to the sign-in form, shown nothing.
    if (error instanceof ApiError && error.status === 401 && state.session?.auth === 'token' && state.session.signedIn)
      return signedOut('your session has ended (it expired, was signed out, or the broker restarted): sign in again')
    const text = error instanceof ApiError ? error.message : `the broker could not be reached: ${(error as Error).message}`
    set({ notice: { text, error: true } })
  }

  function signedOut(why: string | null): void {
    live?.abort()
    for (const timer of timers.values()) clearTimeout(timer)
    timers.clear()
    set({ ...blank(), session: { auth: state.session?.auth ?? 'token', signedIn: false }, notice: why ? { text: why, error: true } : null })
  }

  async function refreshPartners(): Promise<void> {
    try {
      set({ partners: (await api.partners()).partners })
    } catch (error) {
      fail(error)
    }
  }

  async function refreshConversations(): Promise<void> {
    try {
      const { conversations } = await api.conversations()
      set({ conversations: new Map(conversations.map((c) => [c.id, c])) })
    } catch (error) {
      fail(error)
    }
  }

  async function refreshHealth(): Promise<void> {
    try {
      set({ health: await api.logHealth() })
    } catch (error) {
      fail(error)
    }
  }

  function onEvent(event: Envelope): void {
    const events = state.events.length >= MAX_EVENTS ? state.events.slice(-MAX_EVENTS / 2) : state.events.slice()
    events.push(event)
    const patch: Partial<State> = { events, lastSeq: event.seq, oldestEventSeq: events[0]!.seq }
    const d = event.data as Record<string, any>
    if (event.type === 'MessageSent') {
      const conversations = new Map(state.conversations)
      const c = conversations.get(d.conversationId)
      if (c) conversations.set(c.id, { ...c, last_message_seq: event.seq, message_count: c.message_count + 1 })
      patch.conversations = conversations
      const loaded = state.messages.get(d.conversationId)
      // The stream may replay a message the page load already brought.
      if (loaded && (loaded.list.at(-1)?.seq ?? 0) < event.seq) {
        const message: Message = {
          id: event.seq,
          seq: event.seq,
          conversation_id: d.conversationId,
          from_id: d.fromId,
          from_kind: d.fromKind ?? 'agent',
          content: d.content,
          created_at: event.at,
        }
        patch.messages = new Map(state.messages).set(d.conversationId, { ...loaded, list: [...loaded.list, message] })
      }
    } else if (event.type === 'ConversationCreated') {
      patch.conversations = new Map(state.conversations).set(d.conversationId, {
        id: d.conversationId,
        name: d.name,
        type: d.kind,
        created_by: d.createdBy,
        created_at: event.at,
        is_archived: false,
        last_message_seq: null,
        message_count: 0,
        participants: d.participants,
      })
    } else if (typeof d.conversationId === 'string') {
      // Membership, archiving, pauses and delivery: the server's view is the truth, read again shortly.
      throttle('conversations', 150, refreshConversations)
      if (state.receipts.size > 0) {
        const receipts = new Map(state.receipts)
        for (const [seq, r] of receipts) if (typeof r === 'object' && 'conversationId' in r && r.conversationId === d.conversationId) receipts.delete(seq)
        patch.receipts = receipts
        // Delivery moved (read positions, pushes, surfacing): the rows in view ask again, once per burst.
        throttle('receipts', 200, () => {
          for (const seq of wanted) void store.receipts(seq)
        })
      }
    }
    if (event.type.startsWith('Partner') || event.type === 'NotificationsSwitched') throttle('partners', 150, refreshPartners)
    throttle('health', 1000, refreshHealth)
    set(patch)
  }

  async function select(id: string | null): Promise<void> {
    set({ selected: id })
    history.replaceState(null, '', id === null ? '#' : `#c=${encodeURIComponent(id)}`)
    if (id === null || state.messages.has(id)) return
    // A placeholder first: messages that arrive while the page loads are appended to it, so none falls between.
    set({ messages: new Map(state.messages).set(id, { list: [], complete: false }) })
    try {
      const { messages } = await api.messages(id, MESSAGE_PAGE)
      // Messages that arrived live while the page loaded are kept, once.
      const live = state.messages.get(id)?.list ?? []
      const list = [...messages, ...live.filter((m) => m.seq > (messages.at(-1)?.seq ?? 0))]
      set({ messages: new Map(state.messages).set(id, { list, complete: messages.length < MESSAGE_PAGE }) })
    } catch (error) {
      fail(error)
    }
  }

  async function start(): Promise<void> {
    // Everything at once: a linked conversation's messages load beside the lists instead of after them.
    const linked = /^#c=(.+)$/.exec(location.hash)?.[1]
    const opening = linked ? select(decodeURIComponent(linked)) : undefined
    const [health, partners, conversations] = await Promise.all([api.logHealth(), api.partners(), api.conversations()])
    set({
      health,
      lastSeq: Math.max(state.lastSeq, health.last_seq),
      partners: partners.partners,
      conversations: new Map(conversations.conversations.map((c) => [c.id, c])),
    })
    const from = Math.max(0, health.last_seq - 500)
    const { events } = await api.events(from, 500)
    set({ events: [...events, ...state.events.filter((e) => e.seq > health.last_seq)], oldestEventSeq: events[0]?.seq ?? health.last_seq + 1 })
    live?.abort()
    live = new AbortController()
    const signal = live.signal
    void followStream(
      `/events/stream?after=${health.last_seq}`,
      (frame) => {
        try {
          onEvent(JSON.parse(frame.data) as Envelope)
        } catch {}
      },
      signal,
      (streamState, detail, status) => {
        if (streamState === 'refused' && status === 401 && state.session?.auth === 'token')
          return signedOut(`the live stream was refused (${detail ?? 'no reason given'}): sign in again`)
        set({ stream: { state: streamState, detail } })
      },
    )
    await opening
    // Presence moves without events (listeners come and go): read it again now and then.
    const presence = setInterval(() => void refreshPartners(), 5000)
    signal.addEventListener('abort', () => clearInterval(presence))
  }

  const store = {
    get: () => state,
    subscribe(listener: Listener): () => void {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    notify: (text: string, error = false) => set({ notice: { text, error } }),
    dismiss: () => set({ notice: null }),
    async boot(): Promise<void> {
      try {
        const session = await api.session()
        set({ session })
        if (session.signedIn) await start()
      } catch (error) {
        fail(error)
      }
    },
    async signIn(token: string): Promise<void> {
      try {
        const session = await api.signIn(token)
        set({ session, notice: null })
        await start()
      } catch (error) {
        fail(error)
      }
    },
    async signOut(): Promise<void> {
      live?.abort()
      try {
        await api.signOut()
      } catch {}
      signedOut(null)
    },
    select,
    /** Loads the page of messages before the oldest one loaded. */
    async older(id: string): Promise<void> {
      const loaded = state.messages.get(id)
      if (!loaded || loaded.complete || timers.has(`older:${id}`)) return
      timers.set(`older:${id}`, setTimeout(() => {}, 0))
      try {
        const { messages } = await api.messages(id, MESSAGE_PAGE, loaded.list[0]?.seq)
        const now = state.messages.get(id)!
        set({ messages: new Map(state.messages).set(id, { list: [...messages, ...now.list], complete: messages.length < MESSAGE_PAGE }) })
      } catch (error) {
        fail(error)
      } finally {
        timers.delete(`older:${id}`)
      }
    },
    /** Loads the page of events before the oldest one held. */
    async olderEvents(): Promise<void> {
      if (state.oldestEventSeq <= 1 || timers.has('olderEvents')) return
      timers.set('olderEvents', setTimeout(() => {}, 0))
      try {
        const from = Math.max(0, state.oldestEventSeq - 1 - 1000)
        const { events } = await api.events(from, state.oldestEventSeq - 1 - from)
        set({ events: [...events, ...state.events], oldestEventSeq: events[0]?.seq ?? 1 })
      } catch (error) {
        fail(error)
      } finally {
        timers.delete('olderEvents')
      }
    },
    /** Delivery states for the messages in view; asks again for them once the broker said it has receipts. */
    wantReceipts(seqs: number[]): void {
      wanted = seqs
      for (const seq of seqs) void this.receipts(seq)
    },
    async receipts(seq: number): Promise<void> {
      if (state.receipts.has(seq) || state.receiptsAvailable === false) return
      // Until one answer says whether the broker has receipts, only one request is in flight.
      if (state.receiptsAvailable === null && [...state.receipts.values()].includes('loading')) return
      set({ receipts: new Map(state.receipts).set(seq, 'loading') })
      try {
        const receipts = await api.receipts(seq)
        const first = state.receiptsAvailable === null
        set({ receipts: new Map(state.receipts).set(seq, receipts), receiptsAvailable: true })
        if (first) for (const other of wanted) void this.receipts(other)
      } catch (error) {
        // A broker without the endpoint answers "no such endpoint": say so once, and stop asking.
        if (error instanceof ApiError && error.status === 404 && /no such endpoint/.test(error.message))
          set({ receipts: new Map(state.receipts).set(seq, 'unavailable'), receiptsAvailable: false })
        else set({ receipts: new Map(state.receipts).set(seq, { error: (error as Error).message }) })
      }
    },
    setHuman(id: string): void {
      localStorage.setItem('duo.humanId', id)
      set({ humanId: id })
    },
    /** Runs an action as the human; a refusal is shown in the API's own words. Registers the human first if needed. */
    async act(what: string, action: (humanId: string) => Promise<unknown>): Promise<boolean> {
      const humanId = state.humanId.trim()
      try {
        const known = state.partners.find((p) => p.id === humanId)
        if (!known || known.kind !== 'human') {
          await api.registerHuman(humanId)
          await refreshPartners()
        }
        await action(humanId)
        set({ notice: { text: `${what}: done`, error: false } })
        return true
      } catch (error) {
        fail(error)
        return false
      }
    },
  }
  return store
}
export type Store = ReturnType<typeof createStore>
