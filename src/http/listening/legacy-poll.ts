// The seed's long-poll (`GET /listen/:id` without `after`): unread messages, each handed out once, recorded as read once written.
import type { Result } from '../../events/decide.ts'
import { fitByBytes } from '../../events/pages.ts'
import type { Message } from '../../projections/messages.ts'
import type { Store } from '../../store.ts'
import type { Hub } from '../hub.ts'
import { type Listener, messagesAnswer, messagesOf, PAGE, type Pacing, refused } from './common.ts'

/**
 * An unread message as far as picking a page needs: its seq, conversation and size. Read from the store
 * size-first (the content is read only as the answer goes out), or woken with the message itself.
 */
type Unread = { seq: number; conversation_id: string; bytes: number; message?: Message }

export const DEFAULT_TIMEOUT_MIN = 30

/** Per conversation, the highest seq one answer handed out. */
type Reservation = Map<string, number>

/**
 * Exactly once per partner: an answer that was written (its last byte handed to the socket of a client still
 * connected, see paced.ts) marks its messages as
 * delivered until the read positions it records are committed, and every legacy listen of that partner
 * skips delivered messages. Without that, a client that asks again as soon as it is answered (the original
 * partner does) would read them again before the commit. Answers being written concurrently (two listens
 * woken by one message) each carry the message: neither was delivered before the other. An answer that was
 * cut marks nothing, so its messages come again.
 */
export function createLegacyPoll({ store, hub, pacing }: { store: Store; hub: Hub; pacing: Pacing }) {
  const { commands, views } = store
  const delivered = new Map<string, Set<Reservation>>()

  /** `messages` without those an earlier answer to the partner delivered (read positions not yet committed). */
  function undelivered(partnerId: string, messages: Unread[]): Unread[] {
    const held = delivered.get(partnerId)
    if (!held || messages.length === 0) return messages
    return messages.filter((m) => {
      for (const reservation of held) if (m.seq <= (reservation.get(m.conversation_id) ?? 0)) return false
      return true
    })
  }

  const unread = (partnerId: string, conversationId: string | undefined): Unread[] =>
    undelivered(partnerId, views.messages.unreadSized(partnerId, PAGE, conversationId))

  /** Marks `messages` delivered to the partner until the returned release is called. */
  function markDelivered(partnerId: string, messages: Unread[]): () => void {
    const reservation: Reservation = new Map()
    for (const m of messages) reservation.set(m.conversation_id, Math.max(m.seq, reservation.get(m.conversation_id) ?? 0))
    let held = delivered.get(partnerId)
    if (!held) delivered.set(partnerId, (held = new Set()))
    held.add(reservation)
    return () => {
      held.delete(reservation)
      if (held.size === 0 && delivered.get(partnerId) === held) delivered.delete(partnerId)
    }
  }

  /**
   * Answers the unread messages at once if any, else the first to arrive within `timeoutMs`, else none.
   * `connection` is the request's own signal: a written answer records its messages as read, a cut one
   * leaves them unread for the next listen.
   */
  return async function legacyPoll(
    listener: Listener & { timeoutMs: number; connection: AbortSignal },
  ): Promise<Result<Response | { hasMessages: false; messages: [] }>> {
    const { partnerId, conversationId } = listener
    let messages = unread(partnerId, conversationId)
    if (messages.length === 0 && listener.timeoutMs > 0) {
      const deadline = performance.now() + listener.timeoutMs
      const release = hub.hold(partnerId)
      try {
        // No idle cut-off shorter than the wait asked for: a wake that brings nothing new (only delivered
        // messages) waits on.
        while (messages.length === 0) {
          const left = deadline - performance.now()
          const wake = left > 0 ? await hub.wait(partnerId, conversationId, listener.signal, left) : null
          // The token may have been reissued while this waited (the hub wakes it then): the old one gets nothing.
          const revoked = listener.stillActing()
          if (revoked) return refused(revoked)
          // Timed out, aborted, or woken with nothing (the partner went offline): answer with what there is.
          if (wake === null || wake.events.length === 0) {
            messages = unread(partnerId, conversationId)
            break
          }
          // Nothing was unread but delivered messages when this parked, so what woke it is all there is: the
          // hub hands each waiter exactly the committed messages it can see, and no read is needed.
          const woken = messagesOf(wake.events).map((m) => ({ seq: m.seq, conversation_id: m.conversation_id, bytes: Buffer.byteLength(m.content), message: m }))
          messages = undelivered(partnerId, woken)
        }
      } finally {
        release()
      }
    }
    if (messages.length === 0) return { ok: true, value: { hasMessages: false, messages: [] } }
    // Cut by bytes after skipping what was delivered: the rest stays unread for the next listen.
    const fit = fitByBytes(messages, pacing.pageBytes)
    messages = messages.slice(0, fit.seqs.length)
    const page = messages
    const recordRead = () => {
      const settled = markDelivered(partnerId, page)
      // One ack per conversation, exactly up to what this answer carried; they share one commit.
      const acks = [...new Set(page.map((m) => m.conversation_id))].map((conversation) =>
        commands.execute({
          kind: 'ack',
          partnerId,
          cursor: page.findLast((m) => m.conversation_id === conversation)!.seq,
          conversationId: conversation,
        }),
      )
      // Nobody awaits this write: a failed commit (disk full) must be logged, not crash the broker.
      Promise.all(acks)
        .catch((error) => console.error('legacy listen: recording messages as read failed:', error))
        .finally(settled)
    }
    const answer = { count: page.length, render: (i: number) => page[i]!.message ?? views.messages.bySeq(page[i]!.seq), truncated: fit.truncated }
    return { ok: true, value: messagesAnswer(pacing, listener.connection, answer, recordRead) }
  }
}
