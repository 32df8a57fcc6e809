// Read model: messages per conversation (history paging, cursor reads, unread) and read positions.
import type { Database } from 'bun:sqlite'
import { fitByBytes, type SeqPage } from '../events/pages.ts'
import type { Envelope } from '../events/schema.ts'

export const MIGRATIONS = [
  `CREATE TABLE messages (
     seq INTEGER PRIMARY KEY,
     conversation_id TEXT NOT NULL,
     from_id TEXT NOT NULL,
     content TEXT NOT NULL,
     created_at TEXT NOT NULL,
     idempotency_key TEXT
   );
   CREATE INDEX messages_by_conversation ON messages (conversation_id, seq);
   CREATE UNIQUE INDEX messages_by_key ON messages (from_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
   CREATE TABLE read_positions (
     partner_id TEXT NOT NULL,
     conversation_id TEXT NOT NULL,
     seq INTEGER NOT NULL,
     PRIMARY KEY (partner_id, conversation_id)
   );`,
  `ALTER TABLE messages ADD COLUMN from_kind TEXT NOT NULL DEFAULT 'agent'`,
]
export const TABLES = { messages: 'seq', read_positions: 'partner_id, conversation_id' }

/** A message as the API shows it; `id` and `seq` are the same number, the event's position in the log. */
export type Message = {
  id: number
  seq: number
  conversation_id: string
  from_id: string
  /** `human` when a person sent it: agents are shown that a person is speaking. */
  from_kind: 'agent' | 'human'
  content: string
  created_at: string
}

const COLUMNS = 'seq AS id, seq, conversation_id, from_id, from_kind, content, created_at'

export const messageOf = (event: Envelope<Extract<Envelope, { type: 'MessageSent' }>>): Message => ({
  id: event.seq,
  seq: event.seq,
  conversation_id: event.data.conversationId,
  from_id: event.data.fromId,
  from_kind: event.data.fromKind ?? 'agent',
  content: event.data.content,
  created_at: event.at,
})

export function createMessages(db: Database) {
  const insert = db.query(
    'INSERT INTO messages (seq, conversation_id, from_id, content, created_at, idempotency_key, from_kind) VALUES (?, ?, ?, ?, ?, ?, ?)',
  )
  const advance = db.query(
    `INSERT INTO read_positions (partner_id, conversation_id, seq) VALUES (?1, ?2, ?3)
     ON CONFLICT (partner_id, conversation_id) DO UPDATE SET seq = max(seq, ?3)`,
  )
  const history = db.query<Message, [string, number, number]>(
    `SELECT * FROM (SELECT ${COLUMNS} FROM messages WHERE conversation_id = +? AND seq < ? ORDER BY seq DESC LIMIT +?)
     ORDER BY seq`,
  )
  const visibleAll = db.query<Message, [string, number, number]>(
    `SELECT m.seq AS id, m.seq, m.conversation_id, m.from_id, m.from_kind, m.content, m.created_at
     FROM participants p JOIN messages m ON m.conversation_id = p.conversation_id
     WHERE p.partner_id = +?1 AND p.left_at IS NULL AND m.seq > ?2 AND m.from_id != ?1
     ORDER BY m.seq LIMIT +?3`,
  )
  const visibleOne = db.query<Message, [string, number, number, string]>(
    `SELECT ${COLUMNS} FROM messages WHERE conversation_id = +?4 AND seq > ?2 AND from_id != ?1 ORDER BY seq LIMIT +?3`,
  )
  const unread = db.query<Message, [string, number, string | null]>(
    `SELECT m.seq AS id, m.seq, m.conversation_id, m.from_id, m.from_kind, m.content, m.created_at
     FROM participants p
     LEFT JOIN read_positions r ON r.partner_id = p.partner_id AND r.conversation_id = p.conversation_id
     JOIN messages m ON m.conversation_id = p.conversation_id AND m.seq > coalesce(r.seq, 0)
     WHERE p.partner_id = +?1 AND p.left_at IS NULL AND m.from_id != ?1 AND (?3 IS NULL OR p.conversation_id = +?3)
     ORDER BY m.seq LIMIT +?2`,
  )
  const byKey = db.query<{ seq: number; conversation_id: string }, [string, string]>(
    'SELECT seq, conversation_id FROM messages WHERE from_id = +? AND idempotency_key = +?',
  )
  const ackable = db.query<{ conversation_id: string; upto: number | null; read_seq: number }, [string, number, string | null]>(
    `SELECT p.conversation_id,
       (SELECT max(m.seq) FROM messages m WHERE m.conversation_id = p.conversation_id AND m.seq <= ?2) AS upto,
       coalesce(r.seq, 0) AS read_seq
     FROM participants p
     LEFT JOIN read_positions r ON r.partner_id = p.partner_id AND r.conversation_id = p.conversation_id
     WHERE p.partner_id = +?1 AND p.left_at IS NULL AND (?3 IS NULL OR p.conversation_id = +?3)`,
  )
  const count = db.query<{ n: number }, []>('SELECT count(*) AS n FROM messages')
  // Size-first twins of the page queries: seqs and content lengths only (octet_length reads no overflow page),
  // so a page is cut by bytes before any content is loaded; the rows are then read one by one as they are sent.
  type Sized = { seq: number; bytes: number }
  const historySizes = db.query<Sized, [string, number, number]>(
    'SELECT seq, octet_length(content) AS bytes FROM messages WHERE conversation_id = +? AND seq < ? ORDER BY seq DESC LIMIT +?',
  )
  const visibleAllSizes = db.query<Sized, [string, number, number]>(
    `SELECT m.seq, octet_length(m.content) AS bytes
     FROM participants p JOIN messages m ON m.conversation_id = p.conversation_id
     WHERE p.partner_id = +?1 AND p.left_at IS NULL AND m.seq > ?2 AND m.from_id != ?1
     ORDER BY m.seq LIMIT +?3`,
  )
  const visibleOneSizes = db.query<Sized, [string, number, number, string]>(
    'SELECT seq, octet_length(content) AS bytes FROM messages WHERE conversation_id = +?4 AND seq > ?2 AND from_id != ?1 ORDER BY seq LIMIT +?3',
  )
  const unreadSizes = db.query<Sized & { conversation_id: string }, [string, number, string | null]>(
    `SELECT m.seq, octet_length(m.content) AS bytes, m.conversation_id
     FROM participants p
     LEFT JOIN read_positions r ON r.partner_id = p.partner_id AND r.conversation_id = p.conversation_id
     JOIN messages m ON m.conversation_id = p.conversation_id AND m.seq > coalesce(r.seq, 0)
     WHERE p.partner_id = +?1 AND p.left_at IS NULL AND m.from_id != ?1 AND (?3 IS NULL OR p.conversation_id = +?3)
     ORDER BY m.seq LIMIT +?2`,
  )
  const one = db.query<Message, [number]>(`SELECT ${COLUMNS} FROM messages WHERE seq = +?`)

  return {
    apply(event: Envelope): void {
      switch (event.type) {
        case 'MessageSent': {
          const d = event.data
          insert.run(event.seq, d.conversationId, d.fromId, d.content, event.at, d.idempotencyKey ?? null, d.fromKind ?? 'agent')
          return
        }
        case 'ReadPositionAdvanced':
          advance.run(event.data.partnerId, event.data.conversationId, event.data.seq)
          return
        default:
          return
      }
    },
    /** The latest `limit` messages of a conversation with `seq < before`, oldest first. */
    history: (conversationId: string, limit: number, before = Number.MAX_SAFE_INTEGER): Message[] =>
      history.all(conversationId, before, limit),
    /** Messages the partner can see with `seq > after`, not its own, oldest first. */
    visibleAfter: (partnerId: string, after: number, limit: number, conversationId?: string): Message[] =>
      conversationId === undefined
        ? visibleAll.all(partnerId, after, limit)
        : visibleOne.all(partnerId, after, limit, conversationId),
    /** Messages past the partner's read positions, not its own, oldest first. */
    unread: (partnerId: string, limit: number, conversationId?: string): Message[] =>
      unread.all(partnerId, limit, conversationId ?? null),
    byIdempotencyKey: (fromId: string, key: string) => byKey.get(fromId, key),
    /** Per conversation of the partner: the newest message seq at or below `cursor`, and its read position. */
    ackable: (partnerId: string, cursor: number, conversationId?: string) =>
      ackable.all(partnerId, cursor, conversationId ?? null),
    count: (): number => count.get()!.n,
    /** `history`, cut at `maxBytes`: the seqs of the latest messages that fit, oldest first. */
    historyPage(conversationId: string, limit: number, before = Number.MAX_SAFE_INTEGER, maxBytes: number): SeqPage {
      const page = fitByBytes(historySizes.all(conversationId, before, limit), maxBytes)
      return { seqs: page.seqs.reverse(), truncated: page.truncated }
    },
    /** `visibleAfter`, cut at `maxBytes`. */
    visiblePage(partnerId: string, after: number, limit: number, maxBytes: number, conversationId?: string): SeqPage {
      const rows =
        conversationId === undefined
          ? visibleAllSizes.all(partnerId, after, limit)
          : visibleOneSizes.all(partnerId, after, limit, conversationId)
      return fitByBytes(rows, maxBytes)
    },
    /** What `unread` would return, as seqs, sizes and conversations only (the caller filters, then cuts by bytes). */
    unreadSized: (partnerId: string, limit: number, conversationId?: string) =>
      unreadSizes.all(partnerId, limit, conversationId ?? null),
    /** One stored message (messages are never changed, so a seq read later gives the same row). */
    bySeq: (seq: number): Message | null => one.get(seq),
  }
}
export type Messages = ReturnType<typeof createMessages>
