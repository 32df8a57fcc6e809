// The event log on PostgreSQL: the shared log is the source of truth; a local SQLite replica holds the views.
import type { SQL } from 'bun'
import type { Database } from 'bun:sqlite'
import { chainHash, type EventLog, type EventRow, type Projector } from '../events/log.ts'
import { type Outcome, runInSavepoints, type Tentative } from '../events/savepoints.ts'
import type { DuoEvent, Envelope } from '../events/schema.ts'

const BATCH_MAX = 2000
const PULL_ROWS = 2000
/** A batch that keeps losing the race for the head (many brokers writing at once) fails after this many tries. */
const MAX_ATTEMPTS = 200

import { StorageError } from '../events/storage.ts'

/** The shared database could not take the write (unreachable, refused): nothing of the batch is stored (one class for both stores). */
export { StorageError }

type Job = { fn: () => unknown; resolve: (v: unknown) => void; reject: (e: unknown) => void }

/** SQLSTATEs that mean "another broker appended first": catch up and decide again. */
const isConflict = (error: unknown): boolean => {
  const code = (error as { errno?: string }).errno
  return code === '23505' || code === '40001'
}

export type PgEventLogOptions = {
  sql: SQL
  /** The broker's replica: an SQLite log (`openEventLog`) over `db`, with the views as its projectors. */
  local: EventLog
  db: Database
  projectors: Projector[]
  now?: () => Date
  /** The shared log's identity (its `log_identity` row), in place of the replica's own. */
  brokerId: string
  /** Called once each local decision transaction has been rolled back (see EventLogOptions.settled). */
  settled?: () => void
}

/**
 * The shared log behind the same interface as the SQLite one. Reads (`page`, `readAfter`, `lastSeq`) and
 * commit listeners are the replica's; `transact` works like this:
 *
 * 1. The batch's jobs decide against the replica's views at its head H, inside a local transaction that
 *    is rolled back afterwards: `append` assigns H+1, H+2, … and chains their hashes, and the projectors
 *    run so that later jobs of the batch see earlier ones.
 * 2. The events go to PostgreSQL in one INSERT (one round trip, committed with synchronous_commit on). Its
 *    trigger accepts them only if H is still the head; if another broker appended first, the replica
 *    catches up and the batch decides again (step 1). A batch that appends nothing asks for the head
 *    instead, so a refusal or a retried idempotent message is also decided at the head.
 * 3. Only then is the replica given the committed rows (`replicate`), which tells the commit listeners,
 *    and the jobs' promises resolve. Events from other brokers reach the replica the same way (`catchUp`).
 *
 * One batch is in flight at a time; calls arriving meanwhile wait for the next one (group commit).
 */
export function openPgEventLog({ sql, local, db, projectors, now = () => new Date(), brokerId, settled = () => {} }: PgEventLogOptions) {
  let queue: Job[] = []
  let running = false
  let scheduled = false
  let closed = false

  let inTransaction = false
  let headSeq = 0
  let headHash = ''
  let pending: EventRow[] = []

  const begin = db.prepare('BEGIN')
  const rollback = db.prepare('ROLLBACK')
  const tentative: Tentative<{ seq: number; hash: string; count: number }> = {
    mark: () => ({ seq: headSeq, hash: headHash, count: pending.length }),
    reset(mark) {
      headSeq = mark.seq
      headHash = mark.hash
      pending.length = mark.count
    },
  }

  function append(events: DuoEvent[]): Envelope[] {
    if (!inTransaction) throw new Error('append outside transact()')
    const at = now().toISOString()
    const out: Envelope[] = []
    for (const event of events) {
      const seq = headSeq + 1
      const data = JSON.stringify(event.data)
      const hash = chainHash(headHash, seq, event.type, at, data)
      const envelope = { seq, type: event.type, at, data: event.data, hash } as Envelope
      for (const project of projectors) project(envelope)
      headSeq = seq
      headHash = hash
      pending.push({ seq, type: event.type, at, data, hash })
      out.push(envelope)
    }
    return out
  }

  /** Step 1: the jobs decided at the replica's head; nothing stays in the replica. */
  function decide(jobs: Job[]): { base: number; outcomes: Outcome[]; rows: EventRow[] } {
    const base = local.lastSeq()
    headSeq = base
    headHash = local.lastHash()
    pending = []
    inTransaction = true
    begin.run()
    let outcomes: Outcome[]
    try {
      outcomes = runInSavepoints(db, jobs, tentative)
    } finally {
      // The replica keeps nothing of the decision (step 1); SQLite may have ended the transaction itself.
      if (db.inTransaction) rollback.run()
      inTransaction = false
      settled()
    }
    return { base, outcomes, rows: pending }
  }

  async function insert(rows: EventRow[]): Promise<void> {
    await sql`INSERT INTO events (seq, type, at, data, hash)
      SELECT * FROM unnest(${rows.map((r) => r.seq)}::bigint[], ${rows.map((r) => r.type)}::text[],
        ${rows.map((r) => r.at)}::text[], ${rows.map((r) => r.data)}::text[], ${rows.map((r) => r.hash)}::text[])
        AS u(seq, type, at, data, hash) ORDER BY seq`
  }

  async function head(): Promise<number> {
    const [row] = await sql`SELECT coalesce(max(seq), 0) AS seq FROM events`
    return Number(row.seq)
  }

  async function runBatch(jobs: Job[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const { base, outcomes, rows } = decide(jobs)
      try {
        if (rows.length > 0) await insert(rows)
        else if ((await head()) !== base) throw Object.assign(new Error('the head moved'), { errno: '40001' })
      } catch (error) {
        // Another broker appended first: catch up and decide again (unless catching up fails too).
        const retry = isConflict(error) && attempt < MAX_ATTEMPTS && !closed && (await catchUp().then(() => true, () => false))
        if (retry) continue
        const failure = new StorageError(`the shared log refused the write: ${(error as Error).message}`)
        for (const job of jobs) job.reject(failure)
        return
      }
      // Committed: the replica takes the rows (unless a pull already brought them) and wakes its listeners.
      local.replicate(rows)
      outcomes.forEach((outcome, i) => (outcome.ok ? jobs[i]!.resolve(outcome.value) : jobs[i]!.reject(outcome.error)))
      return
    }
  }

  async function drainQueue(): Promise<void> {
    if (running) return
    running = true
    try {
      while (queue.length > 0) {
        const jobs = queue.length > BATCH_MAX ? queue.splice(0, BATCH_MAX) : queue
        if (jobs === queue) queue = []
        // A bug must not leave callers waiting forever: whatever runBatch throws fails its jobs.
        await runBatch(jobs).catch((error) => {
          for (const job of jobs) job.reject(error)
        })
      }
    } finally {
      running = false
    }
  }

  let pulling: Promise<void> | null = null
  let pullAgain = false

  /**
   * Brings the replica up to the shared head. Calls made while a pull runs join it and get one more round,
   * so whoever calls sees at least every event committed before the call.
   */
  function catchUp(): Promise<void> {
    pullAgain = true
    if (pulling) return pulling
    pulling = (async () => {
      try {
        while (pullAgain && !closed) {
          pullAgain = false
          for (;;) {
            const rows = await sql`SELECT seq, type, at, data, hash FROM events WHERE seq > ${local.lastSeq()}
              ORDER BY seq LIMIT ${PULL_ROWS}`
            if (rows.length === 0) break
            // A batch of our own may be deciding right now: it runs synchronously, so it never sees half a pull.
            local.replicate(rows.map((r: EventRow) => ({ ...r, seq: Number(r.seq) })))
            if (rows.length < PULL_ROWS) break
          }
        }
      } finally {
        pulling = null
      }
    })()
    return pulling
  }

  return {
    ...local,
    brokerId,
    append,
    /**
     * Runs `fn` (decide and `append`) at the shared head; resolves after its events are committed in
     * PostgreSQL and applied to the replica. Rejects with `StorageError` when the database refuses.
     */
    transact<T>(fn: () => T): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        queue.push({ fn, resolve: resolve as (v: unknown) => void, reject })
        // setImmediate, as in the SQLite log: every request parsed in this turn joins the batch.
        if (!running && !scheduled) {
          scheduled = true
          setImmediate(() => {
            scheduled = false
            void drainQueue()
          })
        }
      })
    },
    catchUp,
    async drain(): Promise<void> {
      while (queue.length > 0 || running || scheduled) await new Promise((r) => setTimeout(r, 1))
    },
    /** Stops pulling; in-flight work finishes. */
    close(): void {
      closed = true
    },
  }
}
export type PgEventLog = ReturnType<typeof openPgEventLog>
