// Read model: how far each recipient got with each conversation (pushed, surfaced; read lives in messages.ts), and receipts.
import type { Database } from 'bun:sqlite'
import type { DeliveryState, Envelope } from '../events/schema.ts'
import { keySeqs, type Message, newestKey, pastSweep } from './messages.ts'
import { rememberedReads } from './remembered.ts'

const CREATE = `CREATE TABLE delivery_positions (
     partner_id TEXT NOT NULL,
     conversation_id TEXT NOT NULL,
     pushed_seq INTEGER NOT NULL DEFAULT 0,
     surfaced_seq INTEGER NOT NULL DEFAULT 0,
     PRIMARY KEY (partner_id, conversation_id)
   );
   -- One row per position advance (never per message): when a position first covered a seq, for receipts' "at".
   CREATE TABLE delivery_marks (
     partner_id TEXT NOT NULL,
     conversation_id TEXT NOT NULL,
     state TEXT NOT NULL,
     seq INTEGER NOT NULL,
     at TEXT NOT NULL,
     PRIMARY KEY (partner_id, conversation_id, state, seq)
   );`

/**
 * A log written before delivery state has read advances already: their marks are taken from the log itself,
 * in the same step, so that a rebuild (audit) finds the same rows. Only where the log is in this file.
 */
const BACKFILL = `INSERT OR IGNORE INTO delivery_marks (partner_id, conversation_id, state, seq, at)
   SELECT json_extract(data, '$.partnerId'), json_extract(data, '$.conversationId'), 'read', json_extract(data, '$.seq'), at
   FROM events WHERE type = 'ReadPositionAdvanced';`

/** The steps; `withLog`: the database holds the event log too (not a scratch rebuild). */
export const migrations = (withLog: boolean): string[] => [withLog ? `${CREATE}\n${BACKFILL}` : CREATE]
export const MIGRATIONS = migrations(false)
export const TABLES = { delivery_positions: 'partner_id, conversation_id', delivery_marks: 'partner_id, conversation_id, state, seq' }

export type Positions = { pushed: number; surfaced: number; read: number }

/** Where one message stands for a recipient with these positions: the furthest state that covers it. */
export function stateOf(seq: number, p: Positions): DeliveryState {
  if (p.read >= seq) return 'read'
  if (p.surfaced >= seq) return 'surfaced'
  if (p.pushed >= seq) return 'pushed'
  return 'queued'
}

export type Receipt = { partnerId: string; state: DeliveryState; at: string }

type RecipientRow = { partner_id: string; pushed: number; surfaced: number; read: number }

export function createDelivery(db: Database) {
  const push = db.query(
    `INSERT INTO delivery_positions (partner_id, conversation_id, pushed_seq) VALUES (?1, ?2, ?3)
     ON CONFLICT (partner_id, conversation_id) DO UPDATE SET pushed_seq = max(pushed_seq, ?3)`,
  )
  const surface = db.query(
    `INSERT INTO delivery_positions (partner_id, conversation_id, surfaced_seq) VALUES (?1, ?2, ?3)
     ON CONFLICT (partner_id, conversation_id) DO UPDATE SET surfaced_seq = max(surfaced_seq, ?3)`,
  )
  const mark = db.query('INSERT OR IGNORE INTO delivery_marks (partner_id, conversation_id, state, seq, at) VALUES (?, ?, ?, ?, ?)')
  // Partner ?1's positions in conversation ?2.
  const POSITIONS = `coalesce((SELECT pushed_seq FROM delivery_positions WHERE partner_id = +?1 AND conversation_id = +?2), 0) AS pushed,
       coalesce((SELECT surfaced_seq FROM delivery_positions WHERE partner_id = +?1 AND conversation_id = +?2), 0) AS surfaced,
       coalesce((SELECT seq FROM read_positions WHERE partner_id = +?1 AND conversation_id = +?2), 0) AS read`
  const positions = db.query<Positions & { upto: number | null }, [string, string, number]>(
    `SELECT ${POSITIONS}, ${newestKey('k.conversation_id = +?2 AND k.seq <= ?3')} AS upto`,
  )
  const shownQuery = db.query<Positions, [string, string]>(`SELECT ${POSITIONS}`)
  // Every talk reads its sender's positions in the conversation (a reply acknowledges what it was shown): they
  // move only with the two events below, so they are remembered (see rememberedReads).
  const shown = rememberedReads((partnerId: string, conversationId: string): Positions => shownQuery.get(partnerId, conversationId)!)
  // Cross-view on purpose (participants, read positions, messages): the recipients of a message are its
  // conversation's members at the time it was sent, the sender excepted, whether or not they left since.
  const recipients = db.query<RecipientRow, [string, string, string]>(
    `SELECT p.partner_id, coalesce(d.pushed_seq, 0) AS pushed, coalesce(d.surfaced_seq, 0) AS surfaced, coalesce(r.seq, 0) AS read
     FROM participants p
     LEFT JOIN delivery_positions d ON d.partner_id = p.partner_id AND d.conversation_id = p.conversation_id
     LEFT JOIN read_positions r ON r.partner_id = p.partner_id AND r.conversation_id = p.conversation_id
     WHERE p.conversation_id = +?1 AND p.partner_id != ?2 AND p.joined_at <= ?3 AND (p.left_at IS NULL OR p.left_at >= ?3)
     ORDER BY p.joined_at, p.partner_id`,
  )
  const firstMark = db.query<{ at: string }, [string, string, string, number]>(
    'SELECT at FROM delivery_marks WHERE partner_id = +? AND conversation_id = +? AND state = +? AND seq >= ? ORDER BY seq LIMIT 1',
  )
  const message = db.query<{ seq: number; conversation_id: string; from_id: string; created_at: string }, [number]>(
    'SELECT seq, conversation_id, from_id, created_at FROM messages WHERE seq = +?',
  )
  // Messages not yet in front of this partner's session in any way: past its read, pushed and surfaced positions.
  const unseenKeys = (keys: string) =>
    `SELECT k.seq FROM participants p
     LEFT JOIN read_positions r ON r.partner_id = p.partner_id AND r.conversation_id = p.conversation_id
     LEFT JOIN delivery_positions d ON d.partner_id = p.partner_id AND d.conversation_id = p.conversation_id
     JOIN ${keys} k ON k.conversation_id = p.conversation_id
       AND k.seq > max(coalesce(r.seq, 0), coalesce(d.pushed_seq, 0), coalesce(d.surfaced_seq, 0), ?2)
     WHERE p.partner_id = +?1 AND p.left_at IS NULL AND k.from_id != ?1${pastSweep(keys, '?2')}`
  const unseen = db.query<Message, [string, number, number]>(
    `SELECT m.seq AS id, m.seq, m.conversation_id, m.from_id, m.from_kind, m.content, m.created_at
     FROM messages m WHERE m.seq IN (${keySeqs(unseenKeys, '+?3')}) ORDER BY m.seq`,
  )

  return {
    apply(event: Envelope): void {
      switch (event.type) {
        case 'DeliveryAdvanced': {
          const d = event.data
          ;(d.state === 'pushed' ? push : surface).run(d.partnerId, d.conversationId, d.seq)
          mark.run(d.partnerId, d.conversationId, d.state, d.seq, event.at)
          return shown.forget(d.partnerId, d.conversationId)
        }
        case 'ReadPositionAdvanced':
          // The read position itself is the messages view's (read_positions); what is shown here follows it.
          mark.run(event.data.partnerId, event.data.conversationId, 'read', event.data.seq, event.at)
          return shown.forget(event.data.partnerId, event.data.conversationId)
        default:
          return
      }
    },
    /** The partner's positions in a conversation, remembered between reads (read-only). */
    shown: (partnerId: string, conversationId: string): Readonly<Positions> => shown.get(partnerId, conversationId)!,
    /** The write transaction ended (committed or rolled back): positions it moved may be remembered again. */
    settled: shown.settled,
    /** The partner's positions in a conversation, and the newest message there at or below `cursor`. */
    positions: (partnerId: string, conversationId: string, cursor: number) => positions.get(partnerId, conversationId, cursor)!,
    /** Messages visible to the partner that its session was not shown in any way yet, seq > after, oldest first. */
    unseen: (partnerId: string, after: number, limit: number) => unseen.all(partnerId, after, limit),
    /** The receipt of message `seq`: each recipient's state and when it got there; null when no such message. */
    receipts(seq: number) {
      const m = message.get(seq)
      if (!m) return null
      const list: Receipt[] = recipients.all(m.conversation_id, m.from_id, m.created_at).map((row) => {
        const state = stateOf(seq, row)
        const at = state === 'queued' ? m.created_at : (firstMark.get(row.partner_id, m.conversation_id, state, seq)?.at ?? m.created_at)
        return { partnerId: row.partner_id, state, at }
      })
      return { seq, conversationId: m.conversation_id, from: m.from_id, recipients: list }
    },
    /** Each recipient's state for several messages of one conversation (history): positions only, no times. */
    statesFor(conversationId: string, messages: Array<{ seq: number; from_id: string; created_at: string }>) {
      return messages.map((m) =>
        recipients.all(conversationId, m.from_id, m.created_at).map((row) => ({ partnerId: row.partner_id, state: stateOf(m.seq, row) })),
      )
    },
  }
}
export type Delivery = ReturnType<typeof createDelivery>
