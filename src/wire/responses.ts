// Every broker answer, declared once: the routes' `response:` (validated, stripped to these fields, shown at /docs) and the partner's broker client parse with the same schemas. A new field is added here first; imports nothing of the HTTP layer.
import { z } from 'zod'
import { PartnerKind } from '../events/schema.ts'

/** Which log answered: drawn when the log was created, kept by restarts and copies (absent from older brokers). */
export const BrokerId = z.string().describe('The log’s id: a partner keeps its token and cursor per broker id')

/** Set when a page was cut by bytes before `limit`: the cursor still resumes exactly after (or before) it. */
const Truncated = z.literal(true).optional().describe('The page was cut by bytes (DUO_PAGE_KB): ask again from its cursor')

/** How a partner is reached right now, best first (see the hub): push, hook, listening, connected, offline. */
export const Reachability = z.enum(['push', 'hook', 'listening', 'connected', 'offline'])
export type Reachability = z.infer<typeof Reachability>
export const DeliveryStateView = z.enum(['queued', 'pushed', 'surfaced', 'read'])

export const PartnerView = z.object({
  id: z.string(),
  name: z.string(),
  kind: PartnerKind,
  project_path: z.string().nullable(),
  status: z.enum(['online', 'offline']).describe('online while listening or recently active'),
  status_message: z.string().nullable(),
  notifications_enabled: z.boolean(),
  created_at: z.string(),
  last_seen: z.string(),
  isListening: z.boolean(),
  reachability: Reachability.describe(
    'push: a session that takes channel pushes; hook: a waiting wake hook; listening: a parked listen; connected: a partner process runs; offline',
  ),
  sessions: z.number().int().describe('Live partner processes of this id'),
})
export type PartnerView = z.infer<typeof PartnerView>

/** A message as every API shows it; `id` and `seq` are the same number, the event's position in the log. */
export const MessageView = z.object({
  id: z.number().int(),
  seq: z.number().int(),
  conversation_id: z.string(),
  from_id: z.string(),
  /** `human`: a person wrote it (the console, `bun run duo`); absent from brokers that predate kinds. */
  from_kind: z.enum(['agent', 'human']).optional(),
  content: z.string(),
  created_at: z.string(),
})
export type MessageView = z.infer<typeof MessageView>

export const ConversationView = z.object({
  id: z.string(),
  name: z.string().nullable(),
  type: z.enum(['direct', 'group']),
  created_by: z.string(),
  created_at: z.string(),
  is_archived: z.boolean(),
})

/** Beyond the seed's shape: the loop guard's state. Optional: brokers from before the guard do not send it. */
const LoopGuardState = {
  is_paused: z.boolean().optional().describe('Paused by the loop guard: agents wait for a human message or a resume'),
  hops: z.number().int().optional().describe('Agent messages in a row since the last human message or resume'),
}
/** A conversation with its loop-guard state (the answers of endpoints the seed did not have). */
export const ControlledConversation = ConversationView.extend(LoopGuardState)

/** One entry of a partner's conversation list: the conversation, its read state and its members. */
export const ConversationEntry = ConversationView.extend({
  ...LoopGuardState,
  last_message_seq: z.number().int().nullable(),
  read_seq: z.number().int(),
  unread_count: z.number().int(),
  participants: z.array(z.object({ id: z.string(), name: z.string() })),
})
export type ConversationEntry = z.infer<typeof ConversationEntry>

export const Success = z.object({ success: z.literal(true) })

export const RegisterResponse = z.object({
  success: z.literal(true),
  partner: PartnerView,
  token: z.string().optional().describe('Token mode: the secret, returned once on first registration'),
  broker_id: BrokerId.optional(),
})

export const TalkResponse = z.object({
  success: z.literal(true),
  conversationId: z.string(),
  messageId: z.number().int(),
  seq: z.number().int().describe('Same as messageId: the message event’s seq'),
  notified: z.number().int().describe('Recipients with a waiting listener'),
  queued: z.number().int().describe('Recipients without one'),
  duplicate: z.boolean().describe('True when an Idempotency-Key retry returned the original message'),
  recipients: z
    .array(z.object({ partnerId: z.string(), reachability: Reachability }))
    .describe('Every recipient and how it is reached right now: who sees the message now, who later'),
  acknowledged: z
    .array(z.object({ conversationId: z.string(), seq: z.number().int() }))
    .describe("The sender's read positions this reply advanced: what its session was shown there"),
})
export type TalkResponse = z.infer<typeof TalkResponse>

/** Cursor long-poll: `cursor` is the seq to resume from. */
export const ListenResponse = z.object({
  hasMessages: z.boolean(),
  messages: z.array(MessageView),
  cursor: z.number().int(),
  truncated: Truncated,
})
export type ListenResponse = z.infer<typeof ListenResponse>

/** The seed's legacy long-poll (no `after`): unread messages, recorded as read once the answer was written. */
export const LegacyListenResponse = z.object({ hasMessages: z.boolean(), messages: z.array(MessageView), truncated: Truncated })

export const AckResponse = z.object({
  success: z.literal(true),
  acknowledged: z.array(z.object({ conversationId: z.string(), seq: z.number().int() })),
})

export const CreateGroupResponse = z.object({ success: z.literal(true), conversation: ConversationView })
export const ConversationsResponse = z.object({ conversations: z.array(ConversationEntry) })
export const LeaveResponse = z.object({ success: z.literal(true), left: z.boolean(), archived: z.boolean() })
/** A history entry; for the asker's own messages, where each recipient stands. */
export const HistoryMessage = MessageView.extend({
  recipients: z.array(z.object({ partnerId: z.string(), state: DeliveryStateView })).optional(),
})
export const HistoryResponse = z.object({ conversation: ConversationView, messages: z.array(HistoryMessage), truncated: Truncated })

export const UnregisterResponse = z.object({
  success: z.literal(true),
  offline: z.boolean().describe('False while another session of the partner is live: it stays online'),
  sessions: z.number().int().describe('Live sessions of the partner other than the one that left'),
})

/** Messages the partner's session was not shown in any way yet (its hooks ask). */
export const UnseenResponse = z.object({ messages: z.array(MessageView), cursor: z.number().int() })
export type UnseenResponse = z.infer<typeof UnseenResponse>

export const ReportResponse = z.object({
  success: z.literal(true),
  advanced: z.array(z.object({ conversationId: z.string(), state: z.enum(['pushed', 'surfaced']), seq: z.number().int() })),
})

export const ReceiptsResponse = z.object({
  seq: z.number().int(),
  conversationId: z.string(),
  from: z.string(),
  recipients: z.array(z.object({ partnerId: z.string(), state: DeliveryStateView, at: z.string() })),
})
export const ParticipantsResponse = z.object({ participants: z.array(PartnerView) })
/** A page of partners by id; `next_after_id` (null on the last page) is the `after_id` of the next. Older brokers send all, without paging fields. */
export const PartnersResponse = z.object({
  partners: z.array(PartnerView),
  total: z.number().int().optional(),
  next_after_id: z.string().nullable().optional(),
})
export const MembersResponse = z.object({
  success: z.literal(true),
  added: z.array(z.string()).describe('Partners who joined (those already members are left out)'),
  conversation: ControlledConversation,
})
export const RemoveMembersResponse = z.object({
  success: z.literal(true),
  removed: z.array(z.string()).describe('Members taken out (ids that were not members are left out)'),
  archived: z.boolean().describe('True when nobody is left: the group is archived'),
  conversation: ControlledConversation,
})
export const RenameResponse = z.object({ success: z.literal(true), conversation: ControlledConversation })
export const ResumeResponse = z.object({
  success: z.literal(true),
  resumed: z.boolean().describe('Whether the conversation was paused'),
  conversation: ControlledConversation,
})
export const PauseResponse = z.object({
  success: z.literal(true),
  paused: z.boolean().describe('Whether this paused it (false: it was paused already)'),
  conversation: ControlledConversation,
})
export const RetireResponse = z.object({ success: z.literal(true), partnerId: z.string(), retired: z.literal(true) })
export const TokenResponse = z.object({ success: z.literal(true), partnerId: z.string(), token: z.string() })

export const HealthResponse = z.object({
  status: z.literal('ok'),
  broker_id: BrokerId.optional(),
  partners: z.number().int(),
  online: z.number().int(),
  listening: z.number().int(),
  last_seq: z.number().int(),
  auth: z.enum(['token', 'open']),
  uptime_s: z.number(),
  send_pending_bytes: z.number().int().optional().describe('Bytes of answers waiting for slow clients to read them'),
})

/** What every refusal carries: a sentence for a person, the machine-readable reason, and the subject it names. */
export const Refusal = z.object({
  error: z.string(),
  reason: z.string().optional(),
  partnerId: z.string().optional(),
  conversationId: z.string().optional(),
  last_seq: z.number().int().optional(),
  limit: z.union([z.number(), z.string()]).optional(),
  retry_after_s: z.number().int().optional(),
  paused_by: z.enum(['operator', 'human']).optional().describe('conversation_paused: a person paused it (absent: the loop guard)'),
})

/** An event as `/events`, `replay` and the SSE streams show it (its `data` is validated when it is appended). */
export const EventEnvelope = z.object({
  seq: z.number().int(),
  type: z.string(),
  at: z.string(),
  data: z.record(z.string(), z.unknown()),
  hash: z.string(),
})
export const EventsPage = z.object({
  events: z.array(EventEnvelope),
  next: z.number().int().describe('The cursor to ask for the next page'),
  truncated: Truncated,
})

/** The operator's list of every conversation (the console): members by id and how many messages each holds. */
export const OperatorConversation = ControlledConversation.extend({
  last_message_seq: z.number().int().nullable(),
  message_count: z.number().int(),
  participants: z.array(z.string()).describe('Current members, by id'),
})
export const AllConversationsResponse = z.object({ conversations: z.array(OperatorConversation) })

export const LogHealthResponse = z.object({
  last_seq: z.number().int(),
  verified_through: z.number().int().describe('The hash chain and the sequence hold from seq 1 through this one'),
  problem: z.string().nullable().describe('The first break found, if any (then `bun run audit` says more)'),
})

export const SessionResponse = z.object({
  auth: z.enum(['token', 'open']),
  signedIn: z.boolean().describe('Open mode: always true, nothing to sign in to'),
  expiresAt: z.string().nullable(),
})
