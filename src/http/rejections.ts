// The one place where a refusal becomes an HTTP status and a sentence for a person.
import type { Rejection } from '../events/decide.ts'

const statusOf = {
  unknown_partner: 404,
  partner_id_taken: 409,
  unknown_conversation: 404,
  unknown_message: 404,
  not_a_participant: 403,
  conversation_archived: 409,
  cannot_leave_direct: 409,
  no_recipient: 400,
  talk_to_self: 400,
  message_too_large: 413,
  group_too_large: 400,
  cursor_ahead: 409,
  token_required: 401,
  token_invalid: 401,
  acting_for_another: 403,
  operator_only: 403,
  operator_token_required: 401,
  invalid_request: 400,
  web_page_refused: 403,
  conversation_paused: 409,
  partner_retired: 410,
  not_a_group: 409,
  too_many_groups: 409,
  not_human: 403,
  rate_limited: 429,
  broker_busy: 503,
} as const satisfies Record<Rejection['reason'], number>

export function explain(r: Rejection): string {
  switch (r.reason) {
    case 'unknown_partner':
      return `unknown partner "${r.partnerId}": it has never registered`
    case 'partner_id_taken':
      return r.lookalike
        ? `partner id "${r.partnerId}" looks like the existing partner "${r.existing}" (I, 1 and l, 0 and o count as the same letter): choose an id that others cannot mistake for it`
        : `partner id "${r.partnerId}" is taken: partner "${r.existing}" exists, and ids are unique without regard to case; use "${r.existing}" or choose another id`
    case 'unknown_conversation':
      return `unknown conversation "${r.conversationId}"`
    case 'unknown_message':
      return `no message has seq ${r.seq}`
    case 'not_a_participant':
      return `not a participant of conversation "${r.conversationId}"`
    case 'conversation_archived':
      return `conversation "${r.conversationId}" is archived (every member left, or its other partner was retired): nothing more can be posted there`
    case 'cannot_leave_direct':
      return `"${r.conversationId}" is a direct conversation; only groups can be left`
    case 'no_recipient':
      return 'say who the message is for: give "to" (a partner id) or "conversationId"'
    case 'talk_to_self':
      return 'a partner cannot send a direct message to itself'
    case 'message_too_large':
      return `the message is larger than the limit of ${r.limit} bytes (UTF-8)`
    case 'group_too_large':
      return `a group has at most ${r.limit} members, the creator included`
    case 'cursor_ahead':
      return `cursor ${r.cursor} is beyond the end of the log (last seq ${r.lastSeq}); resume from ${r.lastSeq} or 0`
    case 'token_required':
      return `this request acts as partner "${r.partnerId}" and needs its token: send "Authorization: Bearer <token>"`
    case 'token_invalid':
      return 'the bearer token is not valid'
    case 'acting_for_another':
      return `the token does not belong to partner "${r.partnerId}"`
    case 'operator_only':
      return 'this endpoint needs the operator token (DUO_ADMIN_TOKEN)'
    case 'operator_token_required':
      return 'this endpoint needs the operator token: send "Authorization: Bearer <DUO_ADMIN_TOKEN>"'
    case 'invalid_request':
    case 'web_page_refused':
      return r.message
    case 'conversation_paused':
      return (
        `conversation "${r.conversationId}" is paused ` +
        (r.pausedBy === undefined
          ? `by the loop guard after ${r.hops} messages in a row between agents with no human message. `
          : `by ${r.pausedBy === 'operator' ? 'the operator' : 'a human participant'}. `) +
        'Stop sending messages here and wait for your human: a message from a human ' +
        'participant, or a resume by the operator or a human (POST /conversations/:id/resume), lets agents talk again.'
      )
    case 'partner_retired':
      return `partner "${r.partnerId}" was retired by the operator: it cannot act, be messaged or join groups any more (its past messages stay in history)`
    case 'not_a_group':
      return `"${r.conversationId}" is a direct conversation; only groups gain members or change their name`
    case 'too_many_groups':
      return `partner "${r.partnerId}" is already in ${r.limit} groups, the most allowed (DUO_MAX_GROUPS_PER_PARTNER)`
    case 'not_human':
      return `partner "${r.partnerId}" is an agent; only a human participant or the operator can ${r.action ?? 'resume a paused conversation'}`
    case 'rate_limited':
      return `too many requests: ${r.limit}; try again in ${r.retryAfterS} s`
    case 'broker_busy':
      return `the broker is busy: ${Math.ceil(r.pendingBytes / 2 ** 20)} MiB of earlier answers are waiting for slow clients to read them; retry in a moment`
    default: {
      const unhandled: never = r
      return String(unhandled)
    }
  }
}

/** The JSON body of a refusal: `{error}` for a person, plus the machine-readable `reason` (and the subject it names). */
export const refusalBody = (r: Rejection) => ({
  error: explain(r),
  reason: r.reason,
  ...('partnerId' in r ? { partnerId: r.partnerId } : {}),
  ...('conversationId' in r ? { conversationId: r.conversationId } : {}),
  ...(r.reason === 'cursor_ahead' ? { last_seq: r.lastSeq } : {}),
  ...(r.reason === 'partner_id_taken' ? { existing: r.existing } : {}),
  ...('limit' in r ? { limit: r.limit } : {}),
  ...(r.reason === 'rate_limited' ? { retry_after_s: r.retryAfterS } : {}),
  ...(r.reason === 'conversation_paused' && r.pausedBy ? { paused_by: r.pausedBy } : {}),
})

/** The HTTP status of a refusal. */
export const statusOfRejection = (r: Rejection): number => statusOf[r.reason]

/**
 * The refusal as a JSON response. Typed `never` so that a route declaring `response:` (Elysia then types its
 * answer by that schema) can return it beside its answer: Elysia sends a Response as it is, unvalidated.
 */
export const rejected = (r: Rejection): never =>
  Response.json(refusalBody(r), {
    status: statusOf[r.reason],
    headers: r.reason === 'rate_limited' ? { 'retry-after': String(r.retryAfterS) } : undefined,
  }) as never

/** The refusal (409) of a cursor beyond the end of the log (a client that outlived a reset database), or null. */
export const beyondLog = (cursor: number, lastSeq: number): Rejection | null =>
  cursor > lastSeq ? { reason: 'cursor_ahead', cursor, lastSeq } : null
