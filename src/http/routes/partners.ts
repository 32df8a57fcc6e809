// Partners: register, unregister, list, status, notification setting, token reissue.
import { Elysia } from 'elysia'
import { RegisterInput } from '../../events/schema.ts'
import { bearer, hashToken, newToken } from '../auth.ts'
import type { Access, BrokerDeps } from '../deps.ts'
import { rejected } from '../rejections.ts'
import { NotificationsBody, PartnerParams, StatusBody, UnregisterBody } from '../schemas.ts'

const hashOf = (authorization: string | undefined): string | null => {
  const token = bearer(authorization)
  return token === null ? null : hashToken(token)
}

export function partnerRoutes({ store, config }: BrokerDeps, access: Access) {
  const { commands, views } = store
  const tokens = config.auth === 'token'

  return new Elysia({ name: 'partners' })
    .post(
      '/register',
      async ({ body, headers }) => {
        const existing = views.partners.get(body.partnerId)
        const actor = access.actorOf(headers.authorization)
        // Re-registering an id that has a token needs that token; a new id (or one that never had a token) gets one.
        if (tokens && existing?.token_hash) {
          const denied = access.actAs(actor, body.partnerId)
          if (denied) return rejected(denied)
        }
        // A human partner may step into any conversation, so only the operator makes one.
        if (tokens && body.kind === 'human' && existing?.kind !== 'human') {
          const denied = access.operatorOnly(actor)
          if (denied) return rejected(denied)
        }
        const token = tokens ? newToken() : undefined
        const result = await commands.execute({
          kind: 'register',
          partnerId: body.partnerId,
          name: body.name,
          projectPath: body.projectPath,
          partnerKind: body.kind,
          newTokenHash: token && hashToken(token),
          presentedTokenHash: tokens ? hashOf(headers.authorization) : undefined,
        })
        if (!result.ok) return rejected(result.rejection)
        access.actAs({ kind: 'partner', id: body.partnerId }, body.partnerId)
        const partner = access.partnerJson(views.partners.get(body.partnerId)!)
        return { success: true, partner, ...(result.value.decision.tokenIssued ? { token } : {}) }
      },
      { body: RegisterInput, detail: { summary: 'Register a partner (returns its token once, on first registration)' } },
    )
    .post(
      '/unregister',
      async ({ body, headers }) => {
        const denied = access.actAs(access.actorOf(headers.authorization), body.partnerId)
        if (denied) return rejected(denied)
        const result = await commands.execute({ kind: 'unregister', partnerId: body.partnerId })
        return result.ok ? { success: true } : rejected(result.rejection)
      },
      { body: UnregisterBody, detail: { summary: 'Go offline; ends the partner’s waiting long-polls' } },
    )
    .get(
      '/partners',
      ({ headers }) => {
        const denied = access.canRead(access.actorOf(headers.authorization))
        if (denied) return rejected(denied)
        return { partners: views.partners.all().map(access.partnerJson) }
      },
      { detail: { summary: 'All partners with presence (a partner or operator token in token mode)' } },
    )
    .post(
      '/partners/:id/status',
      async ({ params, body, headers }) => {
        const denied = access.actAs(access.actorOf(headers.authorization), params.id)
        if (denied) return rejected(denied)
        const message = body.message ? body.message : null
        const result = await commands.execute({ kind: 'setStatus', partnerId: params.id, message })
        return result.ok ? { success: true } : rejected(result.rejection)
      },
      { params: PartnerParams, body: StatusBody, detail: { summary: 'Set or clear the status message' } },
    )
    .post(
      '/partners/:id/notifications',
      async ({ params, body, headers }) => {
        const denied = access.actAs(access.actorOf(headers.authorization), params.id)
        if (denied) return rejected(denied)
        const result = await commands.execute({ kind: 'setNotifications', partnerId: params.id, enabled: body.enabled })
        return result.ok ? { success: true } : rejected(result.rejection)
      },
      { params: PartnerParams, body: NotificationsBody, detail: { summary: 'Switch unread notifications on or off' } },
    )
    .post(
      '/partners/:id/token',
      async ({ params, headers }) => {
        const denied = access.operatorOnly(access.actorOf(headers.authorization))
        if (denied) return rejected(denied)
        const token = newToken()
        const result = await commands.execute({ kind: 'reissueToken', partnerId: params.id, newTokenHash: hashToken(token) })
        return result.ok ? { success: true, partnerId: params.id, token } : rejected(result.rejection)
      },
      { params: PartnerParams, detail: { summary: 'Operator: issue a new token for a partner (the old one stops working)' } },
    )
}
