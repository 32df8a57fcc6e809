// HTTP-only request shapes (path, query, headers); bodies reuse the command inputs of events/schema.ts.
import { z } from 'zod'
import { ConversationId, EVENT_TYPES, PartnerId, StatusMessage } from '../events/schema.ts'

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

export const PartnerParams = z.object({ id: PartnerId })
export const ConversationParams = z.object({ id: ConversationId })

export const UnregisterBody = z.object({ partnerId: PartnerId })
export const LeaveBody = z.object({ partnerId: PartnerId })
export const StatusBody = z.object({ message: StatusMessage.nullish().describe('Status message; empty or null clears it') })
export const NotificationsBody = z.object({ enabled: z.boolean({ error: '"enabled" must be true or false' }) })
export const AckBody = z.object({ cursor: Cursor.describe('Acknowledge messages up to this seq'), conversationId: ConversationId.optional() })

export const ListenQuery = z.object({
  after: Cursor.optional().describe('Cursor mode: messages with seq > after (also acknowledges up to after)'),
  wait: z.coerce
    .number({ error: 'wait is a number of seconds' })
    .min(0, 'wait is 0 to 3600 seconds')
    .max(3600, 'wait is 0 to 3600 seconds')
    .optional()
    .describe('Cursor mode: seconds to wait when nothing is there yet (default 30)'),
  timeout: z.coerce
    .number({ error: 'timeout is a number of minutes' })
    .min(0, 'timeout is 0 to 60 minutes')
    .max(60, 'timeout is 0 to 60 minutes')
    .optional()
    .describe('Legacy mode (no after): minutes to wait for unread messages (default 30)'),
  conversationId: ConversationId.optional().describe('Only this conversation'),
})

export const StreamQuery = z.object({
  after: Cursor.optional().describe('Replay from this cursor (the Last-Event-ID header wins)'),
  conversationId: ConversationId.optional(),
})

export const LastEventId = z.object({ authorization: z.string().optional(), 'last-event-id': Cursor.optional() })

export const HistoryQuery = z.object({
  limit: z.coerce.number().int().min(1, 'limit is 1 to 1000').max(1000, 'limit is 1 to 1000').optional(),
  before: Cursor.optional().describe('Only messages with seq < before'),
})

export const EventsQuery = z.object({
  after: Cursor.optional(),
  limit: z.coerce.number().int().min(1, 'limit is 1 to 1000').max(1000, 'limit is 1 to 1000').optional(),
  type: z.enum(EVENT_TYPES as [string, ...string[]], { error: `type is one of ${EVENT_TYPES.join(', ')}` }).optional(),
  conversation: ConversationId.optional(),
  partner: PartnerId.optional(),
})
