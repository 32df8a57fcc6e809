// Composition of the log and its views on one SQLite file: what the broker, the tools and the tests open.
import { Database } from 'bun:sqlite'
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, statSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { createCommands } from './events/commands.ts'
import { type Rules, rulesWith } from './events/decide.ts'
import { migrateLog, openEventLog } from './events/log.ts'
import { configureWriter } from './events/migrate.ts'
import { decisionView, openViews } from './projections/index.ts'

/** The default log file: `data/duo.db` in the Duo repository, whatever the working directory (contract section 2). */
export const DEFAULT_DB_PATH = resolve(join(import.meta.dir, '..', 'data', 'duo.db'))

/** Owner only: the log holds every message and token hash (contract section 6). */
export const FILE_MODE = 0o600
export const DIR_MODE = 0o700

/**
 * Creates `path` empty with mode 0600 if it does not exist (SQLite takes an empty file as a new database,
 * and gives its WAL and SHM files the database file's mode), or tightens an existing one to 0600.
 */
export function ownerOnlyFile(path: string): void {
  if (!existsSync(path)) closeSync(openSync(path, 'a', FILE_MODE))
  chmodSync(path, FILE_MODE)
}

/**
 * Prepares a log file's place: its folder created with mode 0700 (an existing one is left as it is: it may
 * be the user's), the file itself and any WAL/SHM left by an earlier run at mode 0600.
 * Returns whether the folder lets others in, for a warning.
 */
export function prepareLogFile(path: string): { folderOpen: boolean } {
  const folder = dirname(resolve(path))
  mkdirSync(folder, { recursive: true, mode: DIR_MODE })
  ownerOnlyFile(path)
  for (const side of [`${path}-wal`, `${path}-shm`]) if (existsSync(side)) chmodSync(side, FILE_MODE)
  return { folderOpen: (statSync(folder).mode & 0o077) !== 0 }
}

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
