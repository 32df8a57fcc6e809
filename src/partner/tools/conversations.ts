// The conversation tools: list yours, create a group, leave one, read its history.
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { z } from 'zod'
import { ConversationId, GroupName, PartnerId } from '../../events/schema.ts'
import type { ConversationView, MessageView } from '../broker-client.ts'
import { MessageOut, messageOut, plural, textResult } from '../texts.ts'
import { plain, quoted, renderMessages } from '../untrusted.ts'
import { brokerCall, failure, resolveConversation, type ToolContext, ToolFailure } from './common.ts'

const conversationLine = (c: ConversationView, self: string) => {
  const others = (c.participants ?? []).map((p) => p.id).filter((p) => p !== self).map(plain)
  const label = c.type === 'group' ? `group ${quoted(c.name ?? c.id)}` : 'direct'
  const unread = c.unread_count ? `, ${plural(c.unread_count, 'unread message')}` : ''
  const paused = c.is_paused ? ' (PAUSED by the loop guard: agents wait for a human there)' : ''
  return `- ${plain(c.id)}: ${label} with ${others.join(', ') || 'nobody else'}${c.is_archived ? ' (archived)' : ''}${paused}${unread}`
}

/** Comma- or space-separated partner ids, deduplicated, or why they are not. */
function parseIds(list: string): string[] | string {
  const ids = [...new Set(list.split(/[,\s]+/).map((s) => s.trim()).filter(Boolean))]
  const bad = ids.filter((id) => !PartnerId.safeParse(id).success)
  if (bad.length > 0) return `${bad.map((b) => `"${b}"`).join(', ')} ${bad.length === 1 ? 'is not a partner id' : 'are not partner ids'}; pass ids from list_partners, e.g. "alice, bob"`
  return ids.length > 0 ? ids : 'no partner was named'
}

const STATE_TEXT = { queued: 'not yet in their session', pushed: 'pushed into their session', surfaced: 'shown to their model', read: 'read' } as const

/** Where the recipients stand with your own messages (the latest few), in Duo's words: ids are `plain`. */
function deliveryLines(yours: Array<{ seq: number; recipients: Array<{ partnerId: string; state: keyof typeof STATE_TEXT }> }>): string {
  const latest = yours.slice(-10)
  if (latest.length === 0) return ''
  const lines = latest.map(
    (m) => `- #${m.seq}: ${m.recipients.map((r) => `${plain(r.partnerId)} ${STATE_TEXT[r.state]}`).join(', ') || 'no recipients'}`,
  )
  return `\n\nWhere your messages stand${yours.length > latest.length ? ' (the latest 10)' : ''}:\n${lines.join('\n')}`
}

export function registerConversationTools(server: McpServer, ctx: ToolContext): void {
  const { partner } = ctx
  const { client } = partner
  const notice = () => partner.notice()

  server.registerTool(
    'list_conversations',
    {
      title: 'List your conversations',
      description: 'List the conversations you take part in (direct and group), with their ids, members and unread counts.',
      inputSchema: z.object({}),
      outputSchema: z.object({
        conversations: z.array(
          z.object({
            id: z.string(),
            type: z.string(),
            name: z.string().nullable(),
            participants: z.array(z.string()),
            archived: z.boolean(),
            paused: z.boolean(),
            unread: z.number(),
          }),
        ),
      }),
    },
    async () => {
      const listed = await brokerCall(ctx, 'list_conversations', () => client.conversations(partner.id))
      if (listed instanceof ToolFailure) return listed.result
      const conversations = listed.conversations.map((c) => ({
        id: c.id,
        type: c.type,
        name: c.name ?? null,
        participants: (c.participants ?? []).map((p) => p.id),
        archived: c.is_archived ?? false,
        paused: c.is_paused ?? false,
        unread: c.unread_count ?? 0,
      }))
      const text =
        conversations.length === 0
          ? 'You are in no conversation yet. talk(message, to: <partner id>) starts a direct one; create_conversation makes a group.'
          : `${plural(conversations.length, 'conversation')}:\n${listed.conversations.map((c) => conversationLine(c, partner.id)).join('\n')}\n\n` +
            'Post into one with talk(message, conversation: <id>); read its past with history.' +
            (conversations.some((c) => c.paused)
              ? ' Do not post into a paused conversation: tell your human it is paused and wait for them.'
              : '')
      return textResult(text, { conversations }, notice())
    },
  )

  server.registerTool(
    'create_conversation',
    {
      title: 'Create a group conversation',
      description: 'Create a named group conversation with the given partners (and you). Answers with the new group id to use with talk.',
      inputSchema: z.object({
        name: GroupName.describe('Group name, e.g. "Backend team"'),
        participants: z
          .string()
          .min(1)
          .describe('Comma-separated partner ids to include besides you, e.g. "frontend, backend"'),
      }),
      outputSchema: z.object({ conversationId: z.string(), name: z.string(), participants: z.array(z.string()) }),
    },
    async ({ name, participants }) => {
      const ids = [...new Set(participants.split(/[,\s]+/).map((s) => s.trim()).filter(Boolean))].filter((id) => id !== partner.id)
      const bad = ids.filter((id) => !PartnerId.safeParse(id).success)
      if (bad.length > 0 || ids.length === 0) {
        const why = bad.length > 0 ? `${bad.map((b) => `"${b}"`).join(', ')} ${bad.length === 1 ? 'is not a partner id' : 'are not partner ids'}` : 'no other partner was named'
        return failure(ctx, `Cannot create the group: ${why}. Pass comma-separated ids from list_partners, e.g. "alice, bob".`).result
      }
      const created = await brokerCall(ctx, 'create_conversation', () =>
        client.createConversation({ creatorId: partner.id, name, participants: ids }),
      )
      if (created instanceof ToolFailure) return created.result
      const id = created.conversation.id
      const text = `Created group conversation ${plain(id)} (${quoted(name)}) with ${ids.join(', ')} and you. Send into it with talk(message, conversation: "${plain(id)}").`
      return textResult(text, { conversationId: id, name, participants: [partner.id, ...ids] }, notice())
    },
  )

  server.registerTool(
    'add_members',
    {
      title: 'Add partners to a group',
      description:
        'Add partners to a group conversation you are in (one who left may be added back). They then receive its messages and can read its history.',
      inputSchema: z.object({
        conversation: ConversationId.describe('The group id, e.g. "group_..."'),
        partners: z.string().min(1).describe('Comma-separated partner ids to add, e.g. "frontend, backend"'),
      }),
      outputSchema: z.object({ conversationId: z.string(), added: z.array(z.string()) }),
    },
    async ({ conversation, partners }) => {
      const ids = parseIds(partners)
      if (typeof ids === 'string') return failure(ctx, `Cannot add members: ${ids}.`).result
      const id = await resolveConversation(ctx, 'add_members', conversation)
      if (id instanceof ToolFailure) return id.result
      const added = await brokerCall(ctx, 'add_members', () => client.addMembers(id, partner.id, ids))
      if (added instanceof ToolFailure) return added.result
      const text =
        added.added.length === 0
          ? `Everyone you named is already in ${plain(id)}; nothing changed.`
          : `Added ${added.added.map(plain).join(', ')} to ${plain(id)}. They receive its messages from now on.`
      return textResult(text, { conversationId: id, added: added.added }, notice())
    },
  )

  server.registerTool(
    'rename_conversation',
    {
      title: 'Rename a group',
      description: 'Change the name of a group conversation you are in; every member sees the new name.',
      inputSchema: z.object({
        conversation: ConversationId.describe('The group id, e.g. "group_..."'),
        name: GroupName.describe('The new name, e.g. "Release crew"'),
      }),
      outputSchema: z.object({ conversationId: z.string(), name: z.string() }),
    },
    async ({ conversation, name }) => {
      const id = await resolveConversation(ctx, 'rename_conversation', conversation)
      if (id instanceof ToolFailure) return id.result
      const renamed = await brokerCall(ctx, 'rename_conversation', () => client.rename(id, partner.id, name))
      if (renamed instanceof ToolFailure) return renamed.result
      return textResult(`${plain(id)} is now called ${quoted(name)}.`, { conversationId: id, name }, notice())
    },
  )

  server.registerTool(
    'leave_conversation',
    {
      title: 'Leave a group conversation',
      description: 'Leave a group conversation; you stop receiving its messages. A group is archived when its last member leaves. Direct conversations cannot be left.',
      inputSchema: z.object({ conversation: ConversationId.describe('The group id, e.g. "group_..."') }),
      outputSchema: z.object({ conversationId: z.string(), left: z.boolean(), archived: z.boolean() }),
    },
    async ({ conversation }) => {
      const id = await resolveConversation(ctx, 'leave_conversation', conversation)
      if (id instanceof ToolFailure) return id.result
      const left = await brokerCall(ctx, 'leave_conversation', () => client.leave(id, partner.id))
      if (left instanceof ToolFailure) return left.result
      const archived = left.archived ?? false
      const text = `You left ${plain(id)}.${archived ? ' Nobody is left in it, so it is now archived.' : ''} You will not receive its messages any more.`
      return textResult(text, { conversationId: id, left: left.left ?? true, archived }, notice())
    },
  )

  server.registerTool(
    'history',
    {
      title: 'Read a conversation',
      description: 'Show the latest messages of a conversation you are in, oldest first (read-only: does not mark anything read).',
      inputSchema: z.object({
        conversation: ConversationId.describe('Conversation id (or a partner id for your direct conversation with them)'),
        limit: z.number().int().min(1).max(1000).optional().describe('How many of the latest messages (default 50)'),
      }),
      outputSchema: z.object({
        conversationId: z.string(),
        messages: z.array(MessageOut),
        yours: z
          .array(
            z.object({
              seq: z.number(),
              recipients: z.array(z.object({ partnerId: z.string(), state: z.enum(['queued', 'pushed', 'surfaced', 'read']) })),
            }),
          )
          .describe('Your own messages shown here, and where each recipient stands with them'),
      }),
    },
    async ({ conversation, limit }) => {
      const id = await resolveConversation(ctx, 'history', conversation)
      if (id instanceof ToolFailure) return id.result
      const read = await brokerCall(ctx, 'history', () => client.history(id, limit))
      if (read instanceof ToolFailure) return read.result
      const messages: MessageView[] = read.messages
      const yours = read.messages.flatMap((m) =>
        m.from_id === partner.id && m.recipients ? [{ seq: m.seq, recipients: m.recipients }] : [],
      )
      const text =
        messages.length === 0
          ? `${plain(id)} has no messages yet.`
          : `The last ${plural(messages.length, 'message')} of ${plain(id)}, oldest first:\n\n${renderMessages(messages)}` +
            deliveryLines(yours)
      return textResult(text, { conversationId: id, messages: messages.map(messageOut), yours }, notice())
    },
  )

}
