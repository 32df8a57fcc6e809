// Listening: the route picks the mode (cursor long-poll, legacy long-poll, SSE) and the services in ../listening/ do the work; plus the explicit ack. Auth: `{ actAs: 'params.id' }`.
import { Elysia } from 'elysia'
import { z } from 'zod'
import { AckResponse, LegacyListenResponse, ListenResponse } from '../../wire/responses.ts'
import { authPlugin } from '../auth-plugin.ts'
import type { Access, BrokerDeps } from '../deps.ts'
import { checkTarget } from '../listening/common.ts'
import { createCursorPoll, DEFAULT_WAIT_S } from '../listening/cursor-poll.ts'
import { createLegacyPoll, DEFAULT_TIMEOUT_MIN } from '../listening/legacy-poll.ts'
import { createMessageStream } from '../listening/message-stream.ts'
import { beyondLog, rejected } from '../rejections.ts'
import { AckBody, LastEventId, ListenQuery, PartnerParams, StreamQuery } from '../schemas.ts'

export function listenRoutes({ store, hub, config, shutdown, sendBudget }: BrokerDeps, access: Access) {
  const { commands, log } = store
  const pacing = { pageBytes: config.pageBytes, sendBudget }
  const cursorPoll = createCursorPoll({ store, hub, pacing })
  const legacyPoll = createLegacyPoll({ store, hub, pacing })
  const messageStream = createMessageStream({ store, hub, keepAliveMs: config.keepAliveMs, pacing })

  return new Elysia({ name: 'listen' })
    .use(authPlugin(access))
    .get(
      '/listen/:id',
      async ({ partnerId, stillActing, query, request, server }) => {
        const { conversationId } = query
        const bad = checkTarget(store, partnerId, conversationId)
        if (bad) return rejected(bad)
        // Answers stream as the socket takes them; while slow clients hold the whole send budget, new ones wait.
        const busy = sendBudget.refusal()
        if (busy) return busy as never
        // A long-poll must not be cut by the server's idle timeout before the wait it asked for.
        server?.timeout(request, 0)
        const signal = AbortSignal.any([request.signal, shutdown])
        const listener = { partnerId, conversationId, signal, stillActing }
        if (query.after === undefined) {
          const timeoutMs = (query.timeout ?? DEFAULT_TIMEOUT_MIN) * 60_000
          const answer = await legacyPoll({ ...listener, timeoutMs, connection: request.signal })
          // A Response streams a LegacyListenResponse body (and learns whether it was written); Elysia sends it as it is.
          return answer.ok ? (answer.value as never) : rejected(answer.rejection)
        }
        const answer = await cursorPoll({ ...listener, after: query.after, waitS: query.wait ?? DEFAULT_WAIT_S, connection: request.signal })
        // A page of messages is a Response streaming a ListenResponse body; Elysia sends it as it is.
        return answer.ok ? (answer.value as never) : rejected(answer.rejection)
      },
      {
        actAs: 'params.id',
        params: PartnerParams,
        query: ListenQuery,
        response: { 200: z.union([ListenResponse, LegacyListenResponse]) },
        detail: { summary: 'Long-poll: cursor mode with `after` (and `wait` seconds), legacy unread mode without' },
      },
    )
    .post(
      '/listen/:id/ack',
      async ({ partnerId, body }) => {
        const result = await commands.execute({ kind: 'ack', partnerId, cursor: body.cursor, conversationId: body.conversationId })
        if (!result.ok) return rejected(result.rejection)
        const acknowledged = result.value.appended.flatMap((e) =>
          e.type === 'ReadPositionAdvanced' ? [{ conversationId: e.data.conversationId, seq: e.data.seq }] : [],
        )
        return { success: true as const, acknowledged }
      },
      {
        actAs: 'params.id',
        params: PartnerParams,
        body: AckBody,
        response: { 200: AckResponse },
        detail: { summary: 'Acknowledge (mark read) messages up to a cursor' },
      },
    )
    .get(
      '/listen/:id/stream',
      ({ partnerId, stillActing, query, headers, request, server }) => {
        const { conversationId } = query
        const bad = checkTarget(store, partnerId, conversationId)
        if (bad) return rejected(bad)
        const after = headers['last-event-id'] ?? query.after ?? 0
        const ahead = beyondLog(after, log.lastSeq())
        if (ahead) return rejected(ahead)
        const busy = sendBudget.refusal()
        if (busy) return busy
        server?.timeout(request, 0)
        // A partner process says whether its client accepts pushes; a stream without `session` is a script's.
        const session = query.session && { kind: query.session, id: query.sessionId }
        return messageStream({ partnerId, conversationId, after, signal: AbortSignal.any([request.signal, shutdown]), stillActing, session })
      },
      {
        actAs: 'params.id',
        params: PartnerParams,
        query: StreamQuery,
        headers: LastEventId,
        detail: { summary: 'SSE of the partner’s messages from a cursor (Last-Event-ID resumes); acknowledges nothing' },
      },
    )
}
