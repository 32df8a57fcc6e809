// Every event type and command input, declared once: runtime validation and static types come from here.
import { z } from 'zod'

export const LIMITS = {
  partnerIdMax: 64,
  nameMax: 100,
  groupMembersMax: 100,
  statusMax: 500,
  projectPathMax: 1024,
  idempotencyKeyMax: 128,
  messageBytesDefault: 64 * 1024,
  groupsPerPartnerDefault: 500,
  maxHopsDefault: 50,
} as const

/** Ids are data, never paths: letters, digits, `_`, `-`, `.`, not starting with `.`. */
export const PartnerId = z
  .string()
  .min(1, 'a partner id must not be empty')
  .max(LIMITS.partnerIdMax, `a partner id is at most ${LIMITS.partnerIdMax} characters`)
  .regex(/^[A-Za-z0-9_-][A-Za-z0-9_.-]*$/, 'a partner id is letters, digits, "_", "-" and ".", not starting with "."')
  .describe('Partner id: 1-64 letters, digits, "_", "-" or ".", not starting with "."')
export type PartnerId = z.infer<typeof PartnerId>

export const ConversationId = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[A-Za-z0-9_-][A-Za-z0-9_.-]*$/, 'a conversation id is letters, digits, "_", "-" and ".", not starting with "."')
  .describe('Conversation id, e.g. direct_alice_bob or group_...')

/**
 * A character that breaks the one-line rule for names, statuses and group names (contract section 6): control
 * characters (tab and newlines included), format characters (bidirectional overrides and marks, zero-width
 * spaces and joiners, the soft hyphen), line and paragraph separators, lone surrogates, and the Hangul fillers
 * that render as nothing. Other partners show these fields inside their own lines, where such a character
 * could forge a line or hide and reorder text. Look-alike letters are not caught here (see `idSkeleton`).
 */
export const NOT_ONE_LINE_CHAR = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}\u115F\u1160\u3164\uFFA0]/u
const ONE_LINE = new RegExp(`^(?:(?!${NOT_ONE_LINE_CHAR.source}).)*$`, 'u')

/** One line of printable text, at most `max` characters (UTF-16 units). */
const OneLine = (max: number, what: string) =>
  z
    .string()
    .max(max, `${what} is at most ${max} characters`)
    .regex(
      ONE_LINE,
      `${what} must be one line of printable text: no control characters (newlines and tabs included), no bidirectional-override or zero-width characters`,
    )

export const DisplayName = OneLine(LIMITS.nameMax, 'a name')
export const GroupName = OneLine(LIMITS.nameMax, 'a group name').min(1, 'a group name must not be empty')
export const StatusMessage = OneLine(LIMITS.statusMax, 'a status message')

/**
 * The form under which two partner ids count as the same (ids are ASCII, see PartnerId): lower case, after
 * the look-alikes `I`, `1` → `l` and `0` → `o`. So `Alice`, `ALICE`, `aIice` and `a1ice` all meet `alice`; `mail`
 * and `mall` stay apart (only a capital I looks like an l). A new id is refused when an existing one equals it
 * without regard to case (`MAIL` and `mail`) or has its skeleton. `idSkeletonSql` is the same function in SQL.
 */
export const idSkeleton = (id: string): string => id.replace(/[I1]/g, 'l').replace(/0/g, 'o').toLowerCase()
export const idSkeletonSql = (column: string): string => `lower(replace(replace(replace(${column}, 'I', 'l'), '1', 'l'), '0', 'o'))`
const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/)

/** What kind of participant a partner is: an agent (a Claude Code instance) or a person. */
export const PartnerKind = z
  .enum(['agent', 'human'])
  .describe('agent (default): an AI coding agent; human: a person, shown to agents as a human speaking')
export type PartnerKind = z.infer<typeof PartnerKind>

// ---- events -------------------------------------------------------------

export const PartnerRegistered = z.object({
  type: z.literal('PartnerRegistered'),
  data: z.object({
    partnerId: PartnerId,
    name: z.string(),
    projectPath: z.string().nullable(),
    /** sha-256 of the partner's secret token; present when a token was issued with this registration. */
    tokenHash: Sha256Hex.optional(),
    /** Absent: an agent (every event written before kinds existed). */
    kind: PartnerKind.optional(),
  }),
})

export const PartnerWentOffline = z.object({
  type: z.literal('PartnerWentOffline'),
  data: z.object({ partnerId: PartnerId }),
})

export const PartnerTokenReissued = z.object({
  type: z.literal('PartnerTokenReissued'),
  data: z.object({ partnerId: PartnerId, tokenHash: Sha256Hex }),
})

export const PartnerStatusChanged = z.object({
  type: z.literal('PartnerStatusChanged'),
  data: z.object({ partnerId: PartnerId, message: z.string().nullable() }),
})

export const NotificationsSwitched = z.object({
  type: z.literal('NotificationsSwitched'),
  data: z.object({ partnerId: PartnerId, enabled: z.boolean() }),
})

export const ConversationCreated = z.object({
  type: z.literal('ConversationCreated'),
  data: z.object({
    conversationId: ConversationId,
    kind: z.enum(['direct', 'group']),
    name: z.string().nullable(),
    createdBy: PartnerId,
    participants: z.array(PartnerId).min(1),
  }),
})

export const MessageSent = z.object({
  type: z.literal('MessageSent'),
  // The message's id is its event's seq: one number is both the message id and the cursor.
  data: z.object({
    conversationId: ConversationId,
    fromId: PartnerId,
    content: z.string(),
    idempotencyKey: z.string().optional(),
    /** Present when a person sent it: the sender's kind when the message was sent. */
    fromKind: z.literal('human').optional(),
  }),
})

export const ParticipantLeft = z.object({
  type: z.literal('ParticipantLeft'),
  data: z.object({
    conversationId: ConversationId,
    partnerId: PartnerId,
    /** Present when a person took the partner out of the group (absent: it left by itself, or was retired). */
    removedBy: PartnerId.optional(),
  }),
})

export const ConversationArchived = z.object({
  type: z.literal('ConversationArchived'),
  data: z.object({ conversationId: ConversationId }),
})

/** The operator retired the partner: gone from listings, its token dead, its messages kept. Final. */
export const PartnerRetired = z.object({
  type: z.literal('PartnerRetired'),
  data: z.object({ partnerId: PartnerId }),
})

/** Members joined a group after its creation (a partner who left may be added back). */
export const ParticipantsAdded = z.object({
  type: z.literal('ParticipantsAdded'),
  data: z.object({ conversationId: ConversationId, addedBy: PartnerId, partnerIds: z.array(PartnerId).min(1) }),
})

export const ConversationRenamed = z.object({
  type: z.literal('ConversationRenamed'),
  data: z.object({ conversationId: ConversationId, name: z.string(), renamedBy: PartnerId }),
})

/**
 * Agents may not talk here until a resume or a human message: the loop guard stopped them after `hops` agent
 * messages in a row with no human message, or a person paused it (`pausedBy`; `partnerId`: the human who did).
 */
export const ConversationPaused = z.object({
  type: z.literal('ConversationPaused'),
  data: z.object({
    conversationId: ConversationId,
    /** Agent messages in a row when it was paused. */
    hops: z.number().int().nonnegative(),
    /** Absent: the loop guard. */
    pausedBy: z.enum(['operator', 'human']).optional(),
    partnerId: PartnerId.optional(),
  }),
})

/** Agents may talk here again; the hop count starts over. `partnerId`: the human who resumed it; absent: the operator. */
export const ConversationResumed = z.object({
  type: z.literal('ConversationResumed'),
  data: z.object({ conversationId: ConversationId, partnerId: PartnerId.optional() }),
})

export const ReadPositionAdvanced = z.object({
  type: z.literal('ReadPositionAdvanced'),
  data: z.object({ partnerId: PartnerId, conversationId: ConversationId, seq: z.number().int().positive() }),
})

/** The stages a message goes through for one recipient, in order; `queued` is implied by MessageSent itself. */
export const DELIVERY_STATES = ['queued', 'pushed', 'surfaced', 'read'] as const
export type DeliveryState = (typeof DELIVERY_STATES)[number]
/** What a partner or its hooks report: `pushed` into the session, or `surfaced` in front of the model. */
export const ReportedState = z.enum(['pushed', 'surfaced'])
export type ReportedState = z.infer<typeof ReportedState>

/**
 * A partner's delivery position in one conversation moved forward: every message up to `seq` there was
 * pushed into its session (a channel notification, a wake hook) or surfaced to its model (a hook's added
 * context). A position, not a row per message: a report covers any number of messages with one event.
 */
export const DeliveryAdvanced = z.object({
  type: z.literal('DeliveryAdvanced'),
  data: z.object({
    partnerId: PartnerId,
    conversationId: ConversationId,
    state: ReportedState,
    seq: z.number().int().positive(),
  }),
})

export const DuoEvent = z.discriminatedUnion('type', [
  PartnerRegistered,
  PartnerWentOffline,
  PartnerTokenReissued,
  PartnerStatusChanged,
  NotificationsSwitched,
  ConversationCreated,
  MessageSent,
  ParticipantLeft,
  ConversationArchived,
  ReadPositionAdvanced,
  PartnerRetired,
  ParticipantsAdded,
  ConversationRenamed,
  ConversationPaused,
  ConversationResumed,
  DeliveryAdvanced,
])
export type DuoEvent = z.infer<typeof DuoEvent>
export type EventType = DuoEvent['type']
export const EVENT_TYPES = DuoEvent.options.map((o) => o.shape.type.value) as EventType[]

/** An event as stored and shown: the envelope of `/events`, `replay` and SSE. */
export type Envelope<E extends DuoEvent = DuoEvent> = E & { seq: number; at: string; hash: string }

// ---- command inputs (the shapes the HTTP API and the partner's tools share) ----

export const RegisterInput = z.object({
  partnerId: PartnerId,
  name: DisplayName.optional().describe('Display name; defaults to the id'),
  projectPath: OneLine(LIMITS.projectPathMax, 'a project path').optional().describe('Project directory, for display only'),
  kind: PartnerKind.optional().describe(
    'agent (default) or human; registering a human partner needs the operator token in token mode',
  ),
  rename: z
    .boolean()
    .optional()
    .describe('Change the name and project path even while another session of this partner is live (otherwise they are kept)'),
})
export type RegisterInput = z.infer<typeof RegisterInput>

export const TalkInput = z.object({
  fromId: PartnerId,
  to: PartnerId.optional().describe('Partner id to message directly (creates the direct conversation on first use)'),
  conversationId: ConversationId.optional().describe('Conversation to post into, instead of `to`'),
  content: z.string().min(1, 'a message must not be empty').describe('The message text'),
  idempotencyKey: z
    .string()
    .min(1)
    .max(LIMITS.idempotencyKeyMax)
    .optional()
    .describe('Retry key: a second talk with the same key from the same sender returns the first message'),
})
export type TalkInput = z.infer<typeof TalkInput>

export const CreateGroupInput = z.object({
  creatorId: PartnerId,
  name: GroupName.describe('Group name'),
  participants: z
    .array(PartnerId)
    .min(1, 'a group needs at least one other participant')
    // The creator may be listed too; decide counts members after removing duplicates.
    .max(LIMITS.groupMembersMax, `a group has at most ${LIMITS.groupMembersMax} members`),
})
export type CreateGroupInput = z.infer<typeof CreateGroupInput>

export const AddMembersInput = z.object({
  partnerId: PartnerId.describe('The member who adds (acting partner)'),
  members: z
    .array(PartnerId)
    .min(1, 'name at least one partner to add')
    .max(LIMITS.groupMembersMax, `a group has at most ${LIMITS.groupMembersMax} members`)
    .describe('Partner ids to add to the group'),
})
export type AddMembersInput = z.infer<typeof AddMembersInput>

export const RemoveMembersInput = z.object({
  partnerId: PartnerId.describe('The human participant who removes (the operator speaks as one)'),
  members: z
    .array(PartnerId)
    .min(1, 'name at least one member to remove')
    .max(LIMITS.groupMembersMax, `a group has at most ${LIMITS.groupMembersMax} members`)
    .describe('Member ids to take out of the group'),
})
export type RemoveMembersInput = z.infer<typeof RemoveMembersInput>

export const RenameInput = z.object({
  partnerId: PartnerId.describe('The member who renames (acting partner)'),
  name: GroupName.describe('The new group name'),
})
export type RenameInput = z.infer<typeof RenameInput>
