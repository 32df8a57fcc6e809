// Who is waiting for what: listeners indexed by partner, woken with exactly the committed events they can see.
import type { Envelope } from '../events/schema.ts'

export type Wake = { events: Envelope[]; lastSeq: number }

type Waiter = {
  partnerId: string | null
  conversationId?: string
  settle: (wake: Wake | null) => void
}

export type HubDeps = {
  /** Current members of a conversation (one query per message event, never per listener). */
  members: (conversationId: string) => string[]
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
  const holds = new Map<string, number>()
  // Partners listening elsewhere but not here, counted once per change of either side (/health stays cheap).
  let union: { holdsVersion: number; elsewhere: ReadonlySet<string>; count: number } | null = null
  let holdsVersion = 0
  function listeningCount(): number {
    if (!elsewhere) return holds.size
    const others = elsewhere()
    if (union?.holdsVersion !== holdsVersion || union.elsewhere !== others) {
      let count = holds.size
      for (const id of others) if (!holds.has(id)) count++
      union = { holdsVersion, elsewhere: others, count }
    }
    return union.count
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
    /** Marks a partner as listening until the returned release is called (long-polls and streams). */
    hold(partnerId: string): () => void {
      const before = holds.get(partnerId) ?? 0
      holds.set(partnerId, before + 1)
      if (before === 0) {
        holdsVersion++
        onListenersChanged?.()
      }
      let released = false
      return () => {
        if (released) return
        released = true
        const n = (holds.get(partnerId) ?? 1) - 1
        if (n <= 0) {
          holds.delete(partnerId)
          holdsVersion++
          onListenersChanged?.()
        } else holds.set(partnerId, n)
      }
    },
    isListening: (partnerId: string): boolean => holds.has(partnerId) || (elsewhere?.().has(partnerId) ?? false),
    listeningCount,
    /** Partners listening through this broker. */
    listeningHere: (): string[] => [...holds.keys()],
    /** Waiters currently parked (for tests). */
    waiterCount: (): number => firehose.size + [...byPartner.values()].reduce((n, s) => n + s.size, 0),
  }
}
export type Hub = ReturnType<typeof createHub>
