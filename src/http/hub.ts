// Who is waiting for what: listeners indexed by partner, woken with exactly the committed events they can see.
import type { Envelope } from '../events/schema.ts'

export type Wake = { events: Envelope[]; lastSeq: number }

/**
 * How a partner can be reached, best first. `push`: a partner process whose client accepts Claude Code
 * channel pushes; `hook`: a session's wake hook is waiting; `listening`: a listen call, long-poll or script
 * stream is parked; `connected`: a partner process runs, and its model sees a notice at its next tool call.
 */
export const REACHABILITY = ['push', 'hook', 'listening', 'connected', 'offline'] as const
export type Reachability = (typeof REACHABILITY)[number]
export type HoldKind = Exclude<Reachability, 'offline'>

type Waiter = {
  partnerId: string | null
  conversationId?: string
  settle: (wake: Wake | null) => void
}

export type HubDeps = {
  /** Current members of a conversation (one query per message event, never per listener). */
  members: (conversationId: string) => readonly string[]
  lastSeq: () => number
  /** Partners listening through other brokers that share the log (PostgreSQL); none by default. */
  elsewhere?: () => ReadonlySet<string>
  /** Called when a partner starts or stops listening here (to publish it to the other brokers). */
  onListenersChanged?: () => void
}

/**
 * Wake-ups after each commit. A partner's waiters are found through a map keyed by partner id, so a
 * message costs one membership lookup plus the waiters of its recipients, whatever the total number
 * of listeners. Every waiter is one-shot: it is removed when woken, timed out or aborted, so a
 * disconnected client leaves nothing behind.
 */
export function createHub({ members, lastSeq, elsewhere, onListenersChanged }: HubDeps) {
  const byPartner = new Map<string, Set<Waiter>>()
  const firehose = new Set<Waiter>()
  const holds = new Map<string, Record<HoldKind, number>>()
  /** Per partner: the live partner processes (session id -> open follower streams). */
  const sessionsOf = new Map<string, Map<string, number>>()
  /** Partners a message reaches at once here (a push session, a wake hook or a listener): /health's `listening`. */
  const reachable = new Set<string>()

  const active = (c: Record<HoldKind, number>) => c.push + c.hook + c.listening > 0
  // Partners listening elsewhere but not here, counted once per change of either side (/health stays cheap).
  let union: { holdsVersion: number; elsewhere: ReadonlySet<string>; count: number } | null = null
  let holdsVersion = 0
  function listeningCount(): number {
    if (!elsewhere) return reachable.size
    const others = elsewhere()
    if (union?.holdsVersion !== holdsVersion || union.elsewhere !== others) {
      let count = reachable.size
      for (const id of others) if (!reachable.has(id)) count++
      union = { holdsVersion, elsewhere: others, count }
    }
    return union.count
  }
  /** Keeps `reachable` and the version in step when a partner becomes reachable here or stops being. */
  function changed(partnerId: string, nowActive: boolean): void {
    if (nowActive) reachable.add(partnerId)
    else reachable.delete(partnerId)
    holdsVersion++
    onListenersChanged?.()
  }

  function remove(waiter: Waiter): void {
    if (waiter.partnerId === null) {
      firehose.delete(waiter)
      return
    }
    const set = byPartner.get(waiter.partnerId)
    if (!set) return
    set.delete(waiter)
    if (set.size === 0) byPartner.delete(waiter.partnerId)
  }

  function dispatch(events: Envelope[]): void {
    const seq = lastSeq()
    if (firehose.size > 0) {
      const all = [...firehose]
      firehose.clear()
      for (const waiter of all) waiter.settle({ events, lastSeq: seq })
    }
    if (byPartner.size === 0) return
    const deliveries = new Map<Waiter, Envelope[]>()
    for (const event of events) {
      if (event.type === 'MessageSent') {
        for (const member of members(event.data.conversationId)) {
          if (member === event.data.fromId) continue
          const waiters = byPartner.get(member)
          if (!waiters) continue
          for (const waiter of waiters) {
            if (waiter.conversationId !== undefined && waiter.conversationId !== event.data.conversationId) continue
            const list = deliveries.get(waiter)
            if (list) list.push(event)
            else deliveries.set(waiter, [event])
          }
        }
      } else if (event.type === 'PartnerWentOffline' || event.type === 'PartnerTokenReissued' || event.type === 'PartnerRetired') {
        // Unregistering ends the partner's waiting long-polls: they answer with what they have. A new token
        // wakes them too, so a wait opened with the old one re-checks it and ends (see routes/listen.ts).
        for (const waiter of byPartner.get(event.data.partnerId) ?? []) if (!deliveries.has(waiter)) deliveries.set(waiter, [])
      }
    }
    for (const [waiter, delivered] of deliveries) {
      remove(waiter)
      waiter.settle({ events: delivered, lastSeq: seq })
    }
  }

  return {
    dispatch,
    /**
     * Resolves with the next committed events this listener can see (`partnerId` null: every event),
     * or null when `timeoutMs` passes or `signal` aborts. Registers synchronously, so a caller that
     * read the log just before calling cannot miss a commit in between.
     */
    wait(partnerId: string | null, conversationId: string | undefined, signal: AbortSignal, timeoutMs: number): Promise<Wake | null> {
      return new Promise((resolve) => {
        if (signal.aborted) return resolve(null)
        let timer: ReturnType<typeof setTimeout> | undefined
        const onAbort = () => waiter.settle(null)
        const waiter: Waiter = {
          partnerId,
          conversationId,
          settle: (wake) => {
            remove(waiter)
            clearTimeout(timer)
            signal.removeEventListener('abort', onAbort)
            resolve(wake === null ? null : wake)
          },
        }
        if (partnerId === null) firehose.add(waiter)
        else {
          let set = byPartner.get(partnerId)
          if (!set) byPartner.set(partnerId, (set = new Set()))
          set.add(waiter)
        }
        signal.addEventListener('abort', onAbort, { once: true })
        timer = setTimeout(() => waiter.settle(null), timeoutMs)
      })
    },
    /**
     * Marks a partner as reachable in this way until the returned release is called (long-polls, streams,
     * a partner process's follower, a wake hook's wait).
     */
    hold(partnerId: string, kind: HoldKind = 'listening', sessionId?: string): () => void {
      let counts = holds.get(partnerId)
      const wasActive = counts !== undefined && active(counts)
      if (!counts) holds.set(partnerId, (counts = { push: 0, hook: 0, listening: 0, connected: 0 }))
      counts[kind]++
      if (!wasActive && active(counts)) changed(partnerId, true)
      const session = (kind === 'push' || kind === 'connected') && sessionId !== undefined ? sessionId : undefined
      if (session !== undefined) {
        let live = sessionsOf.get(partnerId)
        if (!live) sessionsOf.set(partnerId, (live = new Map()))
        live.set(session, (live.get(session) ?? 0) + 1)
      }
      let released = false
      return () => {
        if (released) return
        released = true
        if (session !== undefined) {
          const live = sessionsOf.get(partnerId)
          const n = (live?.get(session) ?? 1) - 1
          if (n > 0) live?.set(session, n)
          else live?.delete(session)
          if (live?.size === 0) sessionsOf.delete(partnerId)
        }
        const now = holds.get(partnerId)
        if (!now) return
        const wasActive = active(now)
        now[kind] = Math.max(0, now[kind] - 1)
        if (now.push + now.hook + now.listening + now.connected === 0) holds.delete(partnerId)
        if (wasActive && !active(now)) changed(partnerId, false)
      }
    },
    /**
     * The best way to reach the partner now; `offline` when nothing of it is live. Another broker sharing the
     * log only tells that the partner listens there, so such a partner counts as `listening`.
     */
    reachability(partnerId: string): Reachability {
      const counts = holds.get(partnerId)
      const here = counts ? (REACHABILITY.find((kind) => kind !== 'offline' && counts[kind] > 0) ?? 'offline') : 'offline'
      if (here !== 'offline' && here !== 'connected') return here
      return elsewhere?.().has(partnerId) ? 'listening' : here
    },
    /** Live partner processes of this id (their followers' streams, with or without channels), `except` one of them. */
    sessions(partnerId: string, except?: string): number {
      const live = sessionsOf.get(partnerId)
      if (!live) return 0
      return live.size - (except !== undefined && live.has(except) ? 1 : 0)
    },
    /** Whether a message reaches the partner's session now: a push, a waiting hook, or a parked listener. */
    isListening(partnerId: string): boolean {
      const counts = holds.get(partnerId)
      return (counts !== undefined && active(counts)) || (elsewhere?.().has(partnerId) ?? false)
    },
    listeningCount,
    /** Partners a message reaches at once through this broker (pushes, wake hooks, listeners). */
    listeningHere: (): string[] => [...reachable],
    /** Waiters currently parked (for tests). */
    waiterCount: (): number => firehose.size + [...byPartner.values()].reduce((n, s) => n + s.size, 0),
  }
}
export type Hub = ReturnType<typeof createHub>
