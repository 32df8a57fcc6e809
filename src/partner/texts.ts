// The words the partner says to the model: tool results, error explanations, message listings.
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js'
import { z } from 'zod'
import type { BrokerError, MessageView } from './broker-client.ts'
import { plain } from './untrusted.ts'

export function brokerDownText(brokerUrl: string, detail: string, tool: string): string {
  return (
    `Cannot reach the Duo broker at ${brokerUrl} (${detail}). ` +
    'Start it from the Duo repository with `bun run broker` (it listens on BROKER_HOST:BROKER_PORT, default 127.0.0.1:3210), ' +
    "or set BROKER_URL in this MCP server's environment if it runs elsewhere. " +
    `Then call ${tool} again: this partner reconnects by itself and has lost nothing.`
  )
}

/**
 * The broker at `url` serves another log (broker id `now`) than the one this project used (`before`): what
 * that means, and what not to do about it. Ids are hex from the broker's `/health`, shortened for reading.
 */
export function brokerSwitchText(url: string, now: string, before: string, partnerId: string): string {
  const short = (id: string) => plain(id.slice(0, 12))
  return (
    `[Duo] The broker at ${plain(url)} now serves a different log (broker id ${short(now)}) than the one this project used ` +
    `before (broker id ${short(before)}): it is another broker, or one whose database was replaced. You are registered ` +
    'there anew, so your earlier conversations and messages are not visible through it. The token and listen position ' +
    `for the other log stay in .duo/${partnerId}.json and are used again when that broker is back. ` +
    'Do not start a broker of your own to fix this: tell the user which broker was reached, so they can start or ' +
    'point BROKER_URL at the right one.'
  )
}

/** What went wrong with a broker call, in words that tell the model what to do next. */
export function explain(error: BrokerError, ctx: { brokerUrl: string; tool: string; partnerId: string }): string {
  switch (error.kind) {
    case 'unreachable':
      return brokerDownText(ctx.brokerUrl, error.message, ctx.tool)
    case 'invalid_response':
      return `The service at ${ctx.brokerUrl} answered in a way the Duo partner does not understand (${error.message}). Check that BROKER_URL points at a Duo broker.`
    case 'rejected': {
      const said = `The broker refused: ${error.message} (HTTP ${error.status}).`
      const control = controlText(error, ctx.partnerId)
      if (control) return control
      switch (error.status) {
        case 401:
          return `${said} This partner's token (kept in .duo/${ctx.partnerId}.json) is missing or not the one the broker issued for "${ctx.partnerId}". If another project already uses this id, set PARTNER_ID to a different id; otherwise ask the broker's operator to reissue the token.`
        case 403:
          if ((error.body as { reason?: unknown } | null)?.reason === 'web_page_refused')
            return `${said} The broker does not answer to the address in this partner's BROKER_URL (${ctx.brokerUrl}): use 127.0.0.1 or localhost, or have the broker's operator add its name to DUO_ALLOWED_HOSTS. This is a setting to fix, not something to retry.`
          return `${said} You are not allowed to do that as "${ctx.partnerId}" (for example, you are not a participant of that conversation). Call list_conversations to see yours.`
        case 404:
          return `${said} Check the id: call list_partners for partner ids and list_conversations for conversation ids.`
        case 409:
          if ((error.body as { reason?: unknown } | null)?.reason === 'partner_id_taken')
            return `${said} Another project already holds that id or one that looks like it. Set PARTNER_ID in this MCP server's environment to an id of its own, then restart it.`
          return /archived/.test(error.message)
            ? `${said} Everyone left that group; make a new one with create_conversation.`
            : said
        case 413:
          return `${said} The message is too large; split it into several smaller messages.`
        default:
          return error.status >= 500 ? `${said} The broker had an internal problem; try again shortly.` : said
      }
    }
  }
}

/** The refusals of conversation control, said plainly: what happened and what the model should do now. */
function controlText(error: Extract<BrokerError, { kind: 'rejected' }>, self: string): string | null {
  const body = (error.body ?? {}) as { reason?: unknown; conversationId?: unknown; partnerId?: unknown; retry_after_s?: unknown; paused_by?: unknown }
  const conversation = typeof body.conversationId === 'string' ? plain(body.conversationId) : 'that conversation'
  switch (body.reason) {
    case 'conversation_paused':
      return (
        (body.paused_by === 'operator' || body.paused_by === 'human'
          ? `A person (${body.paused_by === 'operator' ? 'the Duo operator' : 'a human participant'}) has PAUSED ${conversation}: agents may not post there for now. `
          : `Duo's loop guard has PAUSED ${conversation}: too many messages in a row between agents with no human message. `) +
        'Stop sending messages there now, and do not work around the pause through another conversation. ' +
        'Tell your human (the user) that the conversation is paused and why, then wait for them: a message from a ' +
        'person there, or a resume by them or by the operator, lets agents talk again. Your message was not sent.'
      )
    case 'partner_retired':
      return body.partnerId === self
        ? `This partner ("${self}") was retired by the Duo operator: its token no longer works and it cannot talk, listen or register again under this id. Tell your human; only a new PARTNER_ID can join Duo again.`
        : `Partner "${plain(String(body.partnerId))}" was retired by the Duo operator: it no longer reads messages and cannot be messaged or added to groups. Its past messages stay in history. Call list_partners for the partners in service.`
    case 'rate_limited': {
      const wait = typeof body.retry_after_s === 'number' ? `${body.retry_after_s} s` : 'a while'
      return `The broker is limiting how fast you send (${error.message}). Nothing was done. Wait ${wait} before trying again, and send less often.`
    }
    case 'too_many_groups':
      return `${error.message}. That partner must leave a group (leave_conversation) before joining another.`
    case 'not_a_group':
      return `${error.message}. Create a group with create_conversation to talk with more partners.`
    default:
      return null
  }
}

export function textResult(text: string, structuredContent?: Record<string, unknown>, notice?: string): CallToolResult {
  const full = notice ? `${notice}\n\n${text}` : text
  return structuredContent ? { content: [{ type: 'text', text: full }], structuredContent } : { content: [{ type: 'text', text: full }] }
}

export function errorResult(text: string, notice?: string): CallToolResult {
  return { content: [{ type: 'text', text: notice ? `${notice}\n\n${text}` : text }], isError: true }
}

export const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`

// Who sent a message, as a model reads it (a person is named as one): shown through untrusted.ts, like every field.
export { senderOf } from './untrusted.ts'

/** A message in tools' structured results. */
export const MessageOut = z.object({
  seq: z.number(),
  conversationId: z.string(),
  from: z.string(),
  fromKind: z.enum(['agent', 'human']),
  content: z.string(),
  sentAt: z.string(),
})

export const messageOut = (m: MessageView): z.infer<typeof MessageOut> => ({
  seq: m.seq,
  conversationId: m.conversation_id,
  from: m.from_id,
  fromKind: m.from_kind ?? 'agent',
  content: m.content,
  sentAt: m.created_at,
})
