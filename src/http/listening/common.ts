// What the three ways of listening share: the request they serve, the target check, the page size.
import type { Rejection, Result } from '../../events/decide.ts'
import type { Envelope } from '../../events/schema.ts'
import { type Message, messageOf } from '../../projections/messages.ts'
import type { SeqPage } from '../../events/pages.ts'
import type { Store } from '../../store.ts'
import { pacedJson, type SendBudget } from '../paced.ts'

/** Messages per answer or SSE catch-up read (and at most `pageBytes` of them, see events/pages.ts). */
export const PAGE = 500

/** What the listening services need besides the store and the hub: the byte cap of a page and the send budget. */
export type Pacing = { pageBytes: number; sendBudget: SendBudget }

/**
 * A long-poll answer of `count` messages, streamed as the socket takes it (see paced.ts). `cursor` is
 * omitted in legacy mode; `onWritten` runs only once every byte was handed to a client still connected
 * (`signal` is the request's own). `truncated` appears only when the byte cap cut the page, so an answer
 * that was not cut keeps the seed's exact shape.
 */
export function messagesAnswer(
  pacing: Pacing,
  signal: AbortSignal,
  page: { count: number; render: (i: number) => Message | null; truncated: boolean; cursor?: number },
  onWritten?: () => void,
): Response {
  const cursor = page.cursor === undefined ? '' : `"cursor":${page.cursor},`
  return pacedJson(
    {
      head: `{"hasMessages":${page.count > 0},${cursor}${page.truncated ? '"truncated":true,' : ''}"messages":[`,
      count: page.count,
      render: (i) => JSON.stringify(page.render(i)),
      tail: ']}',
      onWritten,
    },
    pacing.sendBudget,
    signal,
  )
}

/** A page of stored messages, read one by one by seq as the answer goes out. */
export const storedPage = ({ views }: Store, page: SeqPage) => ({
  count: page.seqs.length,
  render: (i: number) => views.messages.bySeq(page.seqs[i]!),
  truncated: page.truncated,
})

/** One listen request, as the route hands it to a service. */
export type Listener = {
  partnerId: string
  conversationId?: string
  /** Ends the wait: the client went away or the broker stops. */
  signal: AbortSignal
  /** Null while the request's token still acts as the partner (it may be reissued during a wait). */
  stillActing: () => Rejection | null
}

export const refused = (rejection: Rejection): Result<never> => ({ ok: false, rejection })

export const messagesOf = (events: Envelope[]): Message[] =>
  events.flatMap((e) => (e.type === 'MessageSent' ? [messageOf(e)] : []))

/** The refusal for a listen that names an unknown partner or a conversation it cannot see, or null. */
export function checkTarget({ views }: Store, partnerId: string, conversationId: string | undefined): Rejection | null {
  // The rules' view of a partner is remembered between reads (every re-poll of a fan-out asks this).
  if (!views.partners.forRules(partnerId)) return { reason: 'unknown_partner', partnerId }
  if (conversationId === undefined) return null
  if (!views.conversations.get(conversationId)) return { reason: 'unknown_conversation', conversationId }
  if (!views.conversations.isMember(conversationId, partnerId)) return { reason: 'not_a_participant', conversationId }
  return null
}
