// The store on PostgreSQL: the shared log, this broker's replica (log and views in SQLite, memory or a file), the commands.
import type { SQL } from 'bun'
import { Database } from 'bun:sqlite'
import { mkdirSync, rmSync } from 'node:fs'
import { dirname } from 'node:path'
import { createCommands } from '../events/commands.ts'
import { type Rules, rulesWith } from '../events/decide.ts'
import { migrateLog, openEventLog } from '../events/log.ts'
import { configureWriter } from '../events/migrate.ts'
import { newToken } from '../http/auth.ts'
import { decisionView, openViews } from '../projections/index.ts'
import { openPgEventLog } from './log.ts'
import { connect, migrateShared } from './schema.ts'

/** A notification can be lost (a dropped connection): the replica also polls, so a loss delays at most this. */
const POLL_MS = 1000

export type PgStoreOptions = {
  url: string
  now?: () => Date
  rules?: Partial<Rules>
  listening?: (partnerId: string) => boolean
  /** Poll interval besides LISTEN (default `POLL_MS`). */
  pollMs?: number
  /**
   * A file for the replica (DUO_REPLICA), kept across restarts: a broker then starts from where its replica
   * ends instead of replaying the whole log, and holds it on disk rather than in memory. Default: memory.
   */
  replicaPath?: string
}

/**
 * Opens the shared log at `url` (migrating it), builds this broker's replica from it, and follows it:
 * LISTEN on `duo_events` wakes the replica at once after another broker's commit, and a poll catches what
 * a lost notification would have missed. Resolves once the replica holds the whole log.
 */
export async function openPgStore(options: PgStoreOptions) {
  const sql = connect(options.url)
  try {
    await migrateShared(sql)
  } catch (error) {
    await sql.close()
    throw error
  }
  const replica = await openReplica(sql, options.replicaPath, options.now)
  const { db, views, local } = replica
  const [identity] = await sql`SELECT broker_id FROM log_identity`
  const log = openPgEventLog({ sql, local, db, projectors: [views.project], now: options.now, brokerId: identity.broker_id as string, settled: views.settled })

  let failing = false
  let closing = false
  const follow = () =>
    log.catchUp().then(
      () => {
        if (failing) console.error('duo broker: following the shared log again')
        failing = false
      },
      (error) => {
        if (closing) return
        if (!failing) console.error(`duo broker: cannot follow the shared log: ${(error as Error).message}`)
        failing = true
      },
    )
  const subscription = await sql.listen(
    'duo_events',
    (payload) => {
      if (Number(payload) > log.lastSeq()) void follow()
    },
    // Also after every reconnect: notifications sent while the connection was down are gone.
    () => void follow(),
  )
  await log.catchUp()
  const poll = setInterval(() => void follow(), options.pollMs ?? POLL_MS)

  const rules = rulesWith(options.rules)
  const view = decisionView(views, log.lastSeq)
  const commands = createCommands({ log, view, rules, listening: (id) => options.listening?.(id) ?? false })
  return {
    db,
    log,
    views,
    commands,
    rules,
    sql,
    /** Nothing of the shared log is a local file to check (see openStore's for SQLite). */
    unwritable: (): string | null => null,
    async close(): Promise<void> {
      closing = true
      await log.drain()
      clearInterval(poll)
      log.close()
      await subscription.unlisten().catch(() => {})
      await sql.close()
      db.close()
    },
  }
}
export type PgStore = Awaited<ReturnType<typeof openPgStore>>

function openLocal(path: string, now?: () => Date) {
  const db = new Database(path, { create: true, strict: true })
  // A cache of the shared log: it needs no durability of its own, a replica that lost its last commits
  // in a crash just catches up again.
  if (path !== ':memory:') configureWriter(db, 'normal')
  migrateLog(db)
  const views = openViews(db)
  const local = openEventLog(db, { now, projectors: [views.project], settled: views.settled })
  return { db, views, local }
}

/**
 * The broker's replica: in memory (rebuilt from the log at every start), or in the file `path`. A file is
 * used only if its last event is the shared log's event at that seq, hash for hash; otherwise (another
 * database, a log restored from a backup) it is replaced by a new one.
 */
async function openReplica(sql: SQL, path: string | undefined, now?: () => Date) {
  if (!path) return openLocal(':memory:', now)
  mkdirSync(dirname(path), { recursive: true })
  const replica = openLocal(path, now)
  const head = replica.local.lastSeq()
  if (head === 0) return replica
  const [row] = await sql`SELECT hash FROM events WHERE seq = ${head}`
  if (row?.hash === replica.local.lastHash()) return replica
  replica.db.close()
  for (const suffix of ['', '-wal', '-shm']) rmSync(`${path}${suffix}`, { force: true })
  console.error(`duo broker: the replica ${path} is not a copy of this shared log; building a new one`)
  return openLocal(path, now)
}

/** The operator token: DUO_ADMIN_TOKEN, else the one kept in the shared database (the first broker creates it). */
export async function loadSharedAdminToken(sql: SQL, configured?: string): Promise<string> {
  if (configured) return configured
  await sql`INSERT INTO duo_operator (id, token) VALUES (1, ${newToken('duo_admin_')}) ON CONFLICT (id) DO NOTHING`
  const [row] = await sql`SELECT token FROM duo_operator WHERE id = 1`
  return row.token as string
}
