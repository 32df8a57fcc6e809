// The shared tables in PostgreSQL (the log, the operator token, presence) and their schema versions.
import { SQL } from 'bun'

/** Whether `DUO_DB` (or a `--db` flag) names a PostgreSQL database rather than an SQLite file. */
export const isPostgresUrl = (value: string): boolean => /^postgres(ql)?:\/\//i.test(value)

/** The URL with any password replaced, for start-up lines and errors. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password) parsed.password = '***'
    return parsed.toString()
  } catch {
    return url.replace(/:[^:@/]*@/, ':***@')
  }
}

/**
 * One connection pool. `synchronous_commit` is set on for these sessions whatever the server's default:
 * an append is answered only once its commit is on disk (contract section 3).
 */
export function connect(url: string, max = 4): SQL {
  return new SQL({ url, max, idleTimeout: 0, connection: { synchronous_commit: 'on', application_name: 'duo' } } as never)
}

/**
 * The log's steps. The database itself keeps the log's promises, whoever writes to it:
 * - a row-level BEFORE INSERT trigger accepts an event only as the successor of the committed head (or of
 *   the row this same statement inserted just before it), with the hash that chains onto it. A second
 *   writer racing for the same seq waits on the primary key and fails when the first commits, so seq N+1
 *   is only ever written by a transaction that already saw N committed: seq is gap-free in commit order,
 *   and no reader can see N+1 before N (the trap of sequences with transactions still in flight).
 * - UPDATE, DELETE and TRUNCATE are refused by triggers.
 * - A statement-level AFTER INSERT trigger sends the new head on the `duo_events` channel; NOTIFY is
 *   delivered at commit, so a broker is only ever woken by durable events.
 * `data` is text, not jsonb: the stored bytes are the canonical content the hash covers.
 */
export const LOG_MIGRATIONS: string[] = [
  `CREATE TABLE events (
     seq bigint PRIMARY KEY CHECK (seq > 0),
     type text NOT NULL,
     at text NOT NULL,
     data text NOT NULL,
     hash text NOT NULL
   );
   CREATE INDEX events_by_type ON events (type, seq);
   CREATE FUNCTION duo_events_follow_head() RETURNS trigger LANGUAGE plpgsql AS $$
   DECLARE
     head_seq bigint;
     head_hash text;
   BEGIN
     SELECT seq, hash INTO head_seq, head_hash FROM events ORDER BY seq DESC LIMIT 1;
     head_seq := coalesce(head_seq, 0);
     head_hash := coalesce(head_hash, repeat('0', 64));
     IF NEW.seq <> head_seq + 1 THEN
       RAISE EXCEPTION 'events: seq % does not follow the head %', NEW.seq, head_seq USING ERRCODE = '40001';
     END IF;
     IF NEW.hash <> encode(sha256(convert_to(head_hash || E'\\n' || NEW.seq || E'\\n' || NEW.type || E'\\n' || NEW.at || E'\\n' || NEW.data, 'UTF8')), 'hex') THEN
       RAISE EXCEPTION 'events: the hash of seq % does not chain onto seq %', NEW.seq, head_seq USING ERRCODE = '23514';
     END IF;
     RETURN NEW;
   END $$;
   CREATE TRIGGER events_follow_head BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION duo_events_follow_head();
   CREATE FUNCTION duo_events_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
   BEGIN
     RAISE EXCEPTION 'events are immutable: % refused', TG_OP;
   END $$;
   CREATE TRIGGER events_refuse_update BEFORE UPDATE OR DELETE ON events FOR EACH ROW EXECUTE FUNCTION duo_events_refuse();
   CREATE TRIGGER events_refuse_truncate BEFORE TRUNCATE ON events FOR EACH STATEMENT EXECUTE FUNCTION duo_events_refuse();
   CREATE FUNCTION duo_events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
   BEGIN
     PERFORM pg_notify('duo_events', (SELECT max(seq) FROM inserted)::text);
     RETURN NULL;
   END $$;
   CREATE TRIGGER events_notify AFTER INSERT ON events REFERENCING NEW TABLE AS inserted
     FOR EACH STATEMENT EXECUTE FUNCTION duo_events_notify();`,
  // The log's identity, as in the SQLite log (`brokerId` in src/events/log.ts): drawn once, shared by every broker.
  `CREATE TABLE log_identity (broker_id text NOT NULL);
   INSERT INTO log_identity (broker_id) VALUES (md5(random()::text || clock_timestamp()::text));`,
]

/** What the brokers share beside the log: the operator token, who listens where (presence), console sign-ins. */
export const SHARED_MIGRATIONS: string[] = [
  `CREATE TABLE duo_operator (id int PRIMARY KEY CHECK (id = 1), token text NOT NULL);
   CREATE TABLE duo_brokers (
     broker_id text PRIMARY KEY,
     seen_at timestamptz NOT NULL,
     listening text[] NOT NULL
   );`,
  // When each partner last made a request through the broker (ms since the epoch), for presence.
  `ALTER TABLE duo_brokers ADD COLUMN active jsonb NOT NULL DEFAULT '{}'::jsonb;`,
  // Console sign-ins (hashes of the cookie values), so that every broker honours them.
  `CREATE TABLE duo_console_sessions (hash text PRIMARY KEY, expires_at bigint NOT NULL);`,
]

/**
 * Runs the steps of `steps` that `part` has not had yet, each in its own transaction under an advisory
 * lock: brokers starting together on a new database run each step once.
 */
export async function migratePg(sql: SQL, part: string, steps: string[]): Promise<void> {
  await sql`CREATE TABLE IF NOT EXISTS duo_schema (part text PRIMARY KEY, version int NOT NULL)`.catch(async (error) => {
    // Two first starts racing on CREATE TABLE IF NOT EXISTS can still collide on the catalog (a unique
    // violation, or the table's row type already existing): the other won.
    const errno = (error as { errno?: string }).errno
    if (errno !== '23505' && errno !== '42710') throw error
  })
  for (;;) {
    const advanced = await sql.begin(async (tx) => {
      await tx`SELECT pg_advisory_xact_lock(hashtext('duo_schema'))`
      const [row] = await tx`SELECT version FROM duo_schema WHERE part = ${part}`
      const from = Number(row?.version ?? 0)
      if (from > steps.length) throw new Error(`the database's ${part} schema (v${from}) is newer than this program (v${steps.length})`)
      if (from === steps.length) return false
      await tx.unsafe(steps[from]!)
      await tx`INSERT INTO duo_schema (part, version) VALUES (${part}, ${from + 1})
               ON CONFLICT (part) DO UPDATE SET version = excluded.version`
      return true
    })
    if (!advanced) return
  }
}

export async function migrateShared(sql: SQL): Promise<void> {
  await migratePg(sql, 'log', LOG_MIGRATIONS)
  await migratePg(sql, 'shared', SHARED_MIGRATIONS)
}
