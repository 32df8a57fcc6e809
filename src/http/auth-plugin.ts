// The one auth step: a route declares what it needs (`{ actAs: 'body.fromId' }`, `{ reader: true }`, `{ operator: true }`, `{ logReader: true }`, `{ member: 'params.id' }`, `{ registering: true }`) and gets its actor, or the refusal is answered before the handler runs.
import { Elysia, status } from 'elysia'
import type { Rejection } from '../events/decide.ts'
import type { PartnerKind } from '../events/schema.ts'
import type { Actor } from './auth.ts'
import type { Access } from './deps.ts'
import { refusalBody, statusOfRejection } from './rejections.ts'

/** Where the partner a request acts as is named: the path's `:id` or a body field (validated before this runs). */
export type PartnerAt = 'params.id' | 'body.partnerId' | 'body.fromId' | 'body.creatorId'

type Ctx = { headers: Record<string, string | undefined>; params: Record<string, string>; body: unknown }

const named = (at: PartnerAt, { params, body }: Pick<Ctx, 'params' | 'body'>): string =>
  at === 'params.id' ? params.id! : (body as Record<string, string>)[at.slice('body.'.length)]!

// The status table lives in rejections.ts; Elysia's `status` is typed by literal codes, hence the cast.
const refuse = (r: Rejection) => status(statusOfRejection(r) as 400, refusalBody(r))

/**
 * The macros, resolved after validation and before the handler, once per request. Each checks the
 * bearer token once (one hash, one lookup) and hands the route what it needs:
 * - `actAs: where` — the request acts as that partner (its token; anyone in open mode): `partnerId`,
 *   `actor`, and `stillActing()` for waits that must end when the token is reissued meanwhile;
 * - `reader` — any partner or the operator (anyone in open mode): `actor`;
 * - `operator` — the operator token, in every mode: `actor`;
 * - `logReader` — the operator (anyone in open mode), for the whole log: `actor`;
 * - `member: 'params.id'` — a member of that conversation or the operator (anyone in open mode): `actor`;
 * - `registering` — `/register`: an id that holds a token re-registers only with it, and only the
 *   operator registers a human: `actor`.
 */
export function authPlugin(access: Access) {
  const actorOf = (ctx: Pick<Ctx, 'headers'>): Actor => access.actorOf(ctx.headers.authorization)
  return new Elysia().macro({
    actAs: (at: PartnerAt) => ({
      resolve(ctx) {
        const partnerId = named(at, ctx)
        const actor = actorOf(ctx)
        const denied = access.actAs(actor, partnerId)
        if (denied) return refuse(denied)
        /** Null while the request's token still acts as the partner; the refusal once it no longer does. */
        const stillActing = (): Rejection | null => access.actAs(actorOf(ctx), partnerId)
        return { actor, partnerId, stillActing }
      },
    }),
    reader: {
      resolve(ctx) {
        const actor = actorOf(ctx)
        const denied = access.canRead(actor)
        return denied ? refuse(denied) : { actor }
      },
    },
    operator: {
      resolve(ctx) {
        const actor = actorOf(ctx)
        const denied = access.operatorOnly(actor)
        return denied ? refuse(denied) : { actor }
      },
    },
    logReader: {
      resolve(ctx) {
        const actor = actorOf(ctx)
        const denied = access.canReadLog(actor)
        return denied ? refuse(denied) : { actor }
      },
    },
    member: (at: 'params.id') => ({
      resolve(ctx) {
        const actor = actorOf(ctx)
        const denied = access.canReadConversation(actor, named(at, ctx))
        return denied ? refuse(denied) : { actor }
      },
    }),
    registering: {
      resolve(ctx) {
        const actor = actorOf(ctx)
        const { partnerId, kind } = ctx.body as { partnerId: string; kind?: PartnerKind }
        const denied = access.mayRegister(actor, partnerId, kind)
        return denied ? refuse(denied) : { actor }
      },
    },
  })
}
