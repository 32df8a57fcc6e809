// The `talk` tool: sends one message, exactly once, to a partner or into a conversation.
import { createHash, randomUUID } from 'node:crypto'
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { z } from 'zod'
import { ConversationId, PartnerId } from '../../events/schema.ts'
import { textResult } from '../texts.ts'
import { plain } from '../untrusted.ts'
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
  recipients: z
    .array(z.object({ partnerId: z.string(), reachability: z.enum(['push', 'hook', 'listening', 'connected', 'offline']) }))
    .describe('Each recipient and how it is reached right now'),
})

type Reach = 'push' | 'hook' | 'listening' | 'connected' | 'offline'
const WHEN: Record<Reach, string> = {
  push: 'sees it now (pushed into their session)',
  hook: 'sees it now (their idle session is woken)',
  listening: 'gets it now (waiting in listen)',
  connected: 'sees it later, at their next tool call or prompt',
  offline: 'sees it later, when their session starts again',
}

/** Who will see the message now and who later, in one sentence per kind of reachability. */
export function whoSeesIt(recipients: Array<{ partnerId: string; reachability: Reach }>): string {
  if (recipients.length === 0) return 'Nobody else is in that conversation now.'
  const order: Reach[] = ['push', 'hook', 'listening', 'connected', 'offline']
  return order
    .flatMap((reach) => {
      const ids = recipients.filter((r) => r.reachability === reach).map((r) => plain(r.partnerId))
      return ids.length === 0 ? [] : [`${ids.join(', ')} ${WHEN[reach]}.`]
    })
    .join(' ')
}

/**
 * Idempotency keys of sends whose answer the model may not have seen, by (target, content).
 *
 * MCP clients never resend a request: when Claude Code cuts a long call (or the answer is lost),
 * the model calls `talk` again with the same arguments, which is a new request. To make that retry
 * the same message for the broker, a send keeps its key here from its start until its answer was
 * written to the client; a call that was cancelled, failed or whose answer could not be written
 * leaves it for `ttlMs`, so the retry reuses it and the broker stores the message once (answering
 * `duplicate`). A send whose answer did reach the model frees the key: sending the same text again
 * later is then deliberate and a new message.
 *
 * Preferred to a deterministic key of (partner, target, content, time bucket): that one would also
 * swallow a deliberate repeat ("ok", "done") within the bucket, and would still split a retry that
 * straddles a bucket boundary. The cost here: two identical sends running at the same moment are
 * stored once, and a partner restarted between a cut call and its retry no longer recognises it.
 */
export class PendingSends {
  private readonly entries = new Map<string, { key: string; expires: number }>()

  constructor(
    private readonly ttlMs = 10 * 60_000,
    private readonly now = () => Date.now(),
  ) {}

  /** The key for sending `content` to `target`: that of an earlier send the model may not have seen answered, else a new one. */
  claim(target: string, content: string): { key: string; delivered(): void } {
    const now = this.now()
    for (const [slot, entry] of this.entries) if (entry.expires <= now) this.entries.delete(slot)
    const slot = createHash('sha256').update(target).update('\0').update(content).digest('base64url')
    const entry = this.entries.get(slot) ?? { key: randomUUID(), expires: 0 }
    entry.expires = now + this.ttlMs
    this.entries.set(slot, entry)
    return {
      key: entry.key,
      // Its answer reached the model: a later identical send is a new message.
      delivered: () => {
        if (this.entries.get(slot)?.key === entry.key) this.entries.delete(slot)
      },
    }
  }

  get size(): number {
    return this.entries.size
  }
}

export function registerTalk(server: McpServer, ctx: ToolContext): void {
  const { partner, deliveries } = ctx
  const pending = new PendingSends()
  server.registerTool(
    'talk',
    {
      title: 'Send a message',
      description:
        'Send a message to another Claude Code partner (`to`, which opens your direct conversation with them on first use) ' +
        'or into a conversation (`conversation`). ' +
        'With neither, it goes to the only other partner if there is exactly one. ' +
        'The recipient reads it with listen (or sees it pushed); to wait for an answer, call listen afterwards. ' +
        'If a talk call was cut off or failed, calling it again with the same arguments does not send the message twice.',
      inputSchema: TalkArgs,
      outputSchema: TalkOut,
    },
    async ({ message, to, conversation }, extra) => {
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
        // Three partners are enough to tell "exactly one other" from "none" and "several", at any number of partners.
        const listed = await brokerCall(ctx, 'talk', () => partner.client.partners({ limit: 3 }))
        if (listed instanceof ToolFailure) return listed.result
        const others = listed.partners.filter((p) => p.id !== partner.id)
        const more = Boolean(listed.next_after_id)
        const [only] = others
        if (others.length === 1 && only && !more) target = { to: only.id }
        else if (others.length === 0) {
          return failure(
            ctx,
            'No other partner is registered with the broker yet, so there is nobody to send to. Start Duo in another Claude Code instance, then call list_partners.',
          ).result
        } else {
          const choices = others.map((p) => `${plain(p.id)} (${p.status === 'online' ? 'online' : 'offline'})`)
          const count = listed.total !== undefined ? listed.total - 1 : others.length
          const shown = more ? `${choices.join(', ')} and more (see list_partners)` : choices.join(', ')
          return failure(
            ctx,
            `Say who the message is for: there are ${count} other partners: ${shown}. Call talk again with \`to\` set to one of these ids, or with \`conversation\` set to a conversation id (see list_conversations).`,
          ).result
        }
      }
      // The same key as a send of this text to this target whose answer the model may not have seen (see PendingSends);
      // within this call, the broker client's own retries reuse it too.
      const send = pending.claim(target.to ? `to:${target.to}` : `conversation:${target.conversationId}`, message)
      const sent = await brokerCall(ctx, 'talk', () =>
        partner.client.talk({ fromId: partner.id, ...target, content: message, idempotencyKey: send.key }),
      )
      // A failure keeps the key too: the broker may have stored the message before the answer was lost.
      if (sent instanceof ToolFailure) return sent.result
      deliveries.afterSent(extra.requestId, extra.signal, { sent: send.delivered })
      // Replying acknowledged what this session was shown there: it is no longer unread here either.
      if (sent.acknowledged?.length) partner.acknowledged(sent.acknowledged)
      const notified = typeof sent.notified === 'number' ? sent.notified > 0 : sent.notified === true
      const recipient = target.to ? `${plain(target.to)} (conversation ${plain(sent.conversationId)})` : plain(sent.conversationId)
      const text = [
        `Sent message #${plain(sent.seq ?? sent.messageId)} to ${recipient}.`,
        sent.duplicate ? 'The broker already had this exact send from a retry, so it was stored only once.' : '',
        sent.recipients
          ? whoSeesIt(sent.recipients)
          : notified
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
          recipients: sent.recipients ?? [],
        },
        partner.notice(),
      )
    },
  )
}
