// HTTP-only request shapes (path, query, headers); bodies reuse the command inputs of events/schema.ts.
import { z } from 'zod'
import { ConversationId, EVENT_TYPES, LIMITS, PartnerId, ReportedState, StatusMessage } from '../events/schema.ts'

const NOT_A_CURSOR = 'a cursor is a whole number (the seq of the last event seen)'
// A JSON number or a string of digits: z.coerce alone also took "", " ", "0x10", true and [] for cursors.
const Cursor = z
  .union([z.number(), z.string().regex(/^\d{1,20}$/, NOT_A_CURSOR)], { error: NOT_A_CURSOR })
  .pipe(
    z.coerce
      .number<string | number>()
      .int('a cursor is a whole number')
      .min(0, 'a cursor is 0 or more')
      .max(Number.MAX_SAFE_INTEGER, 'a cursor is at most 2^53 - 1'),
  )

/** A number in a query: a JSON number or a plain decimal string, so "" or "0x10" is refused instead of read as 0. */
const QueryNumber = (what: string, min: number, max: number, integer = false) =>
  z
    .union([z.number(), z.string().regex(integer ? /^\d{1,16}$/ : /^\d{1,16}(\.\d{1,6})?$/, what)], { error: what })
    .pipe(z.coerce.number<string | number>().min(min, what).max(max, what).refine((n) => !integer || Number.isInteger(n), what))

const Limit = QueryNumber('limit is a whole number from 1 to 1000', 1, 1000, true)

export const IdempotencyHeader = z.object({
  authorization: z.string().optional(),
  'idempotency-key': z
    .string()
    .min(1)
    .max(LIMITS.idempotencyKeyMax, `Idempotency-Key is at most ${LIMITS.idempotencyKeyMax} characters`)
    .optional(),
})

export const PartnerParams = z.object({ id: PartnerId })
export const ConversationParams = z.object({ id: ConversationId })

/** A partner process's own id for this run, so the broker can count sessions and tell which one leaves. */
export const SessionId = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,64}$/, 'a session id is 1-64 letters, digits, "_" or "-"')
  .describe('The partner process\'s id for this run (any random string it picks)')

export const UnregisterBody = z.object({
  partnerId: PartnerId,
  sessionId: SessionId.optional().describe('The session leaving: while other sessions of the partner are live, it stays online'),
})
export const LeaveBody = z.object({ partnerId: PartnerId })
export const ResumeBody = z.object({
  partnerId: PartnerId.optional().describe('The human partner who resumes (or pauses); absent: the operator (operator token)'),
})
export const PartnersQuery = z.object({
  all: z.enum(['true', 'false', '1', '0'], { error: 'all is true or false' }).optional().describe('Include partners not seen for DUO_STALE_DAYS'),
  limit: Limit.optional().describe('Partners per page (default 200, at most 1000)'),
  after_id: PartnerId.optional().describe('Only partners whose id sorts after this one: the previous page\'s `next_after_id`'),
})
export const StatusBody = z.object({ message: StatusMessage.nullish().describe('Status message; empty or null clears it') })
export const NotificationsBody = z.object({ enabled: z.boolean({ error: '"enabled" must be true or false' }) })
export const AckBody = z.object({ cursor: Cursor.describe('Acknowledge messages up to this seq'), conversationId: ConversationId.optional() })

export const ListenQuery = z.object({
  after: Cursor.optional().describe('Cursor mode: messages with seq > after (also acknowledges up to after)'),
  wait: QueryNumber('wait is a number of seconds from 0 to 3600', 0, 3600)
    .optional()
    .describe('Cursor mode: seconds to wait when nothing is there yet (default 30)'),
  timeout: QueryNumber('timeout is a number of minutes from 0 to 60', 0, 60)
    .optional()
    .describe('Legacy mode (no after): minutes to wait for unread messages (default 30)'),
  conversationId: ConversationId.optional().describe('Only this conversation'),
})

const StreamAfter = Cursor.optional().describe('Replay from this cursor (the Last-Event-ID header wins)')
export const StreamQuery = z.object({
  after: StreamAfter,
  conversationId: ConversationId.optional(),
  session: z
    .enum(['push', 'connected'], { error: 'session is "push" or "connected"' })
    .optional()
    .describe('Set by a partner process following its messages: "push" when its client accepts channel pushes, else "connected"'),
  sessionId: SessionId.optional(),
})

export const UnseenQuery = z.object({
  after: Cursor.optional().describe('Only messages with seq > after (default 0)'),
  wait: QueryNumber('wait is a number of seconds from 0 to 3600', 0, 3600)
    .optional()
    .describe('Seconds to wait when nothing is there yet (default 0); a waiting request counts as the partner\'s wake hook'),
})

export const ReportBody = z.object({
  state: ReportedState.describe('"pushed": handed to the session (channel push, wake hook); "surfaced": shown to its model (hook context)'),
  marks: z
    .array(z.object({ conversationId: ConversationId, seq: z.number().int().positive() }))
    .min(1, 'report at least one conversation position')
    .max(1000, 'at most 1000 positions per report')
    .describe('Per conversation, the seq up to which every message reached that state'),
})

export const SeqParams = z.object({
  seq: Cursor.describe('The message\'s seq (its id)'),
})
export const EventsStreamQuery = z.object({ after: StreamAfter })

export const LastEventId = z.object({ authorization: z.string().optional(), 'last-event-id': Cursor.optional() })

export const HistoryQuery = z.object({
  limit: Limit.optional(),
  before: Cursor.optional().describe('Only messages with seq < before'),
})

export const EventsQuery = z.object({
  after: Cursor.optional(),
  limit: Limit.optional(),
  type: z.enum(EVENT_TYPES as [string, ...string[]], { error: `type is one of ${EVENT_TYPES.join(', ')}` }).optional(),
  conversation: ConversationId.optional(),
  partner: PartnerId.optional(),
})
