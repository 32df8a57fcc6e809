// The append-only event log in bun:sqlite: hash-chained appends with group commit, cursor reads, commit listeners.
import type { Database, Statement } from 'bun:sqlite'
import { migrate } from './migrate.ts'
import { fitByBytes, type SeqPage } from './pages.ts'
import { runInSavepoints, type Tentative } from './savepoints.ts'
import { asStorageError } from './storage.ts'
import { DuoEvent, type Envelope } from './schema.ts'

export const GENESIS_HASH = '0'.repeat(64)
const BATCH_MAX = 2000
const ROW = 'seq, type, at, data, hash'
// octet_length reads a row's length from its header, not its overflow pages: sizing a page costs no content read.
const SIZE = 'seq, octet_length(data) AS bytes'

/** The columns a stored event is hashed over, in order. The stored text is the canonical content. */
export function chainHash(prevHash: string, seq: number, type: string, at: string, data: string): string {
  // The static hash skips a hasher object per event: a third faster, which audit feels over a million events.
  return Bun.CryptoHasher.hash('sha256', `${prevHash}\n${seq}\n${type}\n${at}\n${data}`, 'hex') as string
}

export type EventRow = { seq: number; type: string; at: string; data: string; hash: string }

/** Which subject columns an event is filed under, for `/events` filters (audit checks them too). */
export function subjects(event: DuoEvent): { conversation: string | null; partner: string | null } {
  const d = event.data as Record<string, unknown>
  const conversation = typeof d.conversationId === 'string' ? d.conversationId : null
  const partner = [d.partnerId, d.fromId, d.createdBy].find((v) => typeof v === 'string') as string | undefined
  return { conversation, partner: partner ?? null }
}

export type EventFilter = { type?: string; conversation?: string; partner?: string }

/** Applied to each appended event inside the append's transaction (projections). */
export type Projector = (event: Envelope) => void

export type EventLogOptions = {
  now?: () => Date
  /** Called for each appended event, in seq order, inside the transaction (before the commit). */
  projectors?: Projector[]
  /** Events examined per read filtered by conversation or partner (default `SCAN_WINDOW`; tests lower it). */
  scanWindow?: number
  /**
   * Runs before and after each batch's commit and throws a StorageError when the storage is not fit to
   * write (the file deleted or replaced, see store.ts): before, nothing is written; after, the batch's
   * callers are refused, so nothing counts as acknowledged that is not in the file at the path.
   */
  guard?: (moment: 'before' | 'after') => void
  /** Called once each write transaction has ended, committed or rolled back (the views forget what it marked). */
  settled?: () => void
}

export type EventLog = ReturnType<typeof openEventLog>

export const MIGRATIONS: string[] = [
  `CREATE TABLE events (
     seq INTEGER PRIMARY KEY,
     type TEXT NOT NULL,
     at TEXT NOT NULL,
     data TEXT NOT NULL,
     hash TEXT NOT NULL,
     conversation_id TEXT,
     partner_id TEXT
   );
   CREATE INDEX events_by_type ON events (type, seq);
   CREATE INDEX events_by_conversation ON events (conversation_id, seq) WHERE conversation_id IS NOT NULL;
   CREATE INDEX events_by_partner ON events (partner_id, seq) WHERE partner_id IS NOT NULL;
   CREATE TRIGGER events_refuse_update BEFORE UPDATE ON events
     BEGIN SELECT RAISE(ABORT, 'events are immutable: UPDATE refused'); END;
   CREATE TRIGGER events_refuse_delete BEFORE DELETE ON events
     BEGIN SELECT RAISE(ABORT, 'events are immutable: DELETE refused'); END;`,
  // The indexes by conversation and by partner dirtied one leaf page each per conversation and per partner
  // in every group commit: about a third of the commit's page writes under concurrent talk. `/events`
  // filters on those columns now scan a bounded window of seqs instead (see `page`); `type` stays indexed.
  `DROP INDEX IF EXISTS events_by_conversation;
   DROP INDEX IF EXISTS events_by_partner;`,
  // The log's identity (see `brokerId` in openEventLog), drawn once when the log is created (or first migrated).
  `CREATE TABLE log_identity (broker_id TEXT NOT NULL);
   INSERT INTO log_identity (broker_id) VALUES (lower(hex(randomblob(16))));`,
]

/** At most this many events are examined per `/events` call filtered by conversation or partner (unindexed). */
export const SCAN_WINDOW = 20_000

/** Brings the log's own tables to the latest schema version (kept in `duo_schema`, apart from the views'). */
export function migrateLog(db: Database): void {
  migrate(db, 'log', MIGRATIONS)
}


export function parseRow(row: EventRow): Envelope {
  const event = DuoEvent.parse({ type: row.type, data: JSON.parse(row.data) })
  return { seq: row.seq, type: event.type, at: row.at, data: event.data, hash: row.hash } as Envelope
}

/**
 * A fast row → envelope without schema validation. Rows only ever come from `append`, whose events are
 * typed and were validated at the edge, and triggers forbid editing them; `audit` re-validates every row.
 */
export function rowToEnvelope(row: EventRow): Envelope {
  return { seq: row.seq, type: row.type, at: row.at, data: JSON.parse(row.data), hash: row.hash } as Envelope
}

/**
 * Opens the log on `db` (already configured and migrated).
 *
 * `transact(fn)` is the only way to write: `fn` runs inside a write transaction, may read the views and
 * call `append`, and its promise resolves only after the transaction is durably committed. Calls that
 * arrive in the same turn of the event loop share one transaction (group commit); each runs in its own
 * savepoint, so one that throws rolls back alone.
 *
 * `brokerId` names this log: drawn at random when the log is created and never changed, so a copy of the
 * log (a backup, an import into another store) keeps it and a new or reset log has another. Partners key
 * their token and cursor by it (contract section 2); any other store of the log must offer it too.
 */
export function openEventLog(db: Database, options: EventLogOptions = {}) {
  const now = options.now ?? (() => new Date())
  const projectors = options.projectors ?? []
  const guard = options.guard ?? (() => {})
  const settled = options.settled ?? (() => {})
  const scanWindow = options.scanWindow ?? SCAN_WINDOW
  const insert = db.query(
    'INSERT INTO events (seq, type, at, data, hash, conversation_id, partner_id) VALUES (?, ?, ?, ?, ?, ?, ?)',
  )
  const lastRow = db.query<{ seq: number; hash: string }, []>('SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1')
  const one = db.query<EventRow, [number]>(`SELECT ${ROW} FROM events WHERE seq = +?`)
  const filtered = new Map<string, Statement<EventRow, (string | number)[]>>()

  const brokerId = db.query<{ broker_id: string }, []>('SELECT broker_id FROM log_identity').get()!.broker_id
  const last = lastRow.get()
  let lastSeq = last?.seq ?? 0
  let lastHash = last?.hash ?? GENESIS_HASH
  // Tentative head while a transaction is open; becomes lastSeq/lastHash on commit.
  let headSeq = lastSeq
  let headHash = lastHash
  let pendingEnvelopes: Envelope[] = []
  let inTransaction = false

  const commitListeners = new Set<(events: Envelope[]) => void>()
  type Job = { fn: () => unknown; resolve: (v: unknown) => void; reject: (e: unknown) => void }
  let queue: Job[] = []
  let flushScheduled = false

  function append(events: DuoEvent[]): Envelope[] {
    if (!inTransaction) throw new Error('append outside transact()')
    const at = now().toISOString()
    const out: Envelope[] = []
    for (const event of events) {
      const seq = headSeq + 1
      const data = JSON.stringify(event.data)
      const hash = chainHash(headHash, seq, event.type, at, data)
      const s = subjects(event)
      insert.run(seq, event.type, at, data, hash, s.conversation, s.partner)
      const envelope = { seq, type: event.type, at, data: event.data, hash } as Envelope
      for (const project of projectors) project(envelope)
      headSeq = seq
      headHash = hash
      out.push(envelope)
    }
    pendingEnvelopes.push(...out)
    return out
  }

  const tentative: Tentative<{ seq: number; hash: string; count: number }> = {
    mark: () => ({ seq: headSeq, hash: headHash, count: pendingEnvelopes.length }),
    reset(mark) {
      headSeq = mark.seq
      headHash = mark.hash
      pendingEnvelopes.length = mark.count
    },
  }

  const runBatch = db.transaction((jobs: Job[]) => {
    // Another process may have appended since this one's last batch (a tool, a second opener of the file):
    // under the write lock, continue from the stored head rather than a stale cached one.
    const head = lastRow.get()
    if ((head?.seq ?? 0) !== headSeq) {
      lastSeq = headSeq = head?.seq ?? 0
      lastHash = headHash = head?.hash ?? GENESIS_HASH
    }
    return runInSavepoints(db, jobs, tentative)
  })

  function flush(): void {
    flushScheduled = false
    const jobs = queue.length > BATCH_MAX ? queue.splice(0, BATCH_MAX) : queue
    if (jobs === queue) queue = []
    if (queue.length > 0) schedule()
    inTransaction = true
    let outcomes: ReturnType<typeof runBatch>
    try {
      guard('before')
      outcomes = runBatch.immediate(jobs)
      guard('after')
    } catch (error) {
      // The storage failed (disk full, read-only, I/O error, the file gone): the batch's callers are refused, as
      // a StorageError (503) when the storage is at fault. A batch cut by the second guard did reach the open
      // file: the next batch continues from the stored head (see runBatch).
      headSeq = lastSeq
      headHash = lastHash
      pendingEnvelopes = []
      const failure = asStorageError(error) ?? error
      for (const job of jobs) job.reject(failure)
      return
    } finally {
      inTransaction = false
      settled()
    }
    lastSeq = headSeq
    lastHash = headHash
    const committed = pendingEnvelopes
    pendingEnvelopes = []
    if (committed.length > 0) {
      for (const listener of commitListeners) {
        try {
          listener(committed)
        } catch (error) {
          console.error('commit listener failed:', error)
        }
      }
    }
    outcomes.forEach((outcome, i) => (outcome.ok ? jobs[i]!.resolve(outcome.value) : jobs[i]!.reject(outcome.error)))
  }

  function schedule(): void {
    if (flushScheduled) return
    flushScheduled = true
    // setImmediate runs after this turn's I/O callbacks: every request parsed in the same turn joins the batch.
    setImmediate(flush)
  }

  /**
   * Stores events that were sequenced, chained and made durable elsewhere (the shared PostgreSQL log) in one
   * local transaction with the projectors, then tells the commit listeners. Rows at or below the head are
   * already here and skipped; the others must continue the head exactly and chain, or nothing is stored.
   * Never mixed with `transact` on the same log (a replica only ever writes through here).
   */
  function replicate(rows: EventRow[]): Envelope[] {
    if (inTransaction || queue.length > 0) throw new Error('replicate beside transact()')
    const fresh = rows.filter((row) => row.seq > lastSeq)
    if (fresh.length === 0) return []
    const store = db.transaction(() => {
      for (const row of fresh) {
        if (row.seq !== headSeq + 1) throw new Error(`replica: seq ${row.seq} does not follow ${headSeq}`)
        if (chainHash(headHash, row.seq, row.type, row.at, row.data) !== row.hash)
          throw new Error(`replica: the hash of seq ${row.seq} does not chain`)
        const envelope = rowToEnvelope(row)
        const s = subjects(envelope as unknown as DuoEvent)
        insert.run(row.seq, row.type, row.at, row.data, row.hash, s.conversation, s.partner)
        for (const project of projectors) project(envelope)
        headSeq = row.seq
        headHash = row.hash
        pendingEnvelopes.push(envelope)
      }
    })
    try {
      store.immediate()
    } catch (error) {
      headSeq = lastSeq
      headHash = lastHash
      pendingEnvelopes = []
      throw error
    } finally {
      settled()
    }
    lastSeq = headSeq
    lastHash = headHash
    const committed = pendingEnvelopes
    pendingEnvelopes = []
    for (const listener of commitListeners) {
      try {
        listener(committed)
      } catch (error) {
        console.error('commit listener failed:', error)
      }
    }
    return committed
  }

  return {
    replicate,
    /** The hash of the last committed event (the genesis hash for an empty log). */
    lastHash: () => lastHash,
    /** This log's identity, fixed when it was created (see above). */
    brokerId,
    transact<T>(fn: () => T): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        queue.push({ fn, resolve: resolve as (v: unknown) => void, reject })
        schedule()
      })
    },
    /** Appends inside the running `transact` callback; returns the envelopes (seq and hash assigned). */
    append,
    /** The seq of the last committed event (0 for an empty log). */
    lastSeq: () => lastSeq,
    /** Committed events with `seq > after`, oldest first, at most `limit`, optionally filtered (see `page`). */
    readAfter(after: number, limit = 100, filter: EventFilter = {}): Envelope[] {
      return page(after, limit, filter).events
    },
    page,
    seqPage,
    /** The committed event at `seq` (events never change, so reading it later gives the same envelope). */
    eventAt(seq: number): Envelope | null {
      const row = one.get(seq)
      return row ? rowToEnvelope(row) : null
    },
    /** Calls `listener` with each committed batch, after the commit and before any `transact` resolves. */
    onCommit(listener: (events: Envelope[]) => void): () => void {
      commitListeners.add(listener)
      return () => commitListeners.delete(listener)
    },
    /** Resolves once every queued transaction has committed. */
    async drain(): Promise<void> {
      while (queue.length > 0 || flushScheduled) await new Promise((r) => setImmediate(r))
    },
  }

  /**
   * A page of committed events with `seq > after`, oldest first, at most `limit`, and the cursor to ask for
   * the next one. Unfiltered and `type`-only reads use the primary key or the type index. A filter on
   * `conversation` or `partner` (unindexed columns) examines at most `scanWindow` events past `after`: the
   * page may hold fewer than `limit` events, even none, while `next` still advances to the last seq
   * examined, so a reader pages on until `next` reaches the log's last seq.
   */
  function page(after: number, limit = 100, filter: EventFilter = {}): { events: Envelope[]; next: number } {
    const { rows, upto } = select<EventRow>(ROW, after, limit, filter)
    const events = rows.map(rowToEnvelope)
    const next = events.length > 0 && (upto === undefined || events.length === limit) ? events[events.length - 1]!.seq : (upto ?? after)
    return { events, next }
  }

  /**
   * `page`, cut at about `maxBytes` as well (at least one event): the seqs to send, read one by one with
   * `eventAt` as the answer goes out. A page cut by bytes ends at its last seq, so `next` loses nothing.
   */
  function seqPage(after: number, limit: number, filter: EventFilter, maxBytes: number): SeqPage & { next: number } {
    const { rows, upto } = select<{ seq: number; bytes: number }>(SIZE, after, limit, filter)
    const fit = fitByBytes(rows, maxBytes)
    const last = fit.seqs[fit.seqs.length - 1]
    const next = last !== undefined && (upto === undefined || fit.truncated || rows.length === limit) ? last : (upto ?? after)
    return { ...fit, next }
  }

  /** Rows past `after` under `filter`; `upto` is the end of the scanned window when the filter is unindexed. */
  function select<R>(columnsOut: string, after: number, limit: number, filter: EventFilter): { rows: R[]; upto?: number } {
    const columns: Array<[string, string | undefined]> = [
      ['type', filter.type],
      ['conversation_id', filter.conversation],
      ['partner_id', filter.partner],
    ]
    const used = columns.filter(([, value]) => value !== undefined) as Array<[string, string]>
    const bounded = filter.conversation !== undefined || filter.partner !== undefined
    if (!bounded) {
      const rows = cachedFiltered(columnsOut, used.map(([column]) => column), false).all(after, ...used.map(([, value]) => value), limit)
      return { rows: rows as R[] }
    }
    // seqs are gap-free, so the window (after, upto] is exactly the events examined.
    const upto = Math.max(after, Math.min(after + scanWindow, lastSeq))
    const rows = cachedFiltered(columnsOut, used.map(([column]) => column), true).all(after, upto, ...used.map(([, value]) => value), limit)
    return { rows: rows as R[], upto }
  }

  function cachedFiltered(columnsOut: string, columns: string[], bounded: boolean) {
    const key = `${columnsOut}|${columns.join(',')}${bounded ? ' bounded' : ''}`
    let statement = filtered.get(key)
    if (!statement) {
      const where = columns.map((column) => `AND ${column} = +?`).join(' ')
      statement = db.query<EventRow, (string | number)[]>(
        `SELECT ${columnsOut} FROM events WHERE seq > ? ${bounded ? 'AND seq <= ?' : ''} ${where} ORDER BY seq LIMIT +?`,
      )
      filtered.set(key, statement)
    }
    return statement
  }
}
