// Partners: register, unregister, list, status, notification setting, token reissue. Auth: `{ actAs: 'params.id' }` (or the body field naming the partner), `{ reader: true }`, `{ operator: true }`, `{ registering: true }`.
import { Elysia } from 'elysia'
import { RegisterInput } from '../../events/schema.ts'
import { PartnersResponse, RegisterResponse, Success, TokenResponse } from '../../wire/responses.ts'
import { authPlugin } from '../auth-plugin.ts'
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
    .use(authPlugin(access))
    .post(
      '/register',
      async ({ body, headers }) => {
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
        const self = { kind: 'partner', id: body.partnerId } as const
        access.actAs(self, body.partnerId)
        const partner = access.partnerJson(views.partners.get(body.partnerId)!, self)
        return { success: true as const, partner, ...(result.value.decision.tokenIssued ? { token } : {}) }
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
      async ({ partnerId }) => {
        const result = await commands.execute({ kind: 'unregister', partnerId })
        return result.ok ? { success: true as const } : rejected(result.rejection)
      },
      {
        actAs: 'body.partnerId',
        body: UnregisterBody,
        response: { 200: Success },
        detail: { summary: 'Go offline; ends the partner’s waiting long-polls' },
      },
    )
    .get('/partners', ({ actor }) => ({ partners: views.partners.all().map((row) => access.partnerJson(row, actor)) }), {
      reader: true,
      response: { 200: PartnersResponse },
      detail: { summary: 'All partners with presence (a partner or operator token in token mode)' },
    })
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
