// Moving a log between PostgreSQL and SQLite files, every seq and hash unchanged (copy-log, backup, audit, replay).
import type { SQL } from 'bun'
import { Database } from 'bun:sqlite'
import { migrateLog, rowToEnvelope, subjects, type EventRow } from '../events/log.ts'
import { configureWriter } from '../events/migrate.ts'
import type { DuoEvent } from '../events/schema.ts'
import { openViews } from '../projections/index.ts'

const PAGE_ROWS = 5000

const rowOf = (r: { seq: unknown; type: string; at: string; data: string; hash: string }): EventRow => ({
  seq: Number(r.seq),
  type: r.type,
  at: r.at,
  data: r.data,
  hash: r.hash,
})

/** Pages of the shared log after `after`, oldest first, read in one snapshot (a broker appending meanwhile tears nothing). */
export async function* pgPages(sql: SQL, after = 0, upto = Number.MAX_SAFE_INTEGER): AsyncGenerator<EventRow[]> {
  const reserved = await sql.reserve()
  try {
    await reserved`BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY`
    let cursor = after
    for (;;) {
      const rows = await reserved`SELECT seq, type, at, data, hash FROM events WHERE seq > ${cursor} AND seq <= ${upto}
        ORDER BY seq LIMIT ${PAGE_ROWS}`
      if (rows.length === 0) break
      const page = [...rows].map(rowOf)
      yield page
      cursor = page[page.length - 1]!.seq
      if (rows.length < PAGE_ROWS) break
    }
    await reserved`COMMIT`
  } finally {
    reserved.release()
  }
}

/**
 * Writes the shared log into a new SQLite file at `path` as it is stored (no check on the way, so `audit`
 * of the file reports any fault where it is), with the views projected from it: a file a broker can open
 * with `DUO_DB=path`, and that `audit` checks like any other. Returns the number of events copied.
 */
export async function snapshotToSqlite(sql: SQL, path: string): Promise<number> {
  const db = new Database(path, { create: true, strict: true })
  try {
    configureWriter(db, 'normal')
    migrateLog(db)
    // The copy is the same log: it keeps the log's broker id (partners key their tokens by it).
    const [identity] = await sql`SELECT broker_id FROM log_identity`.catch(() => [])
    if (identity) db.query('UPDATE log_identity SET broker_id = ?').run(identity.broker_id)
    const views = openViews(db)
    const insert = db.query('INSERT INTO events (seq, type, at, data, hash, conversation_id, partner_id) VALUES (?, ?, ?, ?, ?, ?, ?)')
    let copied = 0
    const store = db.transaction((rows: EventRow[]) => {
      for (const row of rows) {
        const envelope = rowToEnvelope(row)
        const s = subjects(envelope as unknown as DuoEvent)
        insert.run(row.seq, row.type, row.at, row.data, row.hash, s.conversation, s.partner)
        // A row that no projection understands (a damaged log) is left for audit to name.
        try {
          views.project(envelope)
        } catch {}
      }
    })
    for await (const page of pgPages(sql)) {
      store.immediate(page)
      copied += page.length
    }
    db.run('PRAGMA wal_checkpoint(TRUNCATE)')
    return copied
  } finally {
    db.close()
  }
}

/**
 * Appends the SQLite log `source` to the shared log, every seq, `at`, data text and hash as stored. The
 * shared log must be empty or hold exactly the beginning of `source` (a copy interrupted earlier resumes):
 * the database's own trigger accepts each row only as the successor of the head with the hash that
 * chains onto it, so a copy that succeeds is the same chain. Returns how many events were added and how
 * many were there already.
 */
export async function copySqliteToPg(source: Database, sql: SQL): Promise<{ added: number; present: number }> {
  const [head] = await sql`SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1`
  const present = head ? Number(head.seq) : 0
  if (head) {
    const mine = source.query<{ hash: string }, [number]>('SELECT hash FROM events WHERE seq = ?').get(present)
    if (mine?.hash !== head.hash)
      throw new Error(`the PostgreSQL log already holds ${present} events that are not the beginning of this file; copy into an empty database`)
  }
  const page = source.query<EventRow, [number, number]>('SELECT seq, type, at, data, hash FROM events WHERE seq > ? ORDER BY seq LIMIT ?')
  let cursor = present
  let added = 0
  for (;;) {
    const rows = page.all(cursor, 1000)
    if (rows.length === 0) break
    await sql`INSERT INTO events (seq, type, at, data, hash)
      SELECT * FROM unnest(${rows.map((r) => r.seq)}::bigint[], ${rows.map((r) => r.type)}::text[],
        ${rows.map((r) => r.at)}::text[], ${rows.map((r) => r.data)}::text[], ${rows.map((r) => r.hash)}::text[])
        AS u(seq, type, at, data, hash) ORDER BY seq`
    added += rows.length
    cursor = rows[rows.length - 1]!.seq
  }
  return { added, present }
}

/** The database-side guarantees of the shared log, by trigger name: missing ones are audit findings. */
export const REQUIRED_TRIGGERS = {
  events_follow_head: 'seq must follow the head and chain (commit order, gap-free)',
  events_refuse_update: 'UPDATE and DELETE refused',
  events_refuse_truncate: 'TRUNCATE refused',
  events_notify: 'brokers notified at commit',
} as const

export async function missingTriggers(sql: SQL): Promise<string[]> {
  const rows = await sql`SELECT tgname FROM pg_trigger WHERE tgrelid = 'events'::regclass AND tgenabled <> 'D'`
  const present = new Set([...rows].map((r: { tgname: string }) => r.tgname))
  return Object.entries(REQUIRED_TRIGGERS).filter(([name]) => !present.has(name)).map(([name, what]) => `${name} (${what})`)
}
