// The operator's view of the log: paging from a cursor, the live SSE stream, and health.
import { Elysia } from 'elysia'
import type { Access, BrokerDeps } from '../deps.ts'
import { beyondLog, rejected } from '../rejections.ts'
import { EventsQuery, EventsStreamQuery, LastEventId } from '../schemas.ts'
import { eventFrame, sseResponse } from '../sse.ts'

export function eventRoutes({ store, hub, config, startedAt, now, shutdown }: BrokerDeps, access: Access) {
  const { log, views } = store
  const ahead = (cursor: number) => beyondLog(cursor, log.lastSeq())

  return new Elysia({ name: 'events' })
    .get(
      '/events',
      ({ query, headers }) => {
        const denied = access.canReadLog(access.actorOf(headers.authorization))
        if (denied) return rejected(denied)
        const after = query.after ?? 0
        const tooFar = ahead(after)
        if (tooFar) return tooFar
        // Filtered by conversation or partner, a page scans a bounded window: it may be short or empty while `next` advances.
        return log.page(after, query.limit ?? 100, {
          type: query.type,
          conversation: query.conversation,
          partner: query.partner,
        })
      },
      { query: EventsQuery, detail: { summary: 'Operator: the event log from a cursor, in pages, with filters' } },
    )
    .get(
      '/events/stream',
      ({ query, headers, request, server }) => {
        const denied = access.canReadLog(access.actorOf(headers.authorization))
        if (denied) return rejected(denied)
        const after = headers['last-event-id'] ?? query.after ?? 0
        const tooFar = ahead(after)
        if (tooFar) return tooFar
        server?.timeout(request, 0)
        return sseResponse(
          after,
          AbortSignal.any([request.signal, shutdown]),
          {
            read: (from, limit) => log.readAfter(from, limit).map((e) => ({ seq: e.seq, bytes: eventFrame(e) })),
            wait: (signal, ms) => hub.wait(null, undefined, signal, ms),
            framesOf: (wake) => wake.events.map((e) => ({ seq: e.seq, bytes: eventFrame(e) })),
            head: log.lastSeq,
          },
          config.keepAliveMs,
          () => {},
        )
      },
      { query: EventsStreamQuery, headers: LastEventId, detail: { summary: 'Operator: SSE of every event from a cursor, then live' } },
    )
    .get(
      '/health',
      () => {
        const partners = views.partners.all().map(access.partnerJson)
        return {
          status: 'ok',
          partners: partners.length,
          online: partners.filter((p) => p.status === 'online').length,
          listening: hub.listeningCount(),
          last_seq: log.lastSeq(),
          auth: config.auth,
          uptime_s: Math.round((now().getTime() - startedAt) / 1000),
        }
      },
      { detail: { summary: 'Public health check' } },
    )
}
