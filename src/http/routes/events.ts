// The operator's view of the log: paging from a cursor, the live SSE stream, and health. Auth: `{ logReader: true }`; /health is public.
import { Elysia } from 'elysia'
import { EventsPage, HealthResponse } from '../../wire/responses.ts'
import { authPlugin } from '../auth-plugin.ts'
import type { Access, BrokerDeps } from '../deps.ts'
import { beyondLog, rejected } from '../rejections.ts'
import { EventsQuery, EventsStreamQuery, LastEventId } from '../schemas.ts'
import { pacedJson } from '../paced.ts'
import { eventFrame, sseResponse } from '../sse.ts'

export function eventRoutes({ store, hub, config, startedAt, now, shutdown, sendBudget }: BrokerDeps, access: Access) {
  const { log, views } = store
  const ahead = (cursor: number) => beyondLog(cursor, log.lastSeq())

  return new Elysia({ name: 'events' })
    .use(authPlugin(access))
    .get(
      '/events',
      ({ query, request }) => {
        const after = query.after ?? 0
        const tooFar = ahead(after)
        if (tooFar) return rejected(tooFar)
        const busy = sendBudget.refusal()
        if (busy) return busy as never
        // Filtered by conversation or partner, a page scans a bounded window: it may be short or empty while `next`
        // advances. Cut by bytes (`truncated`), it ends at its last event: `next` is always where to go on.
        const filter = { type: query.type, conversation: query.conversation, partner: query.partner }
        const page = log.seqPage(after, query.limit ?? 100, filter, config.pageBytes)
        // Streams an EventsPage body as the socket takes it (Elysia sends a Response as it is).
        return pacedJson(
          {
            head: `{"next":${page.next},${page.truncated ? '"truncated":true,' : ''}"events":[`,
            count: page.seqs.length,
            render: (i) => JSON.stringify(log.eventAt(page.seqs[i]!)),
            tail: ']}',
          },
          sendBudget,
          request.signal,
        ) as never
      },
      {
        logReader: true,
        query: EventsQuery,
        response: { 200: EventsPage },
        detail: { summary: 'Operator: the event log from a cursor, in pages, with filters' },
      },
    )
    .get(
      '/events/stream',
      ({ query, headers, request, server }) => {
        const after = headers['last-event-id'] ?? query.after ?? 0
        const tooFar = ahead(after)
        if (tooFar) return rejected(tooFar)
        const busy = sendBudget.refusal()
        if (busy) return busy
        server?.timeout(request, 0)
        // A stream opened with a console session ends at its next wake-up or keep-alive once the session is over
        // (signed out, expired): a signed-out tab is shown nothing more.
        const over = new AbortController()
        const authorization = headers.authorization
        // Only a cookie can end: the operator token is fixed, and in open mode there is nothing to check.
        const cookie = authorization === undefined && config.auth === 'token' ? request.headers.get('cookie') : null
        return sseResponse(
          after,
          AbortSignal.any([request.signal, shutdown, over.signal]),
          {
            read: (from, limit, maxBytes) => {
              const page = log.seqPage(from, limit, {}, maxBytes)
              return { frames: page.seqs.map((seq) => ({ seq, bytes: eventFrame(log.eventAt(seq)!) })), truncated: page.truncated }
            },
            wait: async (signal, ms) => {
              const wake = await hub.wait(null, undefined, signal, ms)
              if (cookie !== null && access.canReadLog(access.actorOf(authorization, cookie))) over.abort()
              return wake
            },
            framesOf: (wake) => wake.events.map((e) => ({ seq: e.seq, bytes: eventFrame(e) })),
            head: log.lastSeq,
          },
          config.keepAliveMs,
          () => {},
          sendBudget,
        )
      },
      {
        logReader: true,
        query: EventsStreamQuery,
        headers: LastEventId,
        detail: { summary: 'Operator: SSE of every event from a cursor, then live' },
      },
    )
    .get(
      '/health',
      () => {
        // Constant time: the count is one index step, the online ones are counted as they act (presence.ts).
        return {
          status: 'ok' as const,
          broker_id: log.brokerId,
          partners: access.partnerCount(),
          online: access.onlineCount(),
          listening: hub.listeningCount(),
          last_seq: log.lastSeq(),
          // Bytes of answers the broker holds for clients that have not read them yet (bounded by DUO_SEND_BUDGET_MB).
          send_pending_bytes: sendBudget.used(),
          auth: config.auth,
          uptime_s: Math.round((now().getTime() - startedAt) / 1000),
        }
      },
      { response: { 200: HealthResponse }, detail: { summary: 'Public health check' } },
    )
}
