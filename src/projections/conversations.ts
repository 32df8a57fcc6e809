// Read model: conversations (direct and group), their membership, names, archived state, the loop guard's count and pause, and the direct-pair index.
import type { Database } from 'bun:sqlite'
import { pairOf } from '../events/decide.ts'
import type { Envelope } from '../events/schema.ts'
import { keysSum } from './messages.ts'
import { rememberedReads } from './remembered.ts'

export const MIGRATIONS = [
  `CREATE TABLE conversations (
     id TEXT PRIMARY KEY,
     type TEXT NOT NULL,
     name TEXT,
     created_by TEXT NOT NULL,
     created_at TEXT NOT NULL,
     is_archived INTEGER NOT NULL DEFAULT 0,
     last_message_seq INTEGER
   );
   CREATE TABLE participants (
     conversation_id TEXT NOT NULL,
     partner_id TEXT NOT NULL,
     joined_at TEXT NOT NULL,
     left_at TEXT,
     PRIMARY KEY (conversation_id, partner_id)
   );
   CREATE INDEX participants_by_partner ON participants (partner_id, conversation_id);
   CREATE TABLE direct_pairs (
     low TEXT NOT NULL,
     high TEXT NOT NULL,
     conversation_id TEXT NOT NULL,
     PRIMARY KEY (low, high)
   );`,
  // The loop guard's count. Logs from before it hold no pauses or resumes: the count is the messages since
  // the last human one (the views migrate after the messages table, which this reads).
  `ALTER TABLE conversations ADD COLUMN hops INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE conversations ADD COLUMN is_paused INTEGER NOT NULL DEFAULT 0;
   UPDATE conversations SET hops = (
     SELECT count(*) FROM messages m
     WHERE m.conversation_id = conversations.id AND m.seq > coalesce(
       (SELECT max(h.seq) FROM messages h WHERE h.conversation_id = conversations.id AND h.from_kind = 'human'), 0));`,
  // Who paused it when a person did (null: the loop guard, or not paused).
  `ALTER TABLE conversations ADD COLUMN paused_by TEXT`,
  // The messages view keeps its keys by conversation apart now (see messages.ts): its old index goes here, after
  // the step above that reads by it on an older file (the views migrate messages first, then conversations).
  `DROP INDEX IF EXISTS messages_by_conversation`,
]
export const TABLES = { conversations: 'id', participants: 'conversation_id, partner_id', direct_pairs: 'low, high' }

export type ConversationRow = {
  id: string
  type: 'direct' | 'group'
  name: string | null
  created_by: string
  created_at: string
  is_archived: number
  last_message_seq: number | null
  /** Agent messages in a row since the last human message or resume (the loop guard's count). */
  hops: number
  is_paused: number
  /** `operator` or `human` when a person paused it; null for the loop guard (or when not paused). */
  paused_by: 'operator' | 'human' | null
}


/** The events that change who is a current member of a conversation. */
const CHANGES_MEMBERS = new Set(['ConversationCreated', 'ParticipantLeft', 'ParticipantsAdded'])

export function createConversations(db: Database) {
  const insert = db.query(
    'INSERT INTO conversations (id, type, name, created_by, created_at) VALUES (?, ?, ?, ?, ?)',
  )
  const join = db.query('INSERT INTO participants (conversation_id, partner_id, joined_at) VALUES (?, ?, ?)')
  const pair = db.query('INSERT INTO direct_pairs (low, high, conversation_id) VALUES (?, ?, ?)')
  const leave = db.query('UPDATE participants SET left_at = ? WHERE conversation_id = +? AND partner_id = +?')
  const archive = db.query('UPDATE conversations SET is_archived = 1 WHERE id = +?')
  const touch = db.query(
    'UPDATE conversations SET last_message_seq = ?1, hops = CASE WHEN ?2 THEN 0 ELSE hops + 1 END WHERE id = +?3',
  )
  const rejoin = db.query(
    `INSERT INTO participants (conversation_id, partner_id, joined_at) VALUES (?1, ?2, ?3)
     ON CONFLICT (conversation_id, partner_id) DO UPDATE SET joined_at = ?3, left_at = NULL`,
  )
  const rename = db.query('UPDATE conversations SET name = ? WHERE id = +?')
  const pause = db.query('UPDATE conversations SET is_paused = 1, paused_by = ? WHERE id = +?')
  const resume = db.query('UPDATE conversations SET is_paused = 0, paused_by = NULL, hops = 0 WHERE id = +?')
  const groupCount = db.query<{ n: number }, [string]>(
    `SELECT count(*) AS n FROM participants p JOIN conversations c ON c.id = p.conversation_id
     WHERE p.partner_id = +? AND p.left_at IS NULL AND c.type = 'group'`,
  )
  const ofPartner = db.query<{ id: string; type: 'direct' | 'group'; is_archived: number; members: number }, [string]>(
    `SELECT c.id, c.type, c.is_archived,
       (SELECT count(*) FROM participants q WHERE q.conversation_id = c.id AND q.left_at IS NULL) AS members
     FROM participants p JOIN conversations c ON c.id = p.conversation_id
     WHERE p.partner_id = +? AND p.left_at IS NULL ORDER BY c.id`,
  )
  const one = db.query<ConversationRow, [string]>('SELECT * FROM conversations WHERE id = +?')
  const members = db.query<{ partner_id: string }, [string]>(
    'SELECT partner_id FROM participants WHERE conversation_id = +? AND left_at IS NULL ORDER BY joined_at, partner_id',
  )
  // Unordered: the hot paths (talk's recipients, wake-ups) need the set, and the ORDER BY's sort cost more than the rest of a talk's reads.
  const memberIds = db.query<{ partner_id: string }, [string]>(
    'SELECT partner_id FROM participants WHERE conversation_id = +? AND left_at IS NULL',
  )
  const isMember = db.query<{ one: number }, [string, string]>(
    'SELECT 1 AS one FROM participants WHERE conversation_id = +? AND partner_id = +? AND left_at IS NULL',
  )
  const direct = db.query<{ conversation_id: string }, [string, string]>(
    'SELECT conversation_id FROM direct_pairs WHERE low = +? AND high = +?',
  )
  const forPartner = db.query<ConversationRow & { unread_count: number; read_seq: number }, [string]>(
    `SELECT c.*,
       coalesce(r.seq, 0) AS read_seq,
       ${keysSum((keys) => `SELECT count(*) FROM ${keys} k WHERE k.conversation_id = c.id AND k.seq > coalesce(r.seq, 0) AND k.from_id != p.partner_id`)} AS unread_count
     FROM participants p
     JOIN conversations c ON c.id = p.conversation_id
     LEFT JOIN read_positions r ON r.partner_id = p.partner_id AND r.conversation_id = c.id
     WHERE p.partner_id = +? AND p.left_at IS NULL
     ORDER BY coalesce(c.last_message_seq, 0) DESC, c.created_at DESC, c.id`,
  )
  const membersWithNames = db.query<{ id: string; name: string }, [string]>(
    `SELECT p.partner_id AS id, coalesce(pa.name, p.partner_id) AS name
     FROM participants p LEFT JOIN partners pa ON pa.id = p.partner_id
     WHERE p.conversation_id = +? AND p.left_at IS NULL ORDER BY p.joined_at, p.partner_id`,
  )
  // Ids hold no ",", so the members' list survives group_concat.
  const everyOne = db.query<ConversationRow & { message_count: number; members: string | null }, [number]>(
    `SELECT c.*,
       ${keysSum((keys) => `SELECT count(*) FROM ${keys} k WHERE k.conversation_id = c.id`)} AS message_count,
       (SELECT group_concat(p.partner_id, ',') FROM participants p WHERE p.conversation_id = c.id AND p.left_at IS NULL) AS members
     FROM conversations c
     ORDER BY coalesce(c.last_message_seq, 0) DESC, c.created_at DESC, c.id LIMIT +?`,
  )

  // Every talk reads its conversation's members (its recipients, then the hub for whom to wake), and they
  // change only with the events in CHANGES_MEMBERS: so they are remembered (see rememberedReads).
  const currentMembers = rememberedReads((id): readonly string[] => Object.freeze(memberIds.all(id).map((r) => r.partner_id)))
  // A direct pair's conversation is set once, when it is created, and never changes: every direct talk looks it up.
  const directPairs = rememberedReads((low: string, high: string) => direct.get(low, high)?.conversation_id ?? null)

  return {
    apply(event: Envelope): void {
      if (CHANGES_MEMBERS.has(event.type)) currentMembers.forget((event.data as { conversationId: string }).conversationId)
      switch (event.type) {
        case 'ConversationCreated': {
          const d = event.data
          insert.run(d.conversationId, d.kind, d.name, d.createdBy, event.at)
          for (const id of d.participants) join.run(d.conversationId, id, event.at)
          if (d.kind === 'direct' && d.participants.length === 2) {
            const [low, high] = pairOf(d.participants[0]!, d.participants[1]!)
            pair.run(low, high, d.conversationId)
            directPairs.forget(low, high)
          }
          return
        }
        case 'ParticipantLeft':
          leave.run(event.at, event.data.conversationId, event.data.partnerId)
          return
        case 'ConversationArchived':
          archive.run(event.data.conversationId)
          return
        case 'MessageSent':
          touch.run(event.seq, event.data.fromKind === 'human' ? 1 : 0, event.data.conversationId)
          return
        case 'ParticipantsAdded':
          for (const id of event.data.partnerIds) rejoin.run(event.data.conversationId, id, event.at)
          return
        case 'ConversationRenamed':
          rename.run(event.data.name, event.data.conversationId)
          return
        case 'ConversationPaused':
          pause.run(event.data.pausedBy ?? null, event.data.conversationId)
          return
        case 'ConversationResumed':
          resume.run(event.data.conversationId)
          return
        default:
          return
      }
    },
    get: (id: string): ConversationRow | null => one.get(id),
    /** Current (not departed) members, in joining order. */
    members: (id: string): string[] => members.all(id).map((r) => r.partner_id),
    /** Current members in no particular order: the cheap lookup for talk and wake-ups (remembered, read-only). */
    memberIds: (id: string): readonly string[] => currentMembers.get(id)!,
    /** The write transaction ended (committed or rolled back): conversations it changed may be remembered again. */
    settled(): void {
      currentMembers.settled()
      directPairs.settled()
    },
    isMember: (id: string, partnerId: string): boolean => isMember.get(id, partnerId) !== null,
    membersWithNames: (id: string) => membersWithNames.all(id),
    /** The direct conversation between two partners, found by its members, never by parsing an id. */
    directBetween(a: string, b: string): string | null {
      const [low, high] = pairOf(a, b)
      return directPairs.get(low, high)
    },
    /** Groups the partner is a current member of (the bound of `maxGroupsPerPartner`). */
    groupCount: (partnerId: string): number => groupCount.get(partnerId)!.n,
    /** Every conversation the partner is a current member of, with its current member count. */
    conversationsOf: (partnerId: string) => ofPartner.all(partnerId),
    /** The partner's conversations with unread counts (from read positions), most recently active first. */
    forPartner: (partnerId: string) => forPartner.all(partnerId),
    /** Every conversation (the operator's view), most recently active first, with its message count and current members. */
    everyOne: (limit: number) =>
      everyOne.all(limit).map(({ members, ...c }) => ({ ...c, participants: members ? members.split(',') : [] })),
  }
}
export type Conversations = ReturnType<typeof createConversations>
