// Talking and conversations: talk, create a group, list, leave, history, participants. Auth: `{ actAs: 'body.fromId' }` (or the field naming the acting partner), `{ member: 'params.id' }` to read one conversation.
import { Elysia } from 'elysia'
import { AddMembersInput, CreateGroupInput, RemoveMembersInput, RenameInput, TalkInput } from '../../events/schema.ts'
import type { ConversationRow } from '../../projections/conversations.ts'
import {
  ConversationsResponse,
  CreateGroupResponse,
  HistoryResponse,
  LeaveResponse,
  MembersResponse,
  RemoveMembersResponse,
  ParticipantsResponse,
  RenameResponse,
  PauseResponse,
  ResumeResponse,
  TalkResponse,
} from '../../wire/responses.ts'
import { authPlugin } from '../auth-plugin.ts'
import type { Access, BrokerDeps } from '../deps.ts'
import { pacedJson } from '../paced.ts'
import { beyondLog, rejected } from '../rejections.ts'
import { sourceAddress } from '../rate-limits.ts'
import { ConversationParams, HistoryQuery, IdempotencyHeader, LeaveBody, PartnerParams, ResumeBody } from '../schemas.ts'

export const conversationJson = (c: ConversationRow) => ({
  id: c.id,
  name: c.name,
  type: c.type,
  created_by: c.created_by,
  created_at: c.created_at,
  is_archived: c.is_archived === 1,
})
/** Beyond the seed's shape: the loop guard's state, for listings and the endpoints the seed did not have. */
const guardJson = (c: ConversationRow) => ({ is_paused: c.is_paused === 1, hops: c.hops })

export function conversationRoutes({ store, newGroupId, limits, config, sendBudget }: BrokerDeps, access: Access) {
  const { commands, views } = store
  const current = (id: string) => {
    const row = views.conversations.get(id)!
    return { ...conversationJson(row), ...guardJson(row) }
  }

  return new Elysia({ name: 'conversations' })
    .use(authPlugin(access))
    .post(
      '/talk',
      async ({ body, headers, server, request }) => {
        const limited =
          limits.check('talk', body.fromId) ?? limits.check('talkPerAddress', () => sourceAddress(server, request))
        if (limited) return rejected(limited)
        const idempotencyKey = headers['idempotency-key'] ?? body.idempotencyKey
        const result = await commands.execute({
          kind: 'talk',
          fromId: body.fromId,
          to: body.to,
          conversationId: body.conversationId,
          content: body.content,
          idempotencyKey,
        })
        if (!result.ok) return rejected(result.rejection)
        const { decision, appended, recipients, notified } = result.value
        // The message is not always the last event appended: the loop guard's pause may follow it.
        const seq = decision.duplicateOf ?? appended.findLast((e) => e.type === 'MessageSent')!.seq
        // The reply acknowledged what this session was shown in the conversation (see decide's replyAcknowledges).
        const acknowledged = appended.flatMap((e) =>
          e.type === 'ReadPositionAdvanced' ? [{ conversationId: e.data.conversationId, seq: e.data.seq }] : [],
        )
        return {
          success: true as const,
          conversationId: decision.conversationId,
          messageId: seq,
          seq,
          notified: notified.length,
          queued: recipients.length - notified.length,
          duplicate: decision.duplicateOf !== undefined,
          recipients: recipients.map((partnerId) => ({ partnerId, reachability: access.reachabilityOf(partnerId) })),
          acknowledged,
        }
      },
      {
        actAs: 'body.fromId',
        body: TalkInput,
        headers: IdempotencyHeader,
        response: { 200: TalkResponse },
        detail: { summary: 'Send a message to a partner or into a conversation' },
      },
    )
    .post(
      '/conversations',
      async ({ body }) => {
        const limited = limits.check('groups', body.creatorId)
        if (limited) return rejected(limited)
        const result = await commands.execute({ kind: 'createGroup', ...body, groupId: newGroupId() })
        if (!result.ok) return rejected(result.rejection)
        return { success: true as const, conversation: conversationJson(views.conversations.get(result.value.decision.conversationId)!) }
      },
      {
        actAs: 'body.creatorId',
        body: CreateGroupInput,
        response: { 200: CreateGroupResponse },
        detail: { summary: 'Create a group conversation' },
      },
    )
    .get(
      '/conversations/:id',
      ({ partnerId }) => ({
        conversations: views.conversations.forPartner(partnerId).map((c) => ({
          ...conversationJson(c),
          ...guardJson(c),
          last_message_seq: c.last_message_seq,
          read_seq: c.read_seq,
          unread_count: c.unread_count,
          participants: views.conversations.membersWithNames(c.id),
        })),
      }),
      {
        actAs: 'params.id',
        params: PartnerParams,
        response: { 200: ConversationsResponse },
        detail: { summary: "A partner's conversations with unread counts (path id is the partner)" },
      },
    )
    .post(
      '/conversations/:id/leave',
      async ({ params, partnerId }) => {
        const result = await commands.execute({ kind: 'leave', partnerId, conversationId: params.id })
        return result.ok ? { success: true as const, left: true, archived: result.value.decision.archived } : rejected(result.rejection)
      },
      {
        actAs: 'body.partnerId',
        params: ConversationParams,
        body: LeaveBody,
        response: { 200: LeaveResponse },
        detail: { summary: 'Leave a group; the last one out archives it' },
      },
    )
    .post(
      '/conversations/:id/members',
      async ({ params, partnerId, body }) => {
        const limited = limits.check('members', partnerId, body.members.length)
        if (limited) return rejected(limited)
        const result = await commands.execute({ kind: 'addMembers', partnerId, conversationId: params.id, members: body.members })
        if (!result.ok) return rejected(result.rejection)
        return { success: true as const, added: result.value.decision.added, conversation: current(params.id) }
      },
      {
        actAs: 'body.partnerId',
        params: ConversationParams,
        body: AddMembersInput,
        response: { 200: MembersResponse },
        detail: { summary: 'A member adds partners to a group (one who left may be added back)' },
      },
    )
    .delete(
      '/conversations/:id/members',
      async ({ params, partnerId, body }) => {
        const result = await commands.execute({ kind: 'removeMembers', partnerId, conversationId: params.id, members: body.members })
        if (!result.ok) return rejected(result.rejection)
        const { removed, archived } = result.value.decision
        return { success: true as const, removed, archived, conversation: current(params.id) }
      },
      {
        actAs: 'body.partnerId',
        params: ConversationParams,
        body: RemoveMembersInput,
        response: { 200: RemoveMembersResponse },
        detail: { summary: 'A person (a human partner, or the operator as one) takes members out of a group' },
      },
    )
    .post(
      '/conversations/:id/rename',
      async ({ params, partnerId, body }) => {
        const result = await commands.execute({ kind: 'rename', partnerId, conversationId: params.id, name: body.name })
        return result.ok ? { success: true as const, conversation: current(params.id) } : rejected(result.rejection)
      },
      {
        actAs: 'body.partnerId',
        params: ConversationParams,
        body: RenameInput,
        response: { 200: RenameResponse },
        detail: { summary: 'A member renames a group' },
      },
    )
    .post(
      '/conversations/:id/resume',
      async ({ params, resumedBy }) => {
        const result = await commands.execute({ kind: 'resume', conversationId: params.id, partnerId: resumedBy })
        if (!result.ok) return rejected(result.rejection)
        return { success: true as const, resumed: result.value.decision.resumed, conversation: current(params.id) }
      },
      {
        resumer: true,
        params: ConversationParams,
        body: ResumeBody,
        response: { 200: ResumeResponse },
        detail: { summary: 'Resume a conversation paused by the loop guard: the operator, or a human partner' },
      },
    )
    .post(
      '/conversations/:id/pause',
      async ({ params, resumedBy }) => {
        const result = await commands.execute({ kind: 'pause', conversationId: params.id, partnerId: resumedBy })
        if (!result.ok) return rejected(result.rejection)
        return { success: true as const, paused: result.value.decision.paused, conversation: current(params.id) }
      },
      {
        // Who may resume may pause: the operator, or a human partner.
        resumer: true,
        params: ConversationParams,
        body: ResumeBody,
        response: { 200: PauseResponse },
        detail: { summary: 'Pause a conversation as the loop guard does (agents wait): the operator, or a human partner' },
      },
    )
    .get(
      '/conversations/:id/messages',
      ({ params, query, request, actor }) => {
        // `before` is a cursor like any other: past the end of the log (last seq + 1 still means "all") is a 409.
        const tooFar = query.before === undefined ? null : beyondLog(query.before - 1, store.log.lastSeq())
        if (tooFar) return rejected(tooFar)
        const busy = sendBudget.refusal()
        if (busy) return busy as never
        // Cut by bytes too (`truncated`): the reader asks again with `before` = the first seq it got.
        const page = views.messages.historyPage(params.id, query.limit ?? 50, query.before, config.pageBytes)
        const conversation = conversationJson(views.conversations.get(params.id)!)
        // Streams a HistoryResponse body as the socket takes it (Elysia sends a Response as it is).
        return pacedJson(
          {
            head: `{"conversation":${JSON.stringify(conversation)},${page.truncated ? '"truncated":true,' : ''}"messages":[`,
            count: page.seqs.length,
            render: (i) => {
              const m = views.messages.bySeq(page.seqs[i]!)!
              // For the asker's own messages (every message for the operator or in open mode): where each recipient stands.
              const own = actor.kind !== 'partner' || m.from_id === actor.id
              return JSON.stringify(own ? { ...m, recipients: views.delivery.statesFor(params.id, [m])[0] } : m)
            },
            tail: ']}',
          },
          sendBudget,
          request.signal,
        ) as never
      },
      {
        member: 'params.id',
        params: ConversationParams,
        query: HistoryQuery,
        response: { 200: HistoryResponse },
        detail: { summary: 'History: the latest `limit` messages before `before`, oldest first' },
      },
    )
    .get(
      '/conversations/:id/participants',
      ({ params, actor }) => {
        const participants = views.conversations
          .members(params.id)
          .map((id) => views.partners.get(id))
          .filter((row) => row !== null)
          .map((row) => access.partnerJson(row, actor))
        return { participants }
      },
      {
        member: 'params.id',
        params: ConversationParams,
        response: { 200: ParticipantsResponse },
        detail: { summary: 'Current members of a conversation' },
      },
    )
}
