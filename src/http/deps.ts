// What every route plugin is given: the store, the hub, the configuration, and access decisions.
import type { Rejection } from '../events/decide.ts'
import type { PartnerKind } from '../events/schema.ts'
import type { PartnerRow } from '../projections/partners.ts'
import type { Store } from '../store.ts'
import type { PartnerView } from '../wire/responses.ts'
import { type Actor, bearer, hashToken, sameDigest } from './auth.ts'
import type { BrokerConfig } from './config.ts'
import type { Hub } from './hub.ts'
import type { RateLimiter } from './rate-limits.ts'
import { cookieValue, SESSION_COOKIE, type Sessions, type SharedSessions } from './sessions.ts'
import type { SendBudget } from './paced.ts'
import { createPresence } from './presence.ts'

export type BrokerDeps = {
  store: Store
  hub: Hub
  config: BrokerConfig
  adminToken: string
  now: () => Date
  newGroupId: () => string
  startedAt: number
  /** Aborted when the broker stops: every parked wait answers and every stream ends. */
  shutdown: AbortSignal
  /** Rate limits (in memory; DUO_RATE_LIMITS=off: none). */
  limits: RateLimiter
  /**
   * Several brokers on one PostgreSQL log: brings this broker's replica up to the shared head. Awaited
   * before each request, so every answer reflects at least what was committed (through any broker) when
   * the request arrived: a token, a partner or a cursor just created elsewhere is known here too.
   */
  catchUp?: () => Promise<void>
  /** Several brokers on one PostgreSQL log: console sign-ins kept where every broker sees them. */
  sharedSessions?: SharedSessions
  /** When each partner last made a request here (ms); given when other brokers read it (shared presence). */
  activity?: Map<string, number>
  /** When the partner last made a request through another broker sharing the log (ms). */
  activeElsewhere?: (partnerId: string) => number | undefined
  /** Bytes of big answers not yet taken by clients' sockets, bounded across all clients (see paced.ts). */
  sendBudget: SendBudget
}

/** An error thrown from a route that `onError` turns into `{error}` with this status. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message)
  }
}

/** `sessions`: the console's sign-ins; a live session cookie acts as the operator (see `actorOf`). */
export function createAccess({ store, config, adminToken, hub, now, activity = new Map(), activeElsewhere }: BrokerDeps, sessions?: Sessions) {
  const open = config.auth === 'open'
  const presence = createPresence({
    now: () => now().getTime(),
    timeoutMs: config.presenceTimeoutMs,
    isListening: hub.isListening,
    initial: store.views.partners.presence(),
    activity,
    registered: store.views.partners.registered,
    retiredAtStart: store.views.partners.retired(),
  })
  store.log.onCommit(presence.apply)

  const adminHash = hashToken(adminToken)

  /**
   * Who a request acts as: its bearer token, else the console's session cookie (the operator). A cookie reaches
   * here only from the broker's own pages: in token mode every request from another web page was refused first
   * (`foreignPageRefusal` in app.ts), and SameSite=Strict keeps browsers from sending it cross-site at all.
   */
  function actorOf(authorization: string | null | undefined, cookie?: string | null): Actor {
    const token = bearer(authorization)
    if (token === null)
      return sessions?.expiryOf(cookieValue(cookie, SESSION_COOKIE)) ? { kind: 'operator' } : { kind: 'none' }
    // One hash per request: compared in constant time with the operator's, then looked up among the partners'.
    const hash = hashToken(token)
    if (sameDigest(hash, adminHash)) return { kind: 'operator' }
    const id = store.views.partners.byTokenHash(hash)
    if (id !== null) return { kind: 'partner', id }
    // Only for tokens that name nobody in service: say so plainly when it was a retired partner's.
    const retired = store.views.partners.retiredByTokenHash(hash)
    return retired === null ? { kind: 'invalid' } : { kind: 'invalid', retired }
  }

  /**
   * Whether a partner is online and how it is reached: derived from listeners, sessions and recent activity. A
   * client active lately without anything parked here (an HTTP script between polls) is at best connected.
   */
  function reach(id: string, row: Pick<PartnerRow, 'status' | 'last_seen'>) {
    const live = hub.reachability(id)
    const lastActive = Math.max(Date.parse(row.last_seen), presence.lastActive(id) ?? 0, activeElsewhere?.(id) ?? 0)
    const online = row.status === 'online' && (live !== 'offline' || now().getTime() - lastActive <= config.presenceTimeoutMs)
    const reachability: PartnerView['reachability'] = !online ? 'offline' : live === 'offline' ? 'connected' : live
    return { online, reachability, lastActive }
  }

  return {
    actorOf,
    /** Partners online now, counted without reading them (see presence.ts). */
    onlineCount: presence.onlineCount,
    /** Partners in service, counted without reading them (see presence.ts). */
    partnerCount: presence.partnerCount,
    /** Null when `actor` may act as `partnerId`; otherwise why not. Records the partner as active. */
    actAs(actor: Actor, partnerId: string): Rejection | null {
      if (!open) {
        if (actor.kind === 'none') return { reason: 'token_required', partnerId }
        if (actor.kind === 'invalid') return actor.retired ? { reason: 'partner_retired', partnerId: actor.retired } : { reason: 'token_invalid' }
        // The operator speaks as any human partner (the console); nobody else acts for another.
        const speaksForHuman = actor.kind === 'operator' && store.views.partners.get(partnerId)?.kind === 'human'
        if (!speaksForHuman && (actor.kind !== 'partner' || actor.id !== partnerId))
          return { reason: 'acting_for_another', partnerId }
      }
      // Only known ids: in open mode anyone may name any id, and the map must not grow with them. Partners are
      // never removed, so an id already in the map needs no read (and a known partner's is remembered, see forRules).
      if (presence.lastActive(partnerId) !== undefined || store.views.partners.forRules(partnerId)) presence.touch(partnerId)
      return null
    },
    /**
     * Registering `partnerId` (token mode): an id that already holds a token re-registers only with it, and
     * only the operator makes a human partner (a person may step into any conversation).
     */
    mayRegister(actor: Actor, partnerId: string, kind: PartnerKind | undefined): Rejection | null {
      if (open) return null
      const existing = store.views.partners.get(partnerId)
      if (existing?.token_hash) {
        const denied = this.actAs(actor, partnerId)
        if (denied) return denied
      }
      return kind === 'human' && existing?.kind !== 'human' ? this.operatorOnly(actor) : null
    },
    /** Reading shared lists (/partners): any valid partner or the operator, or anyone in open mode. */
    canRead(actor: Actor): Rejection | null {
      if (open || actor.kind === 'partner' || actor.kind === 'operator') return null
      return actor.kind === 'invalid' ? { reason: 'token_invalid' } : { reason: 'token_required', partnerId: 'any' }
    },
    /**
     * Reading one conversation: its members (or the operator); anyone in open mode. The token is checked
     * before the id is looked up, so a caller without one cannot even learn which conversations exist.
     */
    canReadConversation(actor: Actor, conversationId: string): Rejection | null {
      if (!open && actor.kind === 'none') return { reason: 'token_required', partnerId: 'a member' }
      if (!open && actor.kind === 'invalid') return { reason: 'token_invalid' }
      if (!store.views.conversations.get(conversationId)) return { reason: 'unknown_conversation', conversationId }
      if (open || actor.kind !== 'partner') return null
      return store.views.conversations.isMember(conversationId, actor.id)
        ? null
        : { reason: 'not_a_participant', conversationId }
    },
    /** Reading the whole log (/events): the operator; anyone in open mode. */
    canReadLog(actor: Actor): Rejection | null {
      return open ? null : this.operatorOnly(actor)
    },
    operatorOnly(actor: Actor): Rejection | null {
      if (actor.kind === 'operator') return null
      if (actor.kind === 'none') return { reason: 'operator_token_required' }
      return actor.kind === 'invalid' ? { reason: 'token_invalid' } : { reason: 'operator_only' }
    },
    /** When the partner was last active: its last event, or a later request this broker (or another on the shared log) saw. */
    lastActive: (row: PartnerRow): string =>
      new Date(Math.max(Date.parse(row.last_seen), activity.get(row.id) ?? 0, activeElsewhere?.(row.id) ?? 0)).toISOString(),
    /**
     * The API's view of a partner, as `viewer` may see it: presence is derived from listeners, sessions and
     * recent activity; `project_path` (where on someone's disk a project lives) is shown only to the partner
     * itself and the operator, and is null for everyone else (no viewer given: nobody).
     */
    partnerJson(row: PartnerRow, viewer?: Actor): PartnerView {
      const { online, reachability, lastActive } = reach(row.id, row)
      return {
        id: row.id,
        name: row.name,
        kind: row.kind,
        project_path: viewer?.kind === 'operator' || (viewer?.kind === 'partner' && viewer.id === row.id) ? row.project_path : null,
        status: online ? 'online' : 'offline',
        status_message: row.status_message,
        notifications_enabled: row.notifications_enabled === 1,
        created_at: row.created_at,
        last_seen: new Date(lastActive).toISOString(),
        isListening: hub.isListening(row.id),
        reachability,
        sessions: hub.sessions(row.id),
      }
    },
    /** How a partner is reached now, for talk answers (the same rule as partnerJson's, without building the rest). */
    reachabilityOf(partnerId: string): PartnerView['reachability'] {
      // Listening here, a partner is reached that way exactly when its status is online: its last activity does not
      // matter, and the status is in the rules' remembered view (a listener's acks keep changing its last_seen).
      const live = hub.reachability(partnerId)
      if (live !== 'offline') return store.views.partners.forRules(partnerId)?.status === 'online' ? live : 'offline'
      const row = store.views.partners.presenceOf(partnerId)
      return row ? reach(partnerId, row).reachability : 'offline'
    },
  }
}
export type Access = ReturnType<typeof createAccess>
