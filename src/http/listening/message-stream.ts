// SSE of a partner's messages (`GET /listen/:id/stream`): replay from a cursor, then live; acknowledges nothing.
import type { Store } from '../../store.ts'
import type { Hub } from '../hub.ts'
import { messageFrame, sseResponse, storedMessageFrame } from '../sse.ts'
import type { Listener, Pacing } from './common.ts'

export function createMessageStream({ store, hub, keepAliveMs, pacing }: { store: Store; hub: Hub; keepAliveMs: number; pacing: Pacing }) {
  const { views, log } = store

  /** The stream's response; the partner counts as listening (or as a live session) until it closes. */
  return function messageStream(
    listener: Listener & { after: number; /** A partner process's follower: its session, and whether it pushes. */ session?: { kind: 'push' | 'connected'; id?: string } },
  ): Response {
    const { partnerId, conversationId } = listener
    const release = hub.hold(partnerId, listener.session?.kind ?? 'listening', listener.session?.id)
    // A stream opened with a token that has since been reissued ends at its next wake-up or keep-alive.
    const revoked = new AbortController()
    return sseResponse(
      listener.after,
      AbortSignal.any([listener.signal, revoked.signal]),
      {
        read: (from, limit, maxBytes) => {
          const page = views.messages.visiblePage(partnerId, from, limit, maxBytes, conversationId)
          return { frames: page.seqs.map((seq) => storedMessageFrame(views.messages.bySeq(seq)!)), truncated: page.truncated }
        },
        wait: async (signal, ms) => {
          const wake = await hub.wait(partnerId, conversationId, signal, ms)
          if (listener.stillActing()) revoked.abort()
          return wake
        },
        framesOf: (wake) => wake.events.flatMap((e) => (e.type === 'MessageSent' ? [{ seq: e.seq, bytes: messageFrame(e) }] : [])),
        head: log.lastSeq,
      },
      keepAliveMs,
      release,
      pacing.sendBudget,
    )
  }
}
