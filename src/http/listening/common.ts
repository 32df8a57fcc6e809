// What the three ways of listening share: the request they serve, the target check, the page size.
import type { Rejection, Result } from '../../events/decide.ts'
import type { Envelope } from '../../events/schema.ts'
import { type Message, messageOf } from '../../projections/messages.ts'
import type { Store } from '../../store.ts'

/** Messages per answer or SSE catch-up read. */
export const PAGE = 500

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
  if (!views.partners.get(partnerId)) return { reason: 'unknown_partner', partnerId }
  if (conversationId === undefined) return null
  if (!views.conversations.get(conversationId)) return { reason: 'unknown_conversation', conversationId }
  if (!views.conversations.isMember(conversationId, partnerId)) return { reason: 'not_a_participant', conversationId }
  return null
}
