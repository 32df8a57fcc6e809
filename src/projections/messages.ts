// Read model: messages per conversation (history paging, cursor reads, unread) and read positions.
import type { Database } from 'bun:sqlite'
import { fitByBytes, type SeqPage } from '../events/pages.ts'
import type { Envelope } from '../events/schema.ts'

/**
 * Message keys by conversation, apart from the messages. An index on (conversation, seq) takes a new entry in the
 * last leaf of that conversation's run: a group commit of talk in 32 conversations dirtied 32 leaves of it, 40
 * of the 54 WAL pages the commit wrote (`bun run bench -- --only store`). So the keys go first to a small table,
 * `message_keys_recent`, whose few pages hold every conversation's newest keys, and move to `message_keys` in one
 * sweep at every event whose seq is a multiple of RECENT_KEYS_SPAN. Every key of `message_keys` is then older
 * than every key of `message_keys_recent`, and which table holds a key follows from the events alone (audit
 * rebuilds both). `from_id` rides along, so filtering out one's own messages needs no message read.
 */
export const RECENT_KEYS_SPAN = 512

const KEYS = (table: string) => `CREATE TABLE ${table} (
     conversation_id TEXT NOT NULL,
     seq INTEGER NOT NULL,
     from_id TEXT NOT NULL,
     PRIMARY KEY (conversation_id, seq)
   ) WITHOUT ROWID`

/** The view's steps; `lastSeq` is the SQL for the log's last seq, where the keys of an older file are split. */
export const migrations = (lastSeq: string, swept = `${lastSeq} / ${RECENT_KEYS_SPAN} * ${RECENT_KEYS_SPAN}`) => [
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
  // The keys of a file written before them, split where the events would have put them. The old index goes in a
  // later step of the conversations view, which still reads by it first (see conversations.ts).
  `${KEYS('message_keys')};
   ${KEYS('message_keys_recent')};
   CREATE TABLE message_keys_swept (upto INTEGER NOT NULL);
   INSERT INTO message_keys_swept (upto) VALUES (${swept});
   INSERT INTO message_keys (conversation_id, seq, from_id) SELECT conversation_id, seq, from_id FROM messages WHERE seq <= ${swept};
   INSERT INTO message_keys_recent (conversation_id, seq, from_id) SELECT conversation_id, seq, from_id FROM messages WHERE seq > ${swept};`,
]

/**
 * The seqs of `arm(keys)` over both key tables, in seq order (`DESC` for the newest first), at most `limit`.
 * `arm` selects `seq` from the table it is given (aliased `k`) with its own conditions; each arm stops at `limit`
 * on its own index order, so neither reads more than the answer needs whatever the conversation's length. The
 * arms are read older table first (newer first for `DESC`): every key of one is on the same side of every key
 * of the other, so the first `limit` rows of the two in a row are the answer, with no merge.
 */
export function keySeqs(arm: (keys: string) => string, limit: string, order: 'ASC' | 'DESC' = 'ASC'): string {
  const one = (table: string) => `SELECT seq FROM (${arm(table)} ORDER BY k.seq ${order} LIMIT ${limit})`
  const [first, second] = order === 'ASC' ? ['message_keys', 'message_keys_recent'] : ['message_keys_recent', 'message_keys']
  return `SELECT seq FROM (${one(first)} UNION ALL ${one(second)}) LIMIT ${limit}`
}

/**
 * For an arm over `keys` that reads past the cursor `cursor` (SQL): message_keys holds nothing after its last
 * sweep, so for a cursor at or past it that arm is skipped (a condition on no row, which SQLite tests once,
 * before the loop). A long-poll's or a stream's cursor is nearly always there.
 */
export const pastSweep = (keys: string, cursor: string): string =>
  keys === 'message_keys' ? ` AND ${cursor} < (SELECT upto FROM message_keys_swept)` : ''

/** `expr(keys)` (a scalar subquery over one key table aliased `k`) summed over both tables. */
export const keysSum = (expr: (keys: string) => string): string => `(${expr('message_keys')}) + (${expr('message_keys_recent')})`

/** The newest key seq matching `where` (over `k`): the recent table's when it has one, they are all newer. */
export const newestKey = (where: string): string =>
  `coalesce((SELECT max(k.seq) FROM message_keys_recent k WHERE ${where}), (SELECT max(k.seq) FROM message_keys k WHERE ${where}))`

export const TABLES = {
  messages: 'seq',
  read_positions: 'partner_id, conversation_id',
  message_keys: 'conversation_id, seq',
  message_keys_recent: 'conversation_id, seq',
  message_keys_swept: 'upto',
}

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
  const insertKey = db.query('INSERT INTO message_keys_recent (conversation_id, seq, from_id) VALUES (?, ?, ?)')
  const sweepKeys = db.query('INSERT INTO message_keys (conversation_id, seq, from_id) SELECT conversation_id, seq, from_id FROM message_keys_recent')
  const clearRecentKeys = db.query('DELETE FROM message_keys_recent')
  const recordSweep = db.query('UPDATE message_keys_swept SET upto = ?')
  const M = 'm.seq AS id, m.seq, m.conversation_id, m.from_id, m.from_kind, m.content, m.created_at'
  // The arms: one conversation's keys before a seq (history), after one (a cursor), or those of every current
  // conversation of a partner after a cursor or past its read positions; never the partner's own messages.
  const before = (keys: string) => `SELECT k.seq FROM ${keys} k WHERE k.conversation_id = +?1 AND k.seq < ?2`
  const afterIn = (keys: string) =>
    `SELECT k.seq FROM ${keys} k WHERE k.conversation_id = +?4 AND k.seq > ?2 AND k.from_id != ?1${pastSweep(keys, '?2')}`
  const afterAll = (keys: string) =>
    `SELECT k.seq FROM participants p JOIN ${keys} k ON k.conversation_id = p.conversation_id
     WHERE p.partner_id = +?1 AND p.left_at IS NULL AND k.seq > ?2 AND k.from_id != ?1${pastSweep(keys, '?2')}`
  const pastRead = (keys: string) =>
    `SELECT k.seq FROM participants p
     LEFT JOIN read_positions r ON r.partner_id = p.partner_id AND r.conversation_id = p.conversation_id
     JOIN ${keys} k ON k.conversation_id = p.conversation_id AND k.seq > coalesce(r.seq, 0)
     WHERE p.partner_id = +?1 AND p.left_at IS NULL AND k.from_id != ?1 AND (?3 IS NULL OR p.conversation_id = +?3)`
  const history = db.query<Message, [string, number, number]>(
    `SELECT ${M} FROM messages m WHERE m.seq IN (${keySeqs(before, '+?3', 'DESC')}) ORDER BY m.seq`,
  )
  const visibleAll = db.query<Message, [string, number, number]>(
    `SELECT ${M} FROM messages m WHERE m.seq IN (${keySeqs(afterAll, '+?3')}) ORDER BY m.seq`,
  )
  const visibleOne = db.query<Message, [string, number, number, string]>(
    `SELECT ${M} FROM messages m WHERE m.seq IN (${keySeqs(afterIn, '+?3')}) ORDER BY m.seq`,
  )
  const unread = db.query<Message, [string, number, string | null]>(
    `SELECT ${M} FROM messages m WHERE m.seq IN (${keySeqs(pastRead, '+?2')}) ORDER BY m.seq`,
  )
  const byKey = db.query<{ seq: number; conversation_id: string }, [string, string]>(
    'SELECT seq, conversation_id FROM messages WHERE from_id = +? AND idempotency_key = +?',
  )
  const ackable = db.query<{ conversation_id: string; upto: number | null; read_seq: number }, [string, number, string | null]>(
    `SELECT p.conversation_id,
       ${newestKey('k.conversation_id = p.conversation_id AND k.seq <= ?2')} AS upto,
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
    `SELECT m.seq, octet_length(m.content) AS bytes FROM messages m WHERE m.seq IN (${keySeqs(before, '+?3', 'DESC')}) ORDER BY m.seq DESC`,
  )
  const visibleAllSizes = db.query<Sized, [string, number, number]>(
    `SELECT m.seq, octet_length(m.content) AS bytes FROM messages m WHERE m.seq IN (${keySeqs(afterAll, '+?3')}) ORDER BY m.seq`,
  )
  const visibleOneSizes = db.query<Sized, [string, number, number, string]>(
    `SELECT m.seq, octet_length(m.content) AS bytes FROM messages m WHERE m.seq IN (${keySeqs(afterIn, '+?3')}) ORDER BY m.seq`,
  )
  const unreadSizes = db.query<Sized & { conversation_id: string }, [string, number, string | null]>(
    `SELECT m.seq, octet_length(m.content) AS bytes, m.conversation_id FROM messages m WHERE m.seq IN (${keySeqs(pastRead, '+?2')}) ORDER BY m.seq`,
  )
  const one = db.query<Message, [number]>(`SELECT ${COLUMNS} FROM messages WHERE seq = +?`)

  return {
    apply(event: Envelope): void {
      switch (event.type) {
        case 'MessageSent': {
          const d = event.data
          insert.run(event.seq, d.conversationId, d.fromId, d.content, event.at, d.idempotencyKey ?? null, d.fromKind ?? 'agent')
          insertKey.run(d.conversationId, event.seq, d.fromId)
          break
        }
        case 'ReadPositionAdvanced':
          advance.run(event.data.partnerId, event.data.conversationId, event.data.seq)
          break
      }
      // Whatever the event: seqs are gap-free and each passes here once, so the recent keys never span more.
      if (event.seq % RECENT_KEYS_SPAN === 0) {
        sweepKeys.run()
        clearRecentKeys.run()
        recordSweep.run(event.seq)
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
