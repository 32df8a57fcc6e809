// The one auth step: a route declares what it needs (`{ actAs: 'body.fromId' }`, `{ reader: true }`, `{ operator: true }`, `{ logReader: true }`, `{ member: 'params.id' }`, `{ resumer: true }`, `{ registering: true }`) and gets its actor, or the refusal is answered before the handler runs.
import { Elysia, status } from 'elysia'
import type { Rejection } from '../events/decide.ts'
import type { PartnerKind } from '../events/schema.ts'
import type { Actor } from './auth.ts'
import type { Access } from './deps.ts'
import { refusalBody, statusOfRejection } from './rejections.ts'

/** Where the partner a request acts as is named: the path's `:id` or a body field (validated before this runs). */
export type PartnerAt = 'params.id' | 'body.partnerId' | 'body.fromId' | 'body.creatorId'

type Named = { params: Record<string, string>; body: unknown }

const named = (at: PartnerAt, { params, body }: Named): string =>
  at === 'params.id' ? params.id! : (body as Record<string, string>)[at.slice('body.'.length)]!

// The status table lives in rejections.ts; Elysia's `status` is typed by literal codes, hence the cast.
const refuse = (r: Rejection) => status(statusOfRejection(r) as 400, refusalBody(r))

// What /docs shows on each endpoint (the schemes are declared in app.ts); none is needed in open mode.
const PARTNER = { partnerToken: [] }
const OPERATOR = { operatorToken: [] }
const CONSOLE = { consoleSession: [] }
const docs = (...security: Array<Record<string, never[]>>) => ({ detail: { security } })

/**
 * The macros, resolved after validation and before the handler, once per request. Each checks the
 * bearer token once (one hash, one lookup) and hands the route what it needs:
 * - `actAs: where` — the request acts as that partner (its token; anyone in open mode): `partnerId`,
 *   `actor`, and `stillActing()` for waits that must end when the token is reissued meanwhile;
 * - `reader` — any partner or the operator (anyone in open mode): `actor`;
 * - `operator` — the operator token, in every mode: `actor`;
 * - `logReader` — the operator (anyone in open mode), for the whole log: `actor`;
 * - `member: 'params.id'` — a member of that conversation or the operator (anyone in open mode): `actor`;
 * - `resumer` — resuming or pausing a conversation: the operator, or the human partner `body.partnerId` names: `actor`, `resumedBy`;
 * - `registering` — `/register`: an id that holds a token re-registers only with it, and only the
 *   operator registers a human: `actor`.
 */
export function authPlugin(access: Access) {
  // Every resolve destructures its context: Elysia reads a handler's parameters to decide what to parse, and a
  // whole `ctx` would make it parse cookies and more on every request.
  // The console's cookie is read from the request itself: a route's header schema (Last-Event-ID, Idempotency-Key)
  // keeps only its own fields.
  const actorOf = (headers: Record<string, string | undefined>, request: Request): Actor =>
    access.actorOf(headers.authorization, request.headers.get('cookie'))
  return new Elysia().macro({
    actAs: (at: PartnerAt) => ({
      // The operator (and its console session) speaks for human partners only.
      ...docs(PARTNER, OPERATOR, CONSOLE),
      resolve({ headers, request, params, body }) {
        const partnerId = named(at, { params, body })
        const actor = actorOf(headers, request)
        const denied = access.actAs(actor, partnerId)
        if (denied) return refuse(denied)
        /** Null while the request's token still acts as the partner; the refusal once it no longer does. */
        const stillActing = (): Rejection | null => access.actAs(actorOf(headers, request), partnerId)
        return { actor, partnerId, stillActing }
      },
    }),
    reader: {
      ...docs(PARTNER, OPERATOR, CONSOLE),
      resolve({ headers, request }) {
        const actor = actorOf(headers, request)
        const denied = access.canRead(actor)
        return denied ? refuse(denied) : { actor }
      },
    },
    operator: {
      ...docs(OPERATOR, CONSOLE),
      resolve({ headers, request }) {
        const actor = actorOf(headers, request)
        const denied = access.operatorOnly(actor)
        return denied ? refuse(denied) : { actor }
      },
    },
    logReader: {
      ...docs(OPERATOR, CONSOLE),
      resolve({ headers, request }) {
        const actor = actorOf(headers, request)
        const denied = access.canReadLog(actor)
        return denied ? refuse(denied) : { actor }
      },
    },
    member: (at: 'params.id') => ({
      ...docs(PARTNER, OPERATOR, CONSOLE),
      resolve({ headers, request, params }) {
        const actor = actorOf(headers, request)
        const denied = access.canReadConversation(actor, named(at, { params, body: undefined }))
        return denied ? refuse(denied) : { actor }
      },
    }),
    /** `/conversations/:id/resume`: the operator, or a human partner named by `body.partnerId` (its token, or the operator's). */
    resumer: {
      ...docs(OPERATOR, CONSOLE, PARTNER),
      resolve({ headers, request, body }) {
        const actor = actorOf(headers, request)
        const partnerId = (body as { partnerId?: string } | undefined)?.partnerId
        const denied = partnerId === undefined ? access.operatorOnly(actor) : access.actAs(actor, partnerId)
        return denied ? refuse(denied) : { actor, resumedBy: partnerId }
      },
    },
    registering: {
      // A new id needs nothing; an id that holds a token needs it; a human partner needs the operator.
      ...docs({}, PARTNER, OPERATOR, CONSOLE),
      resolve({ headers, request, body }) {
        const actor = actorOf(headers, request)
        const { partnerId, kind } = body as { partnerId: string; kind?: PartnerKind }
        const denied = access.mayRegister(actor, partnerId, kind)
        return denied ? refuse(denied) : { actor }
      },
    },
  })
}
