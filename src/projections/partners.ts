// Read model: partners, their kind, settings, token hashes, retirement and last activity (presence is derived from it at read time).
import type { Database } from 'bun:sqlite'
import type { PartnerForRules } from '../events/decide.ts'
import { type Envelope, idSkeleton, idSkeletonSql, type PartnerKind } from '../events/schema.ts'
import { rememberedReads } from './remembered.ts'

export const MIGRATIONS = [
  `CREATE TABLE partners (
     id TEXT PRIMARY KEY,
     name TEXT NOT NULL,
     project_path TEXT,
     status TEXT NOT NULL,
     status_message TEXT,
     notifications_enabled INTEGER NOT NULL,
     token_hash TEXT,
     created_at TEXT NOT NULL,
     last_seen TEXT NOT NULL
   );
   CREATE INDEX partners_by_token ON partners (token_hash) WHERE token_hash IS NOT NULL;`,
  `ALTER TABLE partners ADD COLUMN kind TEXT NOT NULL DEFAULT 'agent'`,
  // Ids unique without regard to case or look-alike letters: found by index, however many partners there are.
  `CREATE INDEX partners_by_folded_id ON partners (id COLLATE NOCASE);
   CREATE INDEX partners_by_skeleton ON partners (${idSkeletonSql('id')});`,
  `ALTER TABLE partners ADD COLUMN retired_at TEXT`,
]
export const TABLES = { partners: 'id' }

export type PartnerRow = {
  id: string
  name: string
  project_path: string | null
  status: 'online' | 'offline'
  status_message: string | null
  notifications_enabled: number
  token_hash: string | null
  created_at: string
  last_seen: string
  kind: PartnerKind
  /** When the operator retired it; null while it is in service. */
  retired_at: string | null
}

/** The events that change a partner as the rules see it; everything else leaves those columns alone. */
const CHANGES_FOR_RULES = new Set(['PartnerRegistered', 'PartnerRetired', 'PartnerWentOffline', 'PartnerTokenReissued'])

export function createPartners(db: Database) {
  const register = db.query(
    `INSERT INTO partners (id, name, project_path, status, status_message, notifications_enabled, token_hash, created_at, last_seen, kind)
     VALUES (?1, ?2, ?3, 'online', NULL, 1, ?4, ?5, ?5, ?6)
     ON CONFLICT (id) DO UPDATE SET name = ?2, project_path = ?3, status = 'online',
       token_hash = coalesce(?4, token_hash), last_seen = ?5, kind = ?6`,
  )
  const offline = db.query(`UPDATE partners SET status = 'offline', last_seen = ? WHERE id = +?`)
  const token = db.query('UPDATE partners SET token_hash = ? WHERE id = +?')
  const status = db.query('UPDATE partners SET status_message = ?, last_seen = ? WHERE id = +?')
  const notifications = db.query('UPDATE partners SET notifications_enabled = ?, last_seen = ? WHERE id = +?')
  const seen = db.query('UPDATE partners SET last_seen = ? WHERE id = +?')
  const retire = db.query('UPDATE partners SET retired_at = ? WHERE id = +?')
  const one = db.query<PartnerRow, [string]>('SELECT * FROM partners WHERE id = +?')
  const presenceOne = db.query<Pick<PartnerRow, 'status' | 'last_seen'>, [string]>('SELECT status, last_seen FROM partners WHERE id = +?')
  const forRules = db.query<Pick<PartnerRow, 'status' | 'token_hash' | 'kind' | 'retired_at' | 'name' | 'project_path'>, [string]>(
    'SELECT status, token_hash, kind, retired_at, name, project_path FROM partners WHERE id = +?',
  )

  // The rules read the sender and the recipient of every talk; those columns change only with the events in
  // CHANGES_FOR_RULES, so their reads are remembered (see rememberedReads). Unknown ids are not remembered.
  const rulesView = rememberedReads((id): PartnerForRules | null => {
    const row = forRules.get(id)
    return row && {
      status: row.status,
      tokenHash: row.token_hash,
      kind: row.kind,
      retired: row.retired_at !== null,
      name: row.name,
      projectPath: row.project_path,
    }
  })
  // Every talk answer names each recipient's reachability, from its status and last activity: remembered too,
  // forgotten by each event that writes either column (a partner's own acts; a recipient that only listens keeps it).
  const presenceView = rememberedReads((id) => presenceOne.get(id))
  const all = db.query<PartnerRow, []>('SELECT * FROM partners WHERE retired_at IS NULL ORDER BY id')
  const pageAfter = db.query<PartnerRow, [string, number]>('SELECT * FROM partners WHERE id > ? AND retired_at IS NULL ORDER BY id LIMIT +?')
  const count = db.query<{ n: number }, []>('SELECT count(*) AS n FROM partners WHERE retired_at IS NULL')
  // Partners are never deleted and an upsert keeps its row's rowid, so the largest rowid is the number ever
  // registered: one index step instead of count(*)'s walk over every row (/health must cost the same at any size).
  const registered = db.query<{ n: number }, []>('SELECT coalesce(max(rowid), 0) AS n FROM partners')
  const retired = db.query<{ n: number }, []>('SELECT count(*) AS n FROM partners WHERE retired_at IS NOT NULL')
  const presence = db.query<Pick<PartnerRow, 'id' | 'status' | 'last_seen'>, []>('SELECT id, status, last_seen FROM partners WHERE retired_at IS NULL')
  // A retired partner's token stops working: it no longer names anyone.
  const byToken = db.query<{ id: string }, [string]>('SELECT id FROM partners WHERE token_hash = +? AND retired_at IS NULL')
  const retiredByToken = db.query<{ id: string }, [string]>(
    'SELECT id FROM partners WHERE token_hash = +? AND retired_at IS NOT NULL LIMIT 1',
  )
  // ids are ASCII, so NOCASE (ASCII-only folding) is the whole of "without regard to case".
  const folded = db.query<{ id: string }, [string]>('SELECT id FROM partners WHERE id = +?1 COLLATE NOCASE AND id != ?1 LIMIT 1')
  const skeleton = db.query<{ id: string }, [string, string]>(
    `SELECT id FROM partners WHERE ${idSkeletonSql('id')} = +?1 AND id != ?2 LIMIT 1`,
  )

  return {
    apply(event: Envelope): void {
      if (CHANGES_FOR_RULES.has(event.type)) rulesView.forget((event.data as { partnerId: string }).partnerId)
      switch (event.type) {
        case 'PartnerRegistered': {
          const d = event.data
          register.run(d.partnerId, d.name, d.projectPath, d.tokenHash ?? null, event.at, d.kind ?? 'agent')
          return presenceView.forget(d.partnerId)
        }
        case 'PartnerRetired':
          retire.run(event.at, event.data.partnerId)
          return
        case 'PartnerWentOffline':
          offline.run(event.at, event.data.partnerId)
          return presenceView.forget(event.data.partnerId)
        case 'PartnerTokenReissued':
          token.run(event.data.tokenHash, event.data.partnerId)
          return
        case 'PartnerStatusChanged':
          status.run(event.data.message, event.at, event.data.partnerId)
          return presenceView.forget(event.data.partnerId)
        case 'NotificationsSwitched':
          notifications.run(event.data.enabled ? 1 : 0, event.at, event.data.partnerId)
          return presenceView.forget(event.data.partnerId)
        case 'MessageSent':
          seen.run(event.at, event.data.fromId)
          return presenceView.forget(event.data.fromId)
        case 'ConversationCreated':
          seen.run(event.at, event.data.createdBy)
          return presenceView.forget(event.data.createdBy)
        case 'ParticipantLeft':
        case 'ReadPositionAdvanced':
        case 'DeliveryAdvanced':
          seen.run(event.at, event.data.partnerId)
          return presenceView.forget(event.data.partnerId)
        default:
          return
      }
    },
    /** Any partner by id, retired ones included (their messages stay in history). */
    get: (id: string): PartnerRow | null => one.get(id),
    /** The partner as the rules read it, remembered between reads. */
    forRules: rulesView.get,
    /** The write transaction ended (committed or rolled back): partners it changed may be remembered again. */
    settled(): void {
      rulesView.settled()
      presenceView.settled()
    },
    /** Only what presence needs (a talk answer names each recipient's reachability): two columns, remembered. */
    presenceOf: presenceView.get,
    /** Partners in service (retired ones left out), by id. */
    all: (): PartnerRow[] => all.all(),
    /** At most `limit` partners with an id after `afterId` (all when empty), by id. */
    page: (afterId: string, limit: number): PartnerRow[] => pageAfter.all(afterId, limit),
    /** Partners in service (a walk over every row: see `registered` for a count in constant time). */
    count: (): number => count.get()!.n,
    /** Partners ever registered, retired ones included, in one index step. */
    registered: (): number => registered.get()!.n,
    /** Retired partners (a walk over every row; read once at start, then followed by events). */
    retired: (): number => retired.get()!.n,
    /** Another partner whose id equals `id` without regard to case, else one with the same `idSkeleton`. */
    like(id: string): { id: string; lookalike: boolean } | null {
      const same = folded.get(id)
      if (same) return { id: same.id, lookalike: false }
      const alike = skeleton.get(idSkeleton(id), id)
      return alike ? { id: alike.id, lookalike: true } : null
    },
    /** Every partner's status and last activity (read once, when the broker starts). */
    presence: () => presence.iterate(),
    /** The partner whose token hashes to `hash`, if any. */
    byTokenHash: (hash: string): string | null => byToken.get(hash)?.id ?? null,
    /** The retired partner whose token hashes to `hash`, if any (to tell it why its token stopped working). */
    retiredByTokenHash: (hash: string): string | null => retiredByToken.get(hash)?.id ?? null,
  }
}
export type Partners = ReturnType<typeof createPartners>
