// Cursor long-poll (`GET /listen/:id?after=N&wait=S`): acknowledges up to N, answers what is visible after N, or waits for it.
import type { Result } from '../../events/decide.ts'
import type { Store } from '../../store.ts'
import type { ListenResponse } from '../../wire/responses.ts'
import type { Hub } from '../hub.ts'
import { type Listener, messagesOf, PAGE, refused } from './common.ts'

export const DEFAULT_WAIT_S = 30

export function createCursorPoll({ store, hub }: { store: Store; hub: Hub }) {
  const { commands, views, log } = store

  /** Resolves with the messages after `after` (at once if any, else the first to arrive within `waitS`) and the cursor to resume from. */
  return async function cursorPoll(listener: Listener & { after: number; waitS: number }): Promise<Result<ListenResponse>> {
    const { partnerId, conversationId, after, waitS } = listener
    if (after > log.lastSeq()) return refused({ reason: 'cursor_ahead', cursor: after, lastSeq: log.lastSeq() })
    if (after > 0) {
      const acked = await commands.execute({ kind: 'ack', partnerId, cursor: after, conversationId })
      if (!acked.ok) return acked
    }
    const found = views.messages.visibleAfter(partnerId, after, PAGE, conversationId)
    if (found.length > 0) return { ok: true, value: { hasMessages: true, messages: found, cursor: found[found.length - 1]!.seq } }
    if (waitS === 0) return { ok: true, value: { hasMessages: false, messages: [], cursor: Math.max(after, log.lastSeq()) } }
    const release = hub.hold(partnerId)
    try {
      const wake = await hub.wait(partnerId, conversationId, listener.signal, waitS * 1000)
      const revoked = listener.stillActing()
      if (revoked) return refused(revoked)
      // A wake carries exactly what this listener can see. Without one (timeout), read again: the cursor then
      // never moves past a message, even if a wake-up was missed.
      const woken = wake ? messagesOf(wake.events) : []
      const messages = woken.length > 0 ? woken : views.messages.visibleAfter(partnerId, after, PAGE, conversationId)
      const cursor = messages.length > 0 ? messages[messages.length - 1]!.seq : Math.max(after, log.lastSeq())
      return { ok: true, value: { hasMessages: messages.length > 0, messages, cursor } }
    } finally {
      release()
    }
  }
}
