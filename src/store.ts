// Composition of the log and its views on one SQLite file: what the broker, the tools and the tests open.
import { Database } from 'bun:sqlite'
import { createCommands } from './events/commands.ts'
import { type Rules, rulesWith } from './events/decide.ts'
import { migrateLog, openEventLog } from './events/log.ts'
import { configureWriter } from './events/migrate.ts'
import { decisionView, openViews } from './projections/index.ts'

export type StoreOptions = {
  path: string
  sync?: 'full' | 'normal'
  now?: () => Date
  rules?: Partial<Rules>
  listening?: (partnerId: string) => boolean
}

export function openStore(options: StoreOptions) {
  const db = new Database(options.path, { create: true, strict: true })
  if (options.path !== ':memory:') configureWriter(db, options.sync ?? 'full')
  migrateLog(db)
  const views = openViews(db)
  const log = openEventLog(db, { now: options.now, projectors: [views.project] })
  const rules = rulesWith(options.rules)
  const view = decisionView(views, log.lastSeq)
  const commands = createCommands({ log, view, rules, listening: (id) => options.listening?.(id) ?? false })
  return {
    db,
    log,
    views,
    commands,
    rules,
    /** Waits for queued commits, then closes the database (checkpointing the WAL). */
    async close(): Promise<void> {
      await log.drain()
      db.close()
    },
  }
}
export type Store = ReturnType<typeof openStore>

/** Opens an existing log file for reading only, alongside a running broker (WAL readers do not block it). */
export function openReadOnly(path: string): Database {
  const db = new Database(path, { readonly: true, strict: true })
  db.run('PRAGMA busy_timeout = 5000')
  return db
}
