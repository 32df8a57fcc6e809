// The operator's view of the log: paging from a cursor, the live SSE stream, and health. Auth: `{ logReader: true }`; /health is public.
import { Elysia } from 'elysia'
import { EventsPage, HealthResponse } from '../../wire/responses.ts'
import { authPlugin } from '../auth-plugin.ts'
import type { Access, BrokerDeps } from '../deps.ts'
import { beyondLog, rejected } from '../rejections.ts'
import { EventsQuery, EventsStreamQuery, LastEventId } from '../schemas.ts'
import { eventFrame, sseResponse } from '../sse.ts'

export function eventRoutes({ store, hub, config, startedAt, now, shutdown }: BrokerDeps, access: Access) {
  const { log, views } = store
  const ahead = (cursor: number) => beyondLog(cursor, log.lastSeq())

  return new Elysia({ name: 'events' })
    .use(authPlugin(access))
    .get(
      '/events',
      ({ query }) => {
        const after = query.after ?? 0
        const tooFar = ahead(after)
        if (tooFar) return rejected(tooFar)
        // Filtered by conversation or partner, a page scans a bounded window: it may be short or empty while `next` advances.
        return log.page(after, query.limit ?? 100, {
          type: query.type,
          conversation: query.conversation,
          partner: query.partner,
        })
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
        const partners = views.partners.all().map((row) => access.partnerJson(row))
        return {
          status: 'ok' as const,
          partners: partners.length,
          online: partners.filter((p) => p.status === 'online').length,
          listening: hub.listeningCount(),
          last_seq: log.lastSeq(),
          auth: config.auth,
          uptime_s: Math.round((now().getTime() - startedAt) / 1000),
        }
      },
      { response: { 200: HealthResponse }, detail: { summary: 'Public health check' } },
    )
}
