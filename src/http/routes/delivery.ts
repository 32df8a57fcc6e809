// Delivery: what a partner's session was not shown yet (for its hooks), what it reports it was shown, and receipts. Auth: `{ actAs: 'params.id' }`, `{ reader: true }` then membership.
import { Elysia } from 'elysia'
import { ReceiptsResponse, ReportResponse, UnseenResponse } from '../../wire/responses.ts'
import { authPlugin } from '../auth-plugin.ts'
import type { Access, BrokerDeps } from '../deps.ts'
import { checkTarget } from '../listening/common.ts'
import { createUnseenPoll } from '../listening/unseen-poll.ts'
import { rejected } from '../rejections.ts'
import { PartnerParams, ReportBody, SeqParams, UnseenQuery } from '../schemas.ts'

export function deliveryRoutes({ store, hub, shutdown }: BrokerDeps, access: Access) {
  const { commands, views } = store
  const unseenPoll = createUnseenPoll({ store, hub })

  return new Elysia({ name: 'delivery' })
    .use(authPlugin(access))
    .get(
      '/listen/:id/unseen',
      async ({ partnerId, stillActing, query, request, server }) => {
        const bad = checkTarget(store, partnerId, undefined)
        if (bad) return rejected(bad)
        const waitS = query.wait ?? 0
        if (waitS > 0) server?.timeout(request, 0)
        const signal = AbortSignal.any([request.signal, shutdown])
        const answer = await unseenPoll({ partnerId, signal, stillActing, after: query.after ?? 0, waitS })
        return answer.ok ? answer.value : rejected(answer.rejection)
      },
      {
        actAs: 'params.id',
        params: PartnerParams,
        query: UnseenQuery,
        response: { 200: UnseenResponse },
        detail: {
          summary:
            "Messages the partner's session was not shown in any way yet (past its read, pushed and surfaced positions); " +
            'with `wait`, a long-poll that counts as its wake hook. Acknowledges nothing.',
        },
      },
    )
    .post(
      '/listen/:id/report',
      async ({ partnerId, body }) => {
        const result = await commands.execute({ kind: 'report', partnerId, state: body.state, marks: body.marks })
        if (!result.ok) return rejected(result.rejection)
        const advanced = result.value.appended.flatMap((e) =>
          e.type === 'DeliveryAdvanced' ? [{ conversationId: e.data.conversationId, state: e.data.state, seq: e.data.seq }] : [],
        )
        return { success: true as const, advanced }
      },
      {
        actAs: 'params.id',
        params: PartnerParams,
        body: ReportBody,
        response: { 200: ReportResponse },
        detail: { summary: 'Report messages pushed into the session or surfaced to its model, up to a seq per conversation' },
      },
    )
    .get(
      '/messages/:seq/receipts',
      ({ params, actor }) => {
        const receipt = views.delivery.receipts(params.seq)
        if (!receipt) return rejected({ reason: 'unknown_message', seq: params.seq })
        const denied = access.canReadConversation(actor, receipt.conversationId)
        return denied ? rejected(denied) : receipt
      },
      {
        // A valid token first: without one, nobody learns which messages exist.
        reader: true,
        params: SeqParams,
        response: { 200: ReceiptsResponse },
        detail: { summary: "A message's delivery state per recipient: queued, pushed, surfaced, read (members or the operator)" },
      },
    )
}
