// What every tool needs: the partner, broker calls turned into tool errors, and conversation lookup.
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js'
import type { BrokerResult } from '../broker-client.ts'
import type { DeliveryTracker } from '../delivery.ts'
import type { Partner } from '../partner.ts'
import { errorResult, explain } from '../texts.ts'

export type ToolContext = { partner: Partner; deliveries: DeliveryTracker }

/** A failed broker call, ready to return from a tool; carries the unread notice like every answer. */
export class ToolFailure {
  constructor(readonly result: CallToolResult) {}
}

/** Runs a broker call as the partner; on failure returns a ToolFailure explaining it for `tool`. */
export async function brokerCall<T>(ctx: ToolContext, tool: string, fn: () => Promise<BrokerResult<T>>): Promise<T | ToolFailure> {
  const result = await ctx.partner.call(fn)
  if (result.ok) return result.value
  return failure(ctx, explain(result.error, { brokerUrl: ctx.partner.config.brokerUrls.join(', '), tool, partnerId: ctx.partner.id }))
}

export const failure = (ctx: ToolContext, text: string) => new ToolFailure(errorResult(text, ctx.partner.notice()))

/**
 * The conversation a model means by `value`: a conversation id as is, or a partner id standing for
 * the direct conversation with that partner (models mix the two up). Unknown values pass through,
 * so the broker's own answer (404) is what the model hears.
 */
export async function resolveConversation(ctx: ToolContext, tool: string, value: string): Promise<string | ToolFailure> {
  if (value.startsWith('direct_') || value.startsWith('group_')) return value
  const listed = await brokerCall(ctx, tool, () => ctx.partner.client.conversations(ctx.partner.id))
  if (listed instanceof ToolFailure) return listed
  const exact = listed.conversations.find((c) => c.id === value)
  if (exact) return exact.id
  const direct = listed.conversations.find((c) => c.type === 'direct' && c.participants?.some((p) => p.id === value))
  return direct?.id ?? value
}
