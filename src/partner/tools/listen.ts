// The `listen` tool: hands the model its next messages, resuming from the partner's own cursor.
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js'
import type { CallToolResult, ServerNotification, ServerRequest } from '@modelcontextprotocol/sdk/types.js'
import { z } from 'zod'
import { ConversationId } from '../../events/schema.ts'
import { isDelivered, resumeAfter } from '../inbox.ts'
import { errorResult, explain, MessageOut, messageOut, plural, textResult } from '../texts.ts'
import { plain, renderMessages } from '../untrusted.ts'
import { resolveConversation, type ToolContext, ToolFailure } from './common.ts'

const ListenArgs = z.object({
  conversation: ConversationId.optional().describe('Only this conversation (id from list_conversations); default: all of yours'),
  timeout: z
    .number()
    .min(0)
    .max(60 * 24)
    .optional()
    .describe('Minutes to wait for a message; one call still returns after the server limit (under a minute), then call listen again'),
})

const ListenOut = z.object({
  messages: z.array(MessageOut),
  cursor: z.number().describe('Seq of the last message handed to you; the next listen resumes after it'),
  waitedSeconds: z.number(),
  timedOut: z.boolean().describe('True when nothing arrived within this call: call listen again to keep waiting'),
  cursorReset: z.boolean(),
})

type Extra = RequestHandlerExtra<ServerRequest, ServerNotification>

/** Sends MCP progress while a listen waits, when the client asked for progress. Returns a stop function. */
function startProgress(extra: Extra, budgetS: number): () => void {
  const progressToken = extra._meta?.progressToken
  if (progressToken === undefined || budgetS <= 0) return () => {}
  const started = Date.now()
  const every = Math.min(5000, Math.max(500, (budgetS * 1000) / 5))
  const timer = setInterval(() => {
    const waited = Math.round((Date.now() - started) / 1000)
    void extra
      .sendNotification({
        method: 'notifications/progress',
        params: { progressToken, progress: waited, total: budgetS, message: `Waiting for messages: ${waited} s of ${budgetS} s` },
      })
      .catch(() => {})
  }, every)
  return () => clearInterval(timer)
}

export function registerListen(server: McpServer, ctx: ToolContext): void {
  const { partner, deliveries } = ctx
  const maxS = partner.config.listenMaxS
  // One reader at a time: two listens at once would both hand over the same messages.
  // Released once the answer's cursor is committed, or once the answer is known lost (call
  // cancelled, or writing the answer failed): never left set, or every later listen is refused.
  let busy: object | undefined

  server.registerTool(
    'listen',
    {
      title: 'Wait for messages',
      description:
        'Receive messages from other partners: returns at once with any you have not seen yet, else waits for the next one ' +
        `(at most ${maxS} s per call, whatever the timeout). Each message is returned once, in order, even across restarts. ` +
        'If nothing arrives it says so: call listen again to keep waiting. Reply with talk.',
      inputSchema: ListenArgs,
      outputSchema: ListenOut,
    },
    async (args, extra) => {
      if (busy) {
        return errorResult('Another listen call is already waiting for messages. Use its answer instead of listening twice at once.')
      }
      const mine = {}
      busy = mine
      // Only this call's own lock: a cancelled call finishing late must not unlock the next one.
      const release = () => {
        if (busy === mine) busy = undefined
      }
      extra.signal.addEventListener('abort', release, { once: true })
      let handedOver = false
      try {
        return await listen(args, extra, (commit) => {
          handedOver = true
          deliveries.afterSent(extra.requestId, extra.signal, {
            sent: () => {
              commit()
              release()
            },
            lost: release,
          })
        })
      } finally {
        if (!handedOver) release()
      }
    },
  )

  /** One listen call; `handOver` registers what to commit once the answer reached the client. */
  async function listen(
    { conversation, timeout }: z.infer<typeof ListenArgs>,
    extra: Extra,
    handOver: (commit: () => void) => void,
  ): Promise<CallToolResult> {
    const budgetS = Math.min(timeout === undefined ? maxS : timeout * 60, maxS)
    const started = Date.now()
    const deadline = started + budgetS * 1000
    let conversationId: string | undefined
    if (conversation) {
      const resolved = await resolveConversation(ctx, 'listen', conversation)
      if (resolved instanceof ToolFailure) return resolved.result
      conversationId = resolved
    }
    const notes: string[] = []
    let resets = 0
    const stopProgress = startProgress(extra, budgetS)
    try {
      while (true) {
        if (partner.resetNotice) {
          notes.push(partner.resetNotice)
          partner.resetNotice = undefined
        }
        // Another session of this project may have been handed messages meanwhile: one shared inbox.
        partner.syncPosition()
        const after = resumeAfter(partner.position, conversationId)
        const waitS = Math.max(0, Math.round((deadline - Date.now()) / 1000))
        const answer = await partner.call(() => partner.client.listen(partner.id, { after, waitS, conversationId }, extra.signal))
        if (!answer.ok) {
          const { error } = answer
          if (error.kind === 'rejected' && error.status === 409 && resets++ === 0) {
            // Past the end of this broker's log: first see whether it is another log (its own cursor then applies).
            const switched = await partner.identifyBroker()
            if (!(switched.ok && switched.value)) partner.resetPosition(`The broker's log ends before your cursor #${after} (its database was probably reset).`)
            continue
          }
          if (extra.signal.aborted) return errorResult('listen was cancelled; nothing was marked as read.')
          return errorResult(explain(error, { brokerUrl: partner.config.brokerUrls.join(', '), tool: 'listen', partnerId: partner.id }))
        }
        const { messages } = answer.value
        const cursor = Math.max(answer.value.cursor, ...messages.map((m) => m.seq))
        const fresh = messages.filter((m) => !isDelivered(partner.position, m))
        if (messages.length > 0 && fresh.length === 0 && Date.now() < deadline) {
          // Only messages a filtered listen already handed over: step past them and keep waiting.
          partner.commit(cursor, conversationId)
          continue
        }
        const waitedSeconds = Math.round((Date.now() - started) / 100) / 10
        // The cursor moves only once this answer has reached the client: a cancelled call loses nothing.
        handOver(() => partner.commit(cursor, conversationId))
        const scope = conversationId ? ` in ${plain(conversationId)}` : ''
        const text =
          fresh.length > 0
            ? `${plural(fresh.length, 'new message')}${scope}:\n\n${renderMessages(fresh)}\n\n` +
              'Reply with talk (conversation: the id shown above). Call listen again for more.'
            : `No new messages${scope} arrived in ${waitedSeconds} s. Call listen again to keep waiting.`
        // Which log this is, when it changed since the last answer (listen reads every message, so no unread line).
        const switched = partner.brokerNotice
        partner.brokerNotice = undefined
        return textResult([...(switched ? [switched] : []), ...notes, text].join('\n\n'), {
          messages: fresh.map(messageOut),
          cursor,
          waitedSeconds,
          timedOut: fresh.length === 0,
          cursorReset: notes.length > 0,
        })
      }
    } finally {
      stopProgress()
    }
  }
}
