// Talking and conversations: talk, create a group, list, leave, history, participants.
import { Elysia } from 'elysia'
import { CreateGroupInput, TalkInput } from '../../events/schema.ts'
import type { ConversationRow } from '../../projections/conversations.ts'
import type { Access, BrokerDeps } from '../deps.ts'
import { beyondLog, rejected } from '../rejections.ts'
import { ConversationParams, HistoryQuery, IdempotencyHeader, LeaveBody, PartnerParams } from '../schemas.ts'

export const conversationJson = (c: ConversationRow) => ({
  id: c.id,
  name: c.name,
  type: c.type,
  created_by: c.created_by,
  created_at: c.created_at,
  is_archived: c.is_archived === 1,
})

export function conversationRoutes({ store, newGroupId }: BrokerDeps, access: Access) {
  const { commands, views } = store

  return new Elysia({ name: 'conversations' })
    .post(
      '/talk',
      async ({ body, headers }) => {
        const denied = access.actAs(access.actorOf(headers.authorization), body.fromId)
        if (denied) return rejected(denied)
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
        const { decision, appended, recipients = [], notified = [] } = result.value
        const seq = decision.duplicateOf ?? appended[appended.length - 1]!.seq
        return {
          success: true,
          conversationId: decision.conversationId!,
          messageId: seq,
          seq,
          notified: notified.length,
          queued: recipients.length - notified.length,
          duplicate: decision.duplicateOf !== undefined,
        }
      },
      { body: TalkInput, headers: IdempotencyHeader, detail: { summary: 'Send a message to a partner or into a conversation' } },
    )
    .post(
      '/conversations',
      async ({ body, headers }) => {
        const denied = access.actAs(access.actorOf(headers.authorization), body.creatorId)
        if (denied) return rejected(denied)
        const result = await commands.execute({ kind: 'createGroup', ...body, groupId: newGroupId() })
        if (!result.ok) return rejected(result.rejection)
        return { success: true, conversation: conversationJson(views.conversations.get(result.value.decision.conversationId!)!) }
      },
      { body: CreateGroupInput, detail: { summary: 'Create a group conversation' } },
    )
    .get(
      '/conversations/:id',
      ({ params, headers }) => {
        const denied = access.actAs(access.actorOf(headers.authorization), params.id)
        if (denied) return rejected(denied)
        return {
          conversations: views.conversations.forPartner(params.id).map((c) => ({
            ...conversationJson(c),
            last_message_seq: c.last_message_seq,
            read_seq: c.read_seq,
            unread_count: c.unread_count,
            participants: views.conversations.membersWithNames(c.id),
          })),
        }
      },
      { params: PartnerParams, detail: { summary: "A partner's conversations with unread counts (path id is the partner)" } },
    )
    .post(
      '/conversations/:id/leave',
      async ({ params, body, headers }) => {
        const denied = access.actAs(access.actorOf(headers.authorization), body.partnerId)
        if (denied) return rejected(denied)
        const result = await commands.execute({ kind: 'leave', partnerId: body.partnerId, conversationId: params.id })
        return result.ok ? { success: true, left: true, archived: result.value.decision.archived === true } : rejected(result.rejection)
      },
      { params: ConversationParams, body: LeaveBody, detail: { summary: 'Leave a group; the last one out archives it' } },
    )
    .get(
      '/conversations/:id/messages',
      ({ params, query, headers }) => {
        const denied = access.canReadConversation(access.actorOf(headers.authorization), params.id)
        if (denied) return rejected(denied)
        // `before` is a cursor like any other: past the end of the log (last seq + 1 still means "all") is a 409.
        const tooFar = query.before === undefined ? null : beyondLog(query.before - 1, store.log.lastSeq())
        if (tooFar) return tooFar
        return {
          conversation: conversationJson(views.conversations.get(params.id)!),
          messages: views.messages.history(params.id, query.limit ?? 50, query.before),
        }
      },
      { params: ConversationParams, query: HistoryQuery, detail: { summary: 'History: the latest `limit` messages before `before`, oldest first' } },
    )
    .get(
      '/conversations/:id/participants',
      ({ params, headers }) => {
        const denied = access.canReadConversation(access.actorOf(headers.authorization), params.id)
        if (denied) return rejected(denied)
        const participants = views.conversations
          .members(params.id)
          .map((id) => views.partners.get(id))
          .filter((row) => row !== null)
          .map(access.partnerJson)
        return { participants }
      },
      { params: ConversationParams, detail: { summary: 'Current members of a conversation' } },
    )
}
