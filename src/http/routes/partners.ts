// Partners: register, unregister, list, status, notification setting, token reissue. Auth: `{ actAs: 'params.id' }` (or the body field naming the partner), `{ reader: true }`, `{ operator: true }`, `{ registering: true }`.
import { Elysia } from 'elysia'
import { RegisterInput } from '../../events/schema.ts'
import { PartnersResponse, RegisterResponse, RetireResponse, Success, TokenResponse, UnregisterResponse } from '../../wire/responses.ts'
import { authPlugin } from '../auth-plugin.ts'
import { bearer, hashToken, newToken } from '../auth.ts'
import type { PartnerRow } from '../../projections/partners.ts'
import type { Access, BrokerDeps } from '../deps.ts'
import { rejected } from '../rejections.ts'
import { sourceAddress } from '../rate-limits.ts'
import { NotificationsBody, PartnerParams, PartnersQuery, StatusBody, UnregisterBody } from '../schemas.ts'

const PARTNERS_PAGE = 200
/** Partners examined per request at most when stale ones are left out: a page may come back short, `next_after_id` still advances. */
const PARTNERS_SCAN = 10_000

const hashOf = (authorization: string | undefined): string | null => {
  const token = bearer(authorization)
  return token === null ? null : hashToken(token)
}

export function partnerRoutes({ store, config, limits, hub, now }: BrokerDeps, access: Access) {
  const { commands, views } = store
  const tokens = config.auth === 'token'
  const staleMs = config.staleDays * 86_400_000
  /** Not seen for DUO_STALE_DAYS (and not listening now): left out of default listings, still reachable by id. */
  const stale = (row: PartnerRow) =>
    staleMs > 0 && !hub.isListening(row.id) && now().getTime() - Date.parse(access.lastActive(row)) > staleMs

  return new Elysia({ name: 'partners' })
    .use(authPlugin(access))
    .post(
      '/register',
      async ({ body, headers, server, request, actor }) => {
        // New ids only: a partner coming back is not what floods a broker.
        if (views.partners.get(body.partnerId) === null) {
          const limited = limits.check('register', () => sourceAddress(server, request))
          if (limited) return rejected(limited)
        }
        const token = tokens ? newToken() : undefined
        const existing = views.partners.get(body.partnerId)
        const result = await commands.execute({
          kind: 'register',
          partnerId: body.partnerId,
          name: body.name,
          projectPath: body.projectPath,
          partnerKind: body.kind,
          newTokenHash: token && hashToken(token),
          // The operator speaks for human partners without holding their tokens (`registering` checked that).
          presentedTokenHash: tokens && !(actor.kind === 'operator' && existing?.kind === 'human') ? hashOf(headers.authorization) : undefined,
          // A second process of a live partner (a health check, another session) must not rename it.
          keepIdentity: hub.sessions(body.partnerId) > 0 && body.rename !== true,
        })
        if (!result.ok) return rejected(result.rejection)
        const self = { kind: 'partner', id: body.partnerId } as const
        access.actAs(self, body.partnerId)
        const partner = access.partnerJson(views.partners.get(body.partnerId)!, self)
        // broker_id says which log this is: a partner keeps its token per broker id (contract section 2).
        return { success: true as const, partner, broker_id: store.log.brokerId, ...(result.value.decision.tokenIssued ? { token } : {}) }
      },
      {
        registering: true,
        body: RegisterInput,
        response: { 200: RegisterResponse },
        detail: { summary: 'Register a partner (returns its token once, on first registration)' },
      },
    )
    .post(
      '/unregister',
      async ({ partnerId, body }) => {
        const otherSessions = hub.sessions(partnerId, body.sessionId)
        const result = await commands.execute({ kind: 'unregister', partnerId, otherSessions })
        if (!result.ok) return rejected(result.rejection)
        return { success: true as const, offline: result.value.decision.stillOnline !== true, sessions: otherSessions }
      },
      {
        actAs: 'body.partnerId',
        body: UnregisterBody,
        response: { 200: UnregisterResponse },
        detail: { summary: 'Go offline (unless another session of the partner is live); ends the partner’s waiting long-polls' },
      },
    )
    .get(
      '/partners',
      ({ actor, query }) => {
        const everyone = query.all === 'true' || query.all === '1'
        // Paged by id: one answer stays small with any number of partners; `next_after_id` is null on the last
        // page. Stale partners are skipped within a bounded scan, so a page may be short while more follow.
        const limit = query.limit ?? PARTNERS_PAGE
        const picked: PartnerRow[] = []
        let after = query.after_id ?? ''
        let examined = 0
        let exhausted = false
        while (picked.length <= limit && !exhausted && examined < PARTNERS_SCAN) {
          const rows = views.partners.page(after, Math.min(1000, PARTNERS_SCAN - examined))
          exhausted = rows.length < Math.min(1000, PARTNERS_SCAN - examined)
          for (const row of rows) {
            examined++
            after = row.id
            if (everyone || !stale(row)) picked.push(row)
            if (picked.length > limit) break
          }
        }
        const partners = picked.slice(0, limit).map((row) => access.partnerJson(row, actor))
        const next_after_id = picked.length > limit ? partners[partners.length - 1]!.id : exhausted ? null : after
        return { partners, total: access.partnerCount(), next_after_id }
      },
      {
        reader: true,
        query: PartnersQuery,
        response: { 200: PartnersResponse },
        detail: {
          summary:
            'Partners in service with presence, by id, in pages (a partner or operator token in token mode); ?all=true adds those not seen for DUO_STALE_DAYS',
        },
      },
    )
    .post(
      '/partners/:id/status',
      async ({ partnerId, body }) => {
        const message = body.message ? body.message : null
        const result = await commands.execute({ kind: 'setStatus', partnerId, message })
        return result.ok ? { success: true as const } : rejected(result.rejection)
      },
      {
        actAs: 'params.id',
        params: PartnerParams,
        body: StatusBody,
        response: { 200: Success },
        detail: { summary: 'Set or clear the status message' },
      },
    )
    .post(
      '/partners/:id/notifications',
      async ({ partnerId, body }) => {
        const result = await commands.execute({ kind: 'setNotifications', partnerId, enabled: body.enabled })
        return result.ok ? { success: true as const } : rejected(result.rejection)
      },
      {
        actAs: 'params.id',
        params: PartnerParams,
        body: NotificationsBody,
        response: { 200: Success },
        detail: { summary: 'Switch unread notifications on or off' },
      },
    )
    .delete(
      '/partners/:id',
      async ({ params }) => {
        const result = await commands.execute({ kind: 'retire', partnerId: params.id })
        return result.ok ? { success: true as const, partnerId: params.id, retired: true as const } : rejected(result.rejection)
      },
      {
        operator: true,
        params: PartnerParams,
        response: { 200: RetireResponse },
        detail: { summary: 'Operator: retire a partner (gone from listings, its token dead, its messages kept)' },
      },
    )
    .post(
      '/partners/:id/token',
      async ({ params }) => {
        const token = newToken()
        const result = await commands.execute({ kind: 'reissueToken', partnerId: params.id, newTokenHash: hashToken(token) })
        return result.ok ? { success: true as const, partnerId: params.id, token } : rejected(result.rejection)
      },
      {
        operator: true,
        params: PartnerParams,
        response: { 200: TokenResponse },
        detail: { summary: 'Operator: issue a new token for a partner (the old one stops working)' },
      },
    )
}
