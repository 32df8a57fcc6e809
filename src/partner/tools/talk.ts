// The `talk` tool: sends one message, exactly once, to a partner or into a conversation.
import { randomUUID } from 'node:crypto'
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { z } from 'zod'
import { ConversationId, PartnerId } from '../../events/schema.ts'
import { textResult } from '../texts.ts'
import { brokerCall, failure, resolveConversation, type ToolContext, ToolFailure } from './common.ts'

const TalkArgs = z.object({
  message: z.string().min(1, 'the message must not be empty').describe('The message text to send'),
  to: PartnerId.optional().describe('Partner id to message directly, e.g. "backend" (see list_partners)'),
  conversation: ConversationId.optional().describe(
    'Conversation id to post into instead, e.g. "group_..." or "direct_a_b" (see list_conversations)',
  ),
})

const TalkOut = z.object({
  conversationId: z.string(),
  messageId: z.union([z.number(), z.string()]),
  seq: z.number().optional(),
  to: z.string().optional().describe('The partner addressed, when sent directly'),
  notified: z.boolean().describe('Whether a recipient was connected and notified at once'),
  duplicate: z.boolean().describe('True when this was a retry the broker had already stored: nothing was sent twice'),
})

export function registerTalk(server: McpServer, ctx: ToolContext): void {
  const { partner } = ctx
  server.registerTool(
    'talk',
    {
      title: 'Send a message',
      description:
        'Send a message to another Claude Code partner (`to`, which opens your direct conversation with them on first use) ' +
        'or into a conversation (`conversation`). ' +
        'With neither, it goes to the only other partner if there is exactly one. ' +
        'The recipient reads it with listen (or sees it pushed); to wait for an answer, call listen afterwards.',
      inputSchema: TalkArgs,
      outputSchema: TalkOut,
    },
    async ({ message, to, conversation }) => {
      // One key per tool call: the client's retries of this request reuse it, so the message is stored once.
      const idempotencyKey = randomUUID()
      if (to && conversation) {
        return failure(ctx, 'Give either `to` (a partner id) or `conversation` (a conversation id), not both.').result
      }
      let target: { to?: string; conversationId?: string } = {}
      if (conversation) {
        const resolved = await resolveConversation(ctx, 'talk', conversation)
        if (resolved instanceof ToolFailure) return resolved.result
        target = { conversationId: resolved }
      } else if (to) {
        target = { to }
      } else {
        const listed = await brokerCall(ctx, 'talk', () => partner.client.partners())
        if (listed instanceof ToolFailure) return listed.result
        const others = listed.partners.filter((p) => p.id !== partner.id)
        const [only] = others
        if (others.length === 1 && only) target = { to: only.id }
        else if (others.length === 0) {
          return failure(
            ctx,
            'No other partner is registered with the broker yet, so there is nobody to send to. Start Duo in another Claude Code instance, then call list_partners.',
          ).result
        } else {
          const choices = others.map((p) => `${p.id}${p.status === 'online' ? ' (online)' : ` (${p.status ?? 'offline'})`}`)
          return failure(
            ctx,
            `Say who the message is for: there are ${others.length} other partners: ${choices.join(', ')}. Call talk again with \`to\` set to one of these ids, or with \`conversation\` set to a conversation id (see list_conversations).`,
          ).result
        }
      }
      const sent = await brokerCall(ctx, 'talk', () =>
        partner.client.talk({ fromId: partner.id, ...target, content: message, idempotencyKey }),
      )
      if (sent instanceof ToolFailure) return sent.result
      const notified = typeof sent.notified === 'number' ? sent.notified > 0 : sent.notified === true
      const recipient = target.to ? `${target.to} (conversation ${sent.conversationId})` : sent.conversationId
      const text = [
        `Sent message #${sent.seq ?? sent.messageId} to ${recipient}.`,
        sent.duplicate ? 'The broker already had this exact send from a retry, so it was stored only once.' : '',
        notified
          ? 'The recipient is connected and was notified at once.'
          : 'No recipient is connected right now; the message waits for them and reaches them at their next listen.',
        'To wait for a reply, call listen.',
      ]
        .filter(Boolean)
        .join(' ')
      return textResult(
        text,
        {
          conversationId: sent.conversationId,
          messageId: sent.messageId,
          seq: sent.seq,
          to: target.to,
          notified,
          duplicate: sent.duplicate ?? false,
        },
        partner.notice(),
      )
    },
  )
}
