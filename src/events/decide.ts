// The pure rules: a command and a view of the current state give events, or a typed refusal.
import { type DuoEvent, LIMITS, type PartnerKind, type ReportedState } from './schema.ts'

export type Rejection =
  | { reason: 'unknown_partner'; partnerId: string }
  | { reason: 'partner_id_taken'; partnerId: string; existing: string; lookalike: boolean }
  | { reason: 'unknown_conversation'; conversationId: string }
  | { reason: 'unknown_message'; seq: number }
  | { reason: 'not_a_participant'; conversationId: string }
  | { reason: 'conversation_archived'; conversationId: string }
  | { reason: 'cannot_leave_direct'; conversationId: string }
  | { reason: 'no_recipient' }
  | { reason: 'talk_to_self' }
  | { reason: 'message_too_large'; limit: number }
  | { reason: 'group_too_large'; limit: number }
  | { reason: 'cursor_ahead'; cursor: number; lastSeq: number }
  | { reason: 'token_required'; partnerId: string }
  | { reason: 'token_invalid' }
  | { reason: 'acting_for_another'; partnerId: string }
  | { reason: 'operator_only' }
  | { reason: 'operator_token_required' }
  | { reason: 'invalid_request'; message: string }
  | { reason: 'web_page_refused'; message: string }
  /** `pausedBy`: a person paused it (absent: the loop guard). */
  | { reason: 'conversation_paused'; conversationId: string; hops: number; pausedBy?: 'operator' | 'human' }
  | { reason: 'partner_retired'; partnerId: string }
  | { reason: 'not_a_group'; conversationId: string }
  | { reason: 'too_many_groups'; partnerId: string; limit: number }
  /** `action`: what only a person may do (absent: resuming a paused conversation). */
  | { reason: 'not_human'; partnerId: string; action?: string }
  | { reason: 'rate_limited'; limit: string; retryAfterS: number }
  // Refusals of the broker's own state rather than of the request (HTTP 503, retry later).
  | { reason: 'broker_busy'; pendingBytes: number }

export type Result<T> = { ok: true; value: T } | { ok: false; rejection: Rejection }
export const ok = <T>(value: T): Result<T> => ({ ok: true, value })
export const refuse = <T = never>(rejection: Rejection): Result<T> => ({ ok: false, rejection })

/** A partner as the rules read it: what only registration, going offline, a new token and retirement change. */
export type PartnerForRules = {
  status: 'online' | 'offline'
  tokenHash: string | null
  kind: PartnerKind
  retired: boolean
  name: string
  projectPath: string | null
}

/** What the rules need to know of the current state; the projections provide it. */
export interface DecisionView {
  partner(id: string): PartnerForRules | null
  /** Another partner's id that equals `id` without regard to case, else one with its `idSkeleton`; null if none. */
  partnerLike(id: string): { id: string; lookalike: boolean } | null
  conversation(id: string): {
    type: 'direct' | 'group'
    name: string | null
    is_archived: number
    /** Agent messages in a row since the last human message or resume. */
    hops: number
    is_paused: number
    paused_by: 'operator' | 'human' | null
  } | null
  isMember(conversationId: string, partnerId: string): boolean
  members(conversationId: string): readonly string[]
  /** Groups the partner is a current member of. */
  groupCount(partnerId: string): number
  /** Every conversation the partner is a current member of, with its current member count. */
  conversationsOf(partnerId: string): Array<{ id: string; type: 'direct' | 'group'; is_archived: number; members: number }>
  directBetween(a: string, b: string): string | null
  messageByKey(fromId: string, key: string): { seq: number; conversation_id: string } | null
  ackable(partnerId: string, cursor: number, conversationId?: string): Array<{
    conversation_id: string
    upto: number | null
    read_seq: number
  }>
  lastSeq(): number
  /** The partner's positions in a conversation, and the newest message there at or below `cursor` (null: none). */
  delivery(partnerId: string, conversationId: string, cursor: number): { pushed: number; surfaced: number; read: number; upto: number | null }
  /** The partner's pushed, surfaced and read positions in a conversation (what its session was shown there). */
  shown(partnerId: string, conversationId: string): Readonly<{ pushed: number; surfaced: number; read: number }>
}

export type Rules = {
  maxMessageBytes: number
  maxGroupMembers: number
  /** Loop guard: agent messages in a row that pause a conversation (0: never). */
  maxHops: number
  maxGroupsPerPartner: number
}

/** The rules with the documented defaults for whatever `partial` leaves out. */
export const rulesWith = (partial: Partial<Rules> = {}): Rules => ({
  maxMessageBytes: partial.maxMessageBytes ?? LIMITS.messageBytesDefault,
  maxGroupMembers: partial.maxGroupMembers ?? LIMITS.groupMembersMax,
  maxHops: partial.maxHops ?? LIMITS.maxHopsDefault,
  maxGroupsPerPartner: partial.maxGroupsPerPartner ?? LIMITS.groupsPerPartnerDefault,
})

export type Command =
  | {
      kind: 'register'
      partnerId: string
      name?: string
      projectPath?: string
      /** Absent: the partner keeps the kind it has (a new one is an agent). */
      partnerKind?: PartnerKind
      newTokenHash?: string
      /** Token mode: the hash of the token the request carried (null: none). An id that has a token re-registers only with it. */
      presentedTokenHash?: string | null
      /**
       * Another live session holds this id (a second process: `claude mcp list`'s health check, a second
       * session in the project): the registration keeps the name and project path the partner has.
       */
      keepIdentity?: boolean
    }
  | {
      kind: 'unregister'
      partnerId: string
      /** Live sessions of this id other than the one leaving: while there are any, the partner stays online. */
      otherSessions?: number
    }
  | { kind: 'reissueToken'; partnerId: string; newTokenHash: string }
  | { kind: 'talk'; fromId: string; to?: string; conversationId?: string; content: string; idempotencyKey?: string }
  | { kind: 'createGroup'; creatorId: string; name: string; participants: string[]; groupId: string }
  | { kind: 'leave'; partnerId: string; conversationId: string }
  | { kind: 'setStatus'; partnerId: string; message: string | null }
  | { kind: 'setNotifications'; partnerId: string; enabled: boolean }
  | { kind: 'ack'; partnerId: string; cursor: number; conversationId?: string }
  | { kind: 'retire'; partnerId: string }
  | { kind: 'addMembers'; partnerId: string; conversationId: string; members: string[] }
  /** `partnerId`: the human participant who takes `members` out of the group. */
  | { kind: 'removeMembers'; partnerId: string; conversationId: string; members: string[] }
  | { kind: 'rename'; partnerId: string; conversationId: string; name: string }
  /** `partnerId`: the human participant who resumes; absent: the operator. */
  | { kind: 'resume'; conversationId: string; partnerId?: string }
  /** A person stops the agents of a conversation, as the loop guard does. `partnerId`: the human; absent: the operator. */
  | { kind: 'pause'; conversationId: string; partnerId?: string }
  | { kind: 'report'; partnerId: string; state: ReportedState; marks: Array<{ conversationId: string; seq: number }> }

/** What each command decides: its events, plus what the caller needs to answer (one shape per command kind). */
type Decisions = {
  /** `tokenIssued`: whether `newTokenHash` was recorded (first registration, or a partner that had none). */
  register: { events: DuoEvent[]; tokenIssued: boolean }
  /** `stillOnline`: the partner stays online because other sessions of it are live. */
  unregister: { events: DuoEvent[]; stillOnline?: boolean }
  reissueToken: { events: DuoEvent[]; tokenIssued: true }
  /** Where the message goes; with `duplicateOf`, the retried message's seq (and no events). */
  talk: { events: DuoEvent[]; conversationId: string; duplicateOf?: number }
  createGroup: { events: DuoEvent[]; conversationId: string }
  /** `archived`: whether the conversation was archived by this departure. */
  leave: { events: DuoEvent[]; archived: boolean }
  setStatus: { events: DuoEvent[] }
  setNotifications: { events: DuoEvent[] }
  ack: { events: DuoEvent[] }
  retire: { events: DuoEvent[] }
  /** `added`: the partners who joined (those already members are left out). */
  addMembers: { events: DuoEvent[]; added: string[] }
  /** `removed`: the members taken out (ids that were not members are left out); `archived`: nobody is left. */
  removeMembers: { events: DuoEvent[]; removed: string[]; archived: boolean }
  rename: { events: DuoEvent[] }
  /** `resumed`: whether the conversation was paused. */
  resume: { events: DuoEvent[]; resumed: boolean }
  /** `paused`: whether this paused it (false: it was paused already). */
  pause: { events: DuoEvent[]; paused: boolean }
  report: { events: DuoEvent[] }
}
// A command kind without its decision shape does not compile.
type EveryKind<T extends Record<Command['kind'], { events: DuoEvent[] }>> = T
type CheckedDecisions = EveryKind<Decisions>

/** The decision of one command kind (`Decision<'talk'>`), or of any (`Decision`). */
export type Decision<K extends Command['kind'] = Command['kind']> = CheckedDecisions[K]

const utf8 = new TextEncoder()

/** The direct pair's key: the two ids sorted. */
export const pairOf = (a: string, b: string): [string, string] => (a < b ? [a, b] : [b, a])

/** The direct conversation's name for a pair: `direct_<a>_<b>` sorted, with a suffix if another pair has it. */
export function directIdFor(a: string, b: string, taken: (id: string) => boolean): string {
  const [low, high] = pairOf(a, b)
  const base = `direct_${low}_${high}`
  if (!taken(base)) return base
  for (let n = 2; ; n++) if (!taken(`${base}_${n}`)) return `${base}_${n}`
}

/** Decides `command` against `view`: the events to append and what the caller answers, or the refusal. */
export function decide<C extends Command>(command: C, view: DecisionView, rules: Rules): Result<Decision<C['kind']>> {
  return decideAny(command, view, rules) as Result<Decision<C['kind']>>
}

function decideAny(command: Command, view: DecisionView, rules: Rules): Result<Decision> {
  switch (command.kind) {
    case 'register': {
      const existing = view.partner(command.partnerId)
      // Ids are unique without regard to case, and look-alikes (`aIice` for `alice`) are refused too. Only new
      // ids: an old log may hold both `Alice` and `alice`, and each still re-registers.
      const like = existing ? null : view.partnerLike(command.partnerId)
      if (like) return refuse({ reason: 'partner_id_taken', partnerId: command.partnerId, existing: like.id, lookalike: like.lookalike })
      // Checked here too, not only by the route: two first registrations racing must not both succeed.
      if (command.presentedTokenHash !== undefined && existing?.tokenHash && existing.tokenHash !== command.presentedTokenHash)
        return refuse(
          command.presentedTokenHash === null
            ? { reason: 'token_required', partnerId: command.partnerId }
            : { reason: 'acting_for_another', partnerId: command.partnerId },
        )
      // Retirement is final: the id is never handed out again, so nobody can take over its history.
      if (existing?.retired) return refuse({ reason: 'partner_retired', partnerId: command.partnerId })
      const issue = command.newTokenHash !== undefined && (existing === null || existing.tokenHash === null)
      const kind = command.partnerKind ?? existing?.kind ?? 'agent'
      const keep = command.keepIdentity === true && existing !== null
      return ok<Decision<'register'>>({
        tokenIssued: issue,
        events: [
          {
            type: 'PartnerRegistered',
            data: {
              partnerId: command.partnerId,
              name: keep ? existing.name : (command.name ?? command.partnerId),
              projectPath: keep ? existing.projectPath : (command.projectPath ?? null),
              ...(issue ? { tokenHash: command.newTokenHash } : {}),
              // Absent means agent, so an agent's registration reads as it did before kinds existed.
              ...(kind === 'human' ? { kind } : {}),
            },
          },
        ],
      })
    }
    case 'unregister': {
      const refused = unusable(view, command.partnerId)
      if (refused) return refuse(refused)
      if (view.partner(command.partnerId)!.status === 'offline') return ok({ events: [] })
      if ((command.otherSessions ?? 0) > 0) return ok({ events: [], stillOnline: true })
      return ok({ events: [{ type: 'PartnerWentOffline', data: { partnerId: command.partnerId } }] })
    }
    case 'reissueToken': {
      const refused = unusable(view, command.partnerId)
      if (refused) return refuse(refused)
      return ok<Decision<'reissueToken'>>({
        tokenIssued: true,
        events: [{ type: 'PartnerTokenReissued', data: { partnerId: command.partnerId, tokenHash: command.newTokenHash } }],
      })
    }
    case 'talk':
      return decideTalk(command, view, rules)
    case 'createGroup': {
      const refused = unusable(view, command.creatorId)
      if (refused) return refuse(refused)
      const members = [...new Set([command.creatorId, ...command.participants])]
      if (members.length > rules.maxGroupMembers) return refuse({ reason: 'group_too_large', limit: rules.maxGroupMembers })
      if (members.length < 2) return refuse({ reason: 'invalid_request', message: 'a group needs at least one other participant' })
      const cannotJoin = firstThatCannotJoin(members, view, rules)
      if (cannotJoin) return refuse(cannotJoin)
      return ok<Decision<'createGroup'>>({
        conversationId: command.groupId,
        events: [
          {
            type: 'ConversationCreated',
            data: {
              conversationId: command.groupId,
              kind: 'group',
              name: command.name,
              createdBy: command.creatorId,
              participants: members,
            },
          },
        ],
      })
    }
    case 'leave': {
      const { partnerId, conversationId } = command
      const refused = unusable(view, partnerId)
      if (refused) return refuse(refused)
      const conversation = view.conversation(conversationId)
      if (!conversation) return refuse({ reason: 'unknown_conversation', conversationId })
      if (!view.isMember(conversationId, partnerId)) return refuse({ reason: 'not_a_participant', conversationId })
      if (conversation.type === 'direct') return refuse({ reason: 'cannot_leave_direct', conversationId })
      const last = view.members(conversationId).length === 1
      const events: DuoEvent[] = [{ type: 'ParticipantLeft', data: { conversationId, partnerId } }]
      if (last) events.push({ type: 'ConversationArchived', data: { conversationId } })
      return ok<Decision<'leave'>>({ events, archived: last })
    }
    case 'setStatus': {
      const refused = unusable(view, command.partnerId)
      if (refused) return refuse(refused)
      return ok({ events: [{ type: 'PartnerStatusChanged', data: { partnerId: command.partnerId, message: command.message } }] })
    }
    case 'setNotifications': {
      const refused = unusable(view, command.partnerId)
      if (refused) return refuse(refused)
      return ok({
        events: [{ type: 'NotificationsSwitched', data: { partnerId: command.partnerId, enabled: command.enabled } }],
      })
    }
    case 'ack': {
      const refused = unusable(view, command.partnerId)
      if (refused) return refuse(refused)
      if (command.cursor > view.lastSeq())
        return refuse({ reason: 'cursor_ahead', cursor: command.cursor, lastSeq: view.lastSeq() })
      if (command.conversationId !== undefined) {
        if (!view.conversation(command.conversationId))
          return refuse({ reason: 'unknown_conversation', conversationId: command.conversationId })
        if (!view.isMember(command.conversationId, command.partnerId))
          return refuse({ reason: 'not_a_participant', conversationId: command.conversationId })
      }
      const events: DuoEvent[] = view
        .ackable(command.partnerId, command.cursor, command.conversationId)
        .filter((row) => row.upto !== null && row.upto > row.read_seq)
        .map((row) => ({
          type: 'ReadPositionAdvanced',
          data: { partnerId: command.partnerId, conversationId: row.conversation_id, seq: row.upto! },
        }))
      return ok({ events })
    }
    case 'retire':
      return decideRetire(command.partnerId, view)
    case 'addMembers':
      return decideAddMembers(command, view, rules)
    case 'removeMembers':
      return decideRemoveMembers(command, view)
    case 'rename': {
      const { partnerId, conversationId, name } = command
      const refused = unusable(view, partnerId) ?? groupOpenTo(view, conversationId, partnerId)
      if (refused) return refuse(refused)
      if (view.conversation(conversationId)!.name === name) return ok({ events: [] })
      return ok({ events: [{ type: 'ConversationRenamed', data: { conversationId, name, renamedBy: partnerId } }] })
    }
    case 'resume':
      return decideResume(command, view)
    case 'pause':
      return decidePause(command, view)
    case 'report':
      return decideReport(command, view)
    default: {
      const unhandled: never = command
      throw new Error(`unhandled command ${JSON.stringify(unhandled)}`)
    }
  }
}

/** Why `partnerId` cannot act or be acted on: never registered, or retired. */
function unusable(view: DecisionView, partnerId: string): Rejection | null {
  const partner = view.partner(partnerId)
  if (!partner) return { reason: 'unknown_partner', partnerId }
  return partner.retired ? { reason: 'partner_retired', partnerId } : null
}

/** Why `partnerId` may not change the group `conversationId`: unknown, direct, archived, or not a member. */
function groupOpenTo(view: DecisionView, conversationId: string, partnerId: string): Rejection | null {
  const conversation = view.conversation(conversationId)
  if (!conversation) return { reason: 'unknown_conversation', conversationId }
  if (conversation.type !== 'group') return { reason: 'not_a_group', conversationId }
  if (conversation.is_archived) return { reason: 'conversation_archived', conversationId }
  return view.isMember(conversationId, partnerId) ? null : { reason: 'not_a_participant', conversationId }
}

/** The first of `ids` that may not join one more group: unknown, retired, or already in as many as allowed. */
function firstThatCannotJoin(ids: string[], view: DecisionView, rules: Rules): Rejection | null {
  for (const id of ids) {
    const refused = unusable(view, id)
    if (refused) return refused
  }
  for (const id of ids)
    if (view.groupCount(id) >= rules.maxGroupsPerPartner)
      return { reason: 'too_many_groups', partnerId: id, limit: rules.maxGroupsPerPartner }
  return null
}

/** Why a person may not change the group `conversationId`: unknown, direct or archived. A person need not be a member. */
function groupOpenToHuman(view: DecisionView, conversationId: string): Rejection | null {
  const conversation = view.conversation(conversationId)
  if (!conversation) return { reason: 'unknown_conversation', conversationId }
  if (conversation.type !== 'group') return { reason: 'not_a_group', conversationId }
  return conversation.is_archived ? { reason: 'conversation_archived', conversationId } : null
}

const isHuman = (view: DecisionView, partnerId: string) => view.partner(partnerId)?.kind === 'human'

function decideAddMembers(command: Extract<Command, { kind: 'addMembers' }>, view: DecisionView, rules: Rules): Result<Decision<'addMembers'>> {
  const { partnerId, conversationId } = command
  // A person oversees every group (as when talking): adding needs no membership of theirs.
  const refused =
    unusable(view, partnerId) ??
    (isHuman(view, partnerId) ? groupOpenToHuman(view, conversationId) : groupOpenTo(view, conversationId, partnerId))
  if (refused) return refuse(refused)
  const added = [...new Set(command.members)].filter((id) => !view.isMember(conversationId, id))
  if (added.length === 0) return ok({ events: [], added })
  const size = view.members(conversationId).length + added.length
  if (size > rules.maxGroupMembers) return refuse({ reason: 'group_too_large', limit: rules.maxGroupMembers })
  const cannotJoin = firstThatCannotJoin(added, view, rules)
  if (cannotJoin) return refuse(cannotJoin)
  return ok({ added, events: [{ type: 'ParticipantsAdded', data: { conversationId, addedBy: partnerId, partnerIds: added } }] })
}

/** A person takes members out of a group (an agent only ever leaves by itself); the last one out archives it. */
function decideRemoveMembers(command: Extract<Command, { kind: 'removeMembers' }>, view: DecisionView): Result<Decision<'removeMembers'>> {
  const { partnerId, conversationId } = command
  const refused = unusable(view, partnerId)
  if (refused) return refuse(refused)
  if (!isHuman(view, partnerId)) return refuse({ reason: 'not_human', partnerId, action: 'remove members from a group (an agent leaves by itself)' })
  const closed = groupOpenToHuman(view, conversationId)
  if (closed) return refuse(closed)
  const removed = [...new Set(command.members)].filter((id) => view.isMember(conversationId, id))
  const archived = removed.length > 0 && removed.length === view.members(conversationId).length
  const events: DuoEvent[] = removed.map((id) => ({ type: 'ParticipantLeft', data: { conversationId, partnerId: id, removedBy: partnerId } }))
  if (archived) events.push({ type: 'ConversationArchived', data: { conversationId } })
  return ok({ events, removed, archived })
}

/**
 * Retirement: the partner leaves every group it is in (the last one out archives it, as when leaving), and
 * its direct conversations are archived, since nobody is left to read them. Its messages stay where they are.
 */
function decideRetire(partnerId: string, view: DecisionView): Result<Decision<'retire'>> {
  const refused = unusable(view, partnerId)
  if (refused) return refuse(refused)
  const events: DuoEvent[] = [{ type: 'PartnerRetired', data: { partnerId } }]
  for (const c of view.conversationsOf(partnerId)) {
    if (c.type === 'group') events.push({ type: 'ParticipantLeft', data: { conversationId: c.id, partnerId } })
    if ((c.type === 'direct' || c.members === 1) && !c.is_archived)
      events.push({ type: 'ConversationArchived', data: { conversationId: c.id } })
  }
  return ok({ events })
}

/** Who may pause or resume: the operator (no `partnerId`), or a human partner, member or not. */
function humanOrOperator(view: DecisionView, partnerId: string | undefined, action?: string): Rejection | null {
  if (partnerId === undefined) return null
  const refused = unusable(view, partnerId)
  if (refused) return refused
  // A human oversees every conversation (as when talking), so a human need not be a member.
  if (view.partner(partnerId)!.kind === 'human') return null
  return { reason: 'not_human', partnerId, ...(action !== undefined ? { action } : {}) }
}

function decidePause(command: Extract<Command, { kind: 'pause' }>, view: DecisionView): Result<Decision<'pause'>> {
  const { conversationId, partnerId } = command
  const conversation = view.conversation(conversationId)
  if (!conversation) return refuse({ reason: 'unknown_conversation', conversationId })
  const refused = humanOrOperator(view, partnerId, 'pause a conversation')
  if (refused) return refuse(refused)
  if (conversation.is_archived) return refuse({ reason: 'conversation_archived', conversationId })
  if (conversation.is_paused) return ok({ events: [], paused: false })
  const by = partnerId === undefined ? { pausedBy: 'operator' as const } : { pausedBy: 'human' as const, partnerId }
  return ok({ paused: true, events: [{ type: 'ConversationPaused', data: { conversationId, hops: conversation.hops, ...by } }] })
}

function decideResume(command: Extract<Command, { kind: 'resume' }>, view: DecisionView): Result<Decision<'resume'>> {
  const { conversationId, partnerId } = command
  const conversation = view.conversation(conversationId)
  if (!conversation) return refuse({ reason: 'unknown_conversation', conversationId })
  const refused = humanOrOperator(view, partnerId)
  if (refused) return refuse(refused)
  const resumed = conversation.is_paused === 1
  // A resume also starts the count over when nothing was paused yet; with nothing to change it records nothing.
  if (!resumed && conversation.hops === 0) return ok({ events: [], resumed })
  return ok({
    resumed,
    events: [{ type: 'ConversationResumed', data: { conversationId, ...(partnerId !== undefined ? { partnerId } : {}) } }],
  })
}

function decideTalk(command: Extract<Command, { kind: 'talk' }>, view: DecisionView, rules: Rules): Result<Decision<'talk'>> {
  const { fromId, content, idempotencyKey } = command
  const sender = view.partner(fromId)
  if (!sender) return refuse({ reason: 'unknown_partner', partnerId: fromId })
  const human = sender.kind === 'human'
  if (sender.retired) return refuse({ reason: 'partner_retired', partnerId: fromId })
  if (idempotencyKey !== undefined) {
    const original = view.messageByKey(fromId, idempotencyKey)
    if (original) return ok({ events: [], conversationId: original.conversation_id, duplicateOf: original.seq })
  }
  if (content.length === 0) return refuse({ reason: 'invalid_request', message: 'a message must not be empty' })
  // Cheap bound first: a UTF-16 string of n units encodes to at most 3n bytes.
  if (content.length * 3 > rules.maxMessageBytes && utf8.encode(content).length > rules.maxMessageBytes)
    return refuse({ reason: 'message_too_large', limit: rules.maxMessageBytes })

  const sent = (conversationId: string): DuoEvent => ({
    type: 'MessageSent',
    data: {
      conversationId,
      fromId,
      content,
      ...(idempotencyKey !== undefined ? { idempotencyKey } : {}),
      ...(human ? { fromKind: 'human' as const } : {}),
    },
  })

  if (command.conversationId !== undefined) {
    const conversationId = command.conversationId
    const conversation = view.conversation(conversationId)
    if (!conversation) return refuse({ reason: 'unknown_conversation', conversationId })
    // Archived first: a group is archived only once everyone left, so a membership check first would hide it.
    if (conversation.is_archived) return refuse({ reason: 'conversation_archived', conversationId })
    // A person oversees: they may step into any conversation without joining it (the console, `bun run duo`).
    if (!human && !view.isMember(conversationId, fromId)) return refuse({ reason: 'not_a_participant', conversationId })
    return guarded(conversationId, conversation, replyAcknowledges(view, fromId, conversationId))
  }
  if (command.to === undefined) return refuse({ reason: 'no_recipient' })
  const to = command.to
  if (to === fromId) return refuse({ reason: 'talk_to_self' })
  const refused = unusable(view, to)
  if (refused) return refuse(refused)
  const existing = view.directBetween(fromId, to)
  if (existing) {
    const conversation = view.conversation(existing)!
    if (conversation.is_archived) return refuse({ reason: 'conversation_archived', conversationId: existing })
    return guarded(existing, conversation, replyAcknowledges(view, fromId, existing))
  }
  const conversationId = directIdFor(fromId, to, (id) => view.conversation(id) !== null)
  const created: DuoEvent = {
    type: 'ConversationCreated',
    data: { conversationId, kind: 'direct', name: null, createdBy: fromId, participants: [fromId, to] },
  }
  return guarded(conversationId, { hops: 0, is_paused: 0 }, [created])

  /**
   * The loop guard. A human's message starts the count over (resuming a paused conversation first); an
   * agent's is refused in a paused conversation, and the one that reaches `maxHops` pauses it.
   */
  function guarded(conversationId: string, state: { hops: number; is_paused: number; paused_by?: 'operator' | 'human' | null }, before: DuoEvent[]): Result<Decision<'talk'>> {
    if (human) {
      const resume: DuoEvent[] = state.is_paused
        ? [{ type: 'ConversationResumed', data: { conversationId, partnerId: fromId } }]
        : []
      return ok({ conversationId, events: [...before, ...resume, sent(conversationId)] })
    }
    // Paused stays paused with the guard off (DUO_MAX_HOPS=0): a person may have paused it, and only a resume ends it.
    if (state.is_paused)
      return refuse({
        reason: 'conversation_paused',
        conversationId,
        hops: state.hops,
        ...(state.paused_by ? { pausedBy: state.paused_by } : {}),
      })
    if (rules.maxHops === 0) return ok({ conversationId, events: [...before, sent(conversationId)] })
    const hops = state.hops + 1
    const pause: DuoEvent[] = hops >= rules.maxHops ? [{ type: 'ConversationPaused', data: { conversationId, hops } }] : []
    return ok({ conversationId, events: [...before, sent(conversationId), ...pause] })
  }
}

/**
 * Replying into a conversation acknowledges what the replying session was shown there: the messages up to
 * its pushed or surfaced position become read, so `listen` does not offer them again.
 */
function replyAcknowledges(view: DecisionView, partnerId: string, conversationId: string): DuoEvent[] {
  const { pushed, surfaced, read } = view.shown(partnerId, conversationId)
  const shown = Math.max(pushed, surfaced)
  return shown > read ? [{ type: 'ReadPositionAdvanced', data: { partnerId, conversationId, seq: shown } }] : []
}

function decideReport(command: Extract<Command, { kind: 'report' }>, view: DecisionView): Result<Decision> {
  const { partnerId, state } = command
  if (!view.partner(partnerId)) return refuse({ reason: 'unknown_partner', partnerId })
  const best = new Map<string, number>()
  for (const { conversationId, seq } of command.marks) best.set(conversationId, Math.max(best.get(conversationId) ?? 0, seq))
  const events: DuoEvent[] = []
  for (const [conversationId, seq] of best) {
    if (seq > view.lastSeq()) return refuse({ reason: 'cursor_ahead', cursor: seq, lastSeq: view.lastSeq() })
    if (!view.conversation(conversationId)) return refuse({ reason: 'unknown_conversation', conversationId })
    if (!view.isMember(conversationId, partnerId)) return refuse({ reason: 'not_a_participant', conversationId })
    const position = view.delivery(partnerId, conversationId, seq)
    // Only forward, only onto a message, and nothing for what is already further along (read covers every state).
    if (position.upto === null || position.upto <= Math.max(position[state], position.read)) continue
    events.push({ type: 'DeliveryAdvanced', data: { partnerId, conversationId, state, seq: position.upto } })
  }
  return ok({ events })
}
