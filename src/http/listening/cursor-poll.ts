// Cursor long-poll (`GET /listen/:id?after=N&wait=S`): acknowledges up to N, answers what is visible after N, or waits for it.
import type { Result } from '../../events/decide.ts'
import { fitByBytes } from '../../events/pages.ts'
import type { Store } from '../../store.ts'
import type { ListenResponse } from '../../wire/responses.ts'
import type { Hub } from '../hub.ts'
import { type Listener, messagesAnswer, messagesOf, PAGE, type Pacing, refused, storedPage } from './common.ts'

export const DEFAULT_WAIT_S = 30

export function createCursorPoll({ store, hub, pacing }: { store: Store; hub: Hub; pacing: Pacing }) {
  const { commands, views, log } = store
  const lastOf = (seqs: number[]) => seqs[seqs.length - 1]!

  /**
   * Resolves with the messages after `after` (at once if any, else the first to arrive within `waitS`) and the
   * cursor to resume from: a page of messages streams as a Response (see paced.ts), an empty one is a value.
   * `connection` is the request's own signal (the bytes of a cut answer are not worth rendering).
   */
  return async function cursorPoll(
    listener: Listener & { after: number; waitS: number; connection: AbortSignal },
  ): Promise<Result<ListenResponse | Response>> {
    const { partnerId, conversationId, after, waitS } = listener
    if (after > log.lastSeq()) return refused({ reason: 'cursor_ahead', cursor: after, lastSeq: log.lastSeq() })
    if (after > 0) {
      const acked = await commands.execute({ kind: 'ack', partnerId, cursor: after, conversationId })
      if (!acked.ok) return acked
    }
    const stored = (from: number) => views.messages.visiblePage(partnerId, from, PAGE, pacing.pageBytes, conversationId)
    const found = stored(after)
    if (found.seqs.length > 0) return { ok: true, value: messagesAnswer(pacing, listener.connection, { ...storedPage(store, found), cursor: lastOf(found.seqs) }) }
    if (waitS === 0) return { ok: true, value: { hasMessages: false, messages: [], cursor: Math.max(after, log.lastSeq()) } }
    const release = hub.hold(partnerId)
    try {
      const wake = await hub.wait(partnerId, conversationId, listener.signal, waitS * 1000)
      const revoked = listener.stillActing()
      if (revoked) return refused(revoked)
      // A wake carries exactly what this listener can see, cut by bytes like any page. Without one (timeout),
      // read again: the cursor then never moves past a message, even if a wake-up was missed.
      const woken = wake ? messagesOf(wake.events) : []
      if (woken.length > 0) {
        const fit = fitByBytes(woken.map((m) => ({ seq: m.seq, bytes: Buffer.byteLength(m.content) })), pacing.pageBytes)
        const count = fit.seqs.length
        const page = { count, render: (i: number) => woken[i]!, truncated: fit.truncated, cursor: woken[count - 1]!.seq }
        return { ok: true, value: messagesAnswer(pacing, listener.connection, page) }
      }
      const again = stored(after)
      if (again.seqs.length > 0) return { ok: true, value: messagesAnswer(pacing, listener.connection, { ...storedPage(store, again), cursor: lastOf(again.seqs) }) }
      return { ok: true, value: { hasMessages: false, messages: [], cursor: Math.max(after, log.lastSeq()) } }
    } finally {
      release()
    }
  }
}
