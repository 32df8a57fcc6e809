// Listening: cursor long-poll, legacy long-poll (unread, marked read once written), explicit ack, SSE stream.
import { Elysia } from 'elysia'
import type { Envelope } from '../../events/schema.ts'
import { type Message, messageOf } from '../../projections/messages.ts'
import type { Access, BrokerDeps } from '../deps.ts'
import { beyondLog, rejected } from '../rejections.ts'
import { AckBody, LastEventId, ListenQuery, PartnerParams, StreamQuery } from '../schemas.ts'
import { messageFrame, sseResponse, storedMessageFrame } from '../sse.ts'

const PAGE = 500
const DEFAULT_WAIT_S = 30
const DEFAULT_LEGACY_TIMEOUT_MIN = 30

const messagesOf = (events: Envelope[]): Message[] =>
  events.flatMap((e) => (e.type === 'MessageSent' ? [messageOf(e)] : []))

/**
 * Sends `body`, then runs `afterWritten` only if the client was still connected when the bytes were
 * handed to the socket: Bun pulls the stream's second chunk only after the first one was written.
 */
function respondThenAck(body: unknown, signal: AbortSignal, afterWritten: () => void): Response {
  const bytes = new TextEncoder().encode(JSON.stringify(body))
  let pulls = 0
  const stream = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        if (pulls++ === 0) return controller.enqueue(bytes)
        if (!signal.aborted) afterWritten()
        controller.close()
      },
    },
    { highWaterMark: 0 },
  )
  return new Response(stream, { headers: { 'content-type': 'application/json' } })
}

export function listenRoutes({ store, hub, config, shutdown }: BrokerDeps, access: Access) {
  const { commands, views, log } = store

  /** Refusal for a listen request that names an unknown partner or a conversation it cannot see. */
  function checkTarget(partnerId: string, conversationId: string | undefined) {
    if (!views.partners.get(partnerId)) return rejected({ reason: 'unknown_partner', partnerId })
    if (conversationId === undefined) return null
    if (!views.conversations.get(conversationId)) return rejected({ reason: 'unknown_conversation', conversationId })
    if (!views.conversations.isMember(conversationId, partnerId)) return rejected({ reason: 'not_a_participant', conversationId })
    return null
  }

  const cursorAhead = (cursor: number) => beyondLog(cursor, log.lastSeq())

  return new Elysia({ name: 'listen' })
    .get(
      '/listen/:id',
      async ({ params, query, headers, request, server }) => {
        const partnerId = params.id
        const denied = access.actAs(access.actorOf(headers.authorization), partnerId)
        if (denied) return rejected(denied)
        const bad = checkTarget(partnerId, query.conversationId)
        if (bad) return bad
        // A long-poll must not be cut by the server's idle timeout before the wait it asked for.
        server?.timeout(request, 0)
        const conversationId = query.conversationId

        if (query.after === undefined) {
          const timeoutMs = (query.timeout ?? DEFAULT_LEGACY_TIMEOUT_MIN) * 60_000
          let messages = views.messages.unread(partnerId, PAGE, conversationId)
          if (messages.length === 0 && timeoutMs > 0) {
            const release = hub.hold(partnerId)
            try {
              await hub.wait(partnerId, conversationId, AbortSignal.any([request.signal, shutdown]), timeoutMs)
            } finally {
              release()
            }
            // The token may have been reissued while this waited (the hub wakes it then): the old one gets nothing.
            const revoked = access.actAs(access.actorOf(headers.authorization), partnerId)
            if (revoked) return rejected(revoked)
            messages = views.messages.unread(partnerId, PAGE, conversationId)
          }
          if (messages.length === 0) return { hasMessages: false, messages }
          const upTo = messages[messages.length - 1]!.seq
          return respondThenAck({ hasMessages: true, messages }, request.signal, () => {
            // Nobody awaits this write: a failed commit (disk full) must be logged, not crash the broker.
            commands.execute({ kind: 'ack', partnerId, cursor: upTo, conversationId }).catch((error) =>
              console.error('legacy listen: recording messages as read failed:', error),
            )
          })
        }

        const after = query.after
        const ahead = cursorAhead(after)
        if (ahead) return ahead
        if (after > 0) {
          const acked = await commands.execute({ kind: 'ack', partnerId, cursor: after, conversationId })
          if (!acked.ok) return rejected(acked.rejection)
        }
        const found = views.messages.visibleAfter(partnerId, after, PAGE, conversationId)
        if (found.length > 0) return { hasMessages: true, messages: found, cursor: found[found.length - 1]!.seq }
        const waitS = query.wait ?? DEFAULT_WAIT_S
        if (waitS === 0) return { hasMessages: false, messages: [], cursor: Math.max(after, log.lastSeq()) }
        const release = hub.hold(partnerId)
        try {
          const wake = await hub.wait(partnerId, conversationId, AbortSignal.any([request.signal, shutdown]), waitS * 1000)
          const revoked = access.actAs(access.actorOf(headers.authorization), partnerId)
          if (revoked) return rejected(revoked)
          // A wake carries exactly what this listener can see. Without one (timeout), read again: the cursor then
          // never moves past a message, even if a wake-up was missed.
          const woken = wake ? messagesOf(wake.events) : []
          const messages = woken.length > 0 ? woken : views.messages.visibleAfter(partnerId, after, PAGE, conversationId)
          const cursor = messages.length > 0 ? messages[messages.length - 1]!.seq : Math.max(after, log.lastSeq())
          return { hasMessages: messages.length > 0, messages, cursor }
        } finally {
          release()
        }
      },
      {
        params: PartnerParams,
        query: ListenQuery,
        detail: { summary: 'Long-poll: cursor mode with `after` (and `wait` seconds), legacy unread mode without' },
      },
    )
    .post(
      '/listen/:id/ack',
      async ({ params, body, headers }) => {
        const denied = access.actAs(access.actorOf(headers.authorization), params.id)
        if (denied) return rejected(denied)
        const result = await commands.execute({
          kind: 'ack',
          partnerId: params.id,
          cursor: body.cursor,
          conversationId: body.conversationId,
        })
        if (!result.ok) return rejected(result.rejection)
        const acknowledged = result.value.appended.flatMap((e) =>
          e.type === 'ReadPositionAdvanced' ? [{ conversationId: e.data.conversationId, seq: e.data.seq }] : [],
        )
        return { success: true, acknowledged }
      },
      { params: PartnerParams, body: AckBody, detail: { summary: 'Acknowledge (mark read) messages up to a cursor' } },
    )
    .get(
      '/listen/:id/stream',
      ({ params, query, headers, request, server }) => {
        const partnerId = params.id
        const denied = access.actAs(access.actorOf(headers.authorization), partnerId)
        if (denied) return rejected(denied)
        const bad = checkTarget(partnerId, query.conversationId)
        if (bad) return bad
        const after = headers['last-event-id'] ?? query.after ?? 0
        const ahead = cursorAhead(after)
        if (ahead) return ahead
        server?.timeout(request, 0)
        const conversationId = query.conversationId
        const release = hub.hold(partnerId)
        // A stream opened with a token that has since been reissued ends at its next wake-up or keep-alive.
        const revoked = new AbortController()
        return sseResponse(
          after,
          AbortSignal.any([request.signal, shutdown, revoked.signal]),
          {
            read: (from, limit) => views.messages.visibleAfter(partnerId, from, limit, conversationId).map(storedMessageFrame),
            wait: async (signal, ms) => {
              const wake = await hub.wait(partnerId, conversationId, signal, ms)
              if (access.actAs(access.actorOf(headers.authorization), partnerId)) revoked.abort()
              return wake
            },
            framesOf: (wake) =>
              wake.events.flatMap((e) => (e.type === 'MessageSent' ? [{ seq: e.seq, bytes: messageFrame(e) }] : [])),
            head: log.lastSeq,
          },
          config.keepAliveMs,
          release,
        )
      },
      {
        params: PartnerParams,
        query: StreamQuery,
        headers: LastEventId,
        detail: { summary: 'SSE of the partner’s messages from a cursor (Last-Event-ID resumes); acknowledges nothing' },
      },
    )
}
