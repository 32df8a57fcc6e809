// The views: every projection's tables, migrations and one projector that applies an event to all of them.
// Unlike in-memory folds, each view is a set of SQLite tables that its `apply(event)` updates inside the
// append's transaction: a crash leaves log and views consistent, and start-up needs no replay of the log.
// `apply` is still a function of the events alone (no clock, no I/O beyond its own tables), so `audit`
// rebuilds every view from the log and compares.
import type { Database } from 'bun:sqlite'
import { migrate } from '../events/migrate.ts'
import type { DecisionView } from '../events/decide.ts'
import type { Envelope } from '../events/schema.ts'
import * as conversations from './conversations.ts'
import * as delivery from './delivery.ts'
import * as messages from './messages.ts'
import * as partners from './partners.ts'

/** Every projection table with the key it is compared on (audit). */
export const VIEW_TABLES: Record<string, string> = {
  ...partners.TABLES,
  ...conversations.TABLES,
  ...messages.TABLES,
  ...delivery.TABLES,
}

export function migrateViews(db: Database): void {
  // Conversations last: a step of theirs fills a new column from the messages table.
  const withLog = db.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'events'").get() !== null
  migrate(db, 'partners', partners.MIGRATIONS)
  migrate(db, 'messages', messages.migrations(`(SELECT coalesce(max(seq), 0) FROM ${withLog ? 'events' : 'messages'})`))
  migrate(db, 'conversations', conversations.MIGRATIONS)
  migrate(db, 'delivery', delivery.migrations(withLog))
}

export function openViews(db: Database) {
  migrateViews(db)
  const views = {
    partners: partners.createPartners(db),
    conversations: conversations.createConversations(db),
    messages: messages.createMessages(db),
    delivery: delivery.createDelivery(db),
  }
  return {
    ...views,
    /** After each write transaction, committed or rolled back: what the views remember may be kept again. */
    settled(): void {
      views.partners.settled()
      views.conversations.settled()
      views.delivery.settled()
    },
    /** Applies one event to every view; runs inside the append's transaction. */
    project(event: Envelope): void {
      views.partners.apply(event)
      views.conversations.apply(event)
      views.messages.apply(event)
      views.delivery.apply(event)
    },
  }
}
export type Views = ReturnType<typeof openViews>

/** The projections seen through the narrow interface the pure rules read. */
export function decisionView(views: Views, lastSeq: () => number): DecisionView {
  return {
    partner: (id) => views.partners.forRules(id),
    partnerLike: (id) => views.partners.like(id),
    conversation: (id) => views.conversations.get(id),
    isMember: (conversationId, partnerId) => views.conversations.isMember(conversationId, partnerId),
    members: (conversationId) => views.conversations.memberIds(conversationId),
    groupCount: (partnerId) => views.conversations.groupCount(partnerId),
    conversationsOf: (partnerId) => views.conversations.conversationsOf(partnerId),
    directBetween: (a, b) => views.conversations.directBetween(a, b),
    messageByKey: (fromId, key) => views.messages.byIdempotencyKey(fromId, key),
    ackable: (partnerId, cursor, conversationId) => views.messages.ackable(partnerId, cursor, conversationId),
    lastSeq,
    delivery: (partnerId, conversationId, cursor) => views.delivery.positions(partnerId, conversationId, cursor),
    shown: (partnerId, conversationId) => views.delivery.shown(partnerId, conversationId),
  }
}
