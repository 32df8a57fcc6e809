// The hooks' long-poll (`GET /listen/:id/unseen`): messages the partner's session was not shown in any way yet.
import type { Result } from '../../events/decide.ts'
import type { Store } from '../../store.ts'
import type { UnseenResponse } from '../../wire/responses.ts'
import type { Hub } from '../hub.ts'
import { type Listener, PAGE, refused } from './common.ts'

export function createUnseenPoll({ store, hub }: { store: Store; hub: Hub }) {
  const { views, log } = store

  /**
   * Resolves with the messages past the partner's read, pushed and surfaced positions (and past `after`),
   * at once if any, else the first to arrive within `waitS`; acknowledges nothing. While it waits the partner
   * counts as reachable by `hook`. A session that takes channel pushes gets messages from its partner process,
   * so while one is live this answers none: the hooks stay quiet and nothing is shown twice.
   */
  return async function unseenPoll(listener: Listener & { after: number; waitS: number }): Promise<Result<UnseenResponse>> {
    const { partnerId, after } = listener
    if (after > log.lastSeq()) return refused({ reason: 'cursor_ahead', cursor: after, lastSeq: log.lastSeq() })
    const deadline = Date.now() + listener.waitS * 1000
    let release: (() => void) | undefined
    try {
      while (true) {
        const found = views.delivery.unseen(partnerId, after, PAGE)
        if (found.length > 0 && hub.reachability(partnerId) !== 'push')
          return { ok: true, value: { messages: found, cursor: found[found.length - 1]!.seq } }
        const left = deadline - Date.now()
        if (left <= 0 || listener.signal.aborted) return { ok: true, value: { messages: [], cursor: Math.max(after, log.lastSeq()) } }
        release ??= hub.hold(partnerId, 'hook')
        await hub.wait(partnerId, undefined, listener.signal, left)
        const revoked = listener.stillActing()
        if (revoked) return refused(revoked)
      }
    } finally {
      release?.()
    }
  }
}
