// Composition of the log and its views on one SQLite file: what the broker, the tools and the tests open.
import { Database } from 'bun:sqlite'
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, renameSync, rmSync, statSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { createCommands } from './events/commands.ts'
import { type Rules, rulesWith } from './events/decide.ts'
import { migrateLog, openEventLog } from './events/log.ts'
import { configureWriter } from './events/migrate.ts'
import type { Envelope } from './events/schema.ts'
import { fileIdentity, StorageError, unwritable } from './events/storage.ts'
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
  /** Called after the store reopened on a restored file (see openStore), e.g. to take the file's lock again. */
  onReopen?: () => void
}

/** One opening of the log file: the database, log, views and commands over it. */
function openOnce(options: StoreOptions, guard?: (moment: 'before' | 'after') => void) {
  const db = new Database(options.path, { create: true, strict: true })
  if (options.path !== ':memory:') configureWriter(db, options.sync ?? 'full')
  migrateLog(db)
  const views = openViews(db)
  const log = openEventLog(db, { now: options.now, projectors: [views.project], guard, settled: views.settled })
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
    /** Why the storage cannot be touched safely right now, or null (a file checks itself, see openStore). */
    unwritable: (): string | null => null,
  }
}

/**
 * Opens the log at `options.path` (`:memory:` allowed) with its views and commands.
 *
 * A file is watched: before and after every commit, and every second, the file at the path must still be
 * the one opened. When it is not (deleted, or replaced by another), writes fail with StorageError (503)
 * and nothing they carried counts as acknowledged. A deleted file is restored from the open connection,
 * which still holds every committed event (`VACUUM INTO` a copy, renamed into place), and the store
 * reopens on it by itself; a replaced one is not ours to overwrite, so writes wait until it is moved back
 * or removed. The object returned stays the same across a reopen: every property reads the current opening.
 */
export function openStore(options: StoreOptions) {
  if (options.path === ':memory:') return openOnce(options)
  const path = options.path
  let identity: string | null = null
  /**
   * The guard of one opening: it may write only while the file it opened is at the path, and (before a commit)
   * while that file can be written. After a commit only where the file is matters: what the commit wrote is in it.
   */
  const check = (mine: string | null, moment: 'before' | 'after') => {
    const readOnly = moment === 'before' ? unwritable(path) : null
    if (readOnly) throw new StorageError(readOnly)
    const seen = fileIdentity(path)
    if (seen === mine) return
    // An opening replaced by a reopen has nothing to recover: its callers just retry on the new one.
    if (mine !== identity) throw new StorageError(`the database ${path} was reopened; retry`)
    recover()
    throw new StorageError(
      seen === null
        ? `the database file ${path} was deleted while the broker ran; it is being restored from the open connection`
        : `the database file ${path} was replaced by another file while the broker ran; move the original back or remove the other one`,
    )
  }
  /** Opens the file and notes which file that is (the open creates it when missing). */
  const openGuarded = () => {
    let mine: string | null = null
    const opening = openOnce(options, (moment) => check(mine, moment))
    identity = mine = fileIdentity(path)
    return opening
  }
  let current = openGuarded()
  const listeners: Array<(events: Envelope[]) => void> = []

  let recovering = false
  let lastProblem = ''
  function recover(): void {
    if (recovering) return
    recovering = true
    const attempt = () => {
      try {
        if (restored()) {
          recovering = false
          lastProblem = ''
          return
        }
      } catch (error) {
        const problem = (error as Error).message
        if (problem !== lastProblem) console.error(`duo broker: cannot restore ${path} yet: ${problem}`)
        lastProblem = problem
      }
      setTimeout(attempt, 1000).unref()
    }
    setTimeout(attempt, 0).unref()
  }

  /** True once the file at the path is the open one again (moved back, or restored and reopened). */
  function restored(): boolean {
    const seen = fileIdentity(path)
    if (seen === identity) return true
    if (seen !== null) return false
    mkdirSync(dirname(path), { recursive: true, mode: DIR_MODE })
    const copy = `${path}.restoring`
    rmSync(copy, { force: true })
    ownerOnlyFile(copy)
    // No transaction is open between two turns of the event loop (commits are synchronous): the copy is whole.
    current.db.run('VACUUM INTO ?', [copy])
    const events = current.log.lastSeq()
    current.db.close()
    // WAL and SHM names left by the old file: their content is in the copy, and the new file must not read them.
    for (const side of [`${path}-wal`, `${path}-shm`]) rmSync(side, { force: true })
    renameSync(copy, path)
    current = openGuarded()
    for (const listener of listeners) current.log.onCommit(listener)
    console.error(`duo broker: ${path} was deleted while the broker ran; restored from the open connection (${events} events) and reopened`)
    try {
      options.onReopen?.()
    } catch (error) {
      console.error(`duo broker: after reopening ${path}: ${(error as Error).message}`)
    }
    return true
  }

  /** This turn's answer of `unwritable`, or undefined before the first request of the turn asked. */
  let verdict: string | null | undefined
  const watch = setInterval(() => {
    if (!recovering && fileIdentity(path) !== identity) recover()
  }, 1000)
  watch.unref()

  const store = live(() => current, {
    log: live(() => current.log, {
      onCommit(listener: (events: Envelope[]) => void) {
        listeners.push(listener)
        current.log.onCommit(listener)
        return () => {
          listeners.splice(listeners.indexOf(listener), 1)
          // Only the current opening can still call it.
          current.log.onCommit(listener)()
        }
      },
    }),
    async close() {
      clearInterval(watch)
      await current.close()
    },
    /**
     * Why the file cannot be touched safely right now (immutable, read-only), or null: see `unwritable`. Asked
     * before every request, answered once per turn of the event loop (three access() calls): the requests of one
     * turn share the answer, and every commit checks again for itself (see `check`).
     */
    unwritable(): string | null {
      if (verdict === undefined) {
        verdict = unwritable(path)
        setImmediate(() => (verdict = undefined))
      }
      return verdict
    },
  })
  return store
}
export type Store = ReturnType<typeof openStore>

/**
 * A stand-in for the object `current()` returns now: reading a property reads it on the current object, a
 * method called through it runs on the current object, nested objects are stand-ins too (made once each).
 * `overrides` replace properties. The Database is handed out as it is.
 */
function live<T extends object>(current: () => T, overrides: Record<string, unknown> = {}): T {
  const made = new Map<PropertyKey, unknown>()
  return new Proxy({} as T, {
    get(_, prop) {
      if (typeof prop === 'string' && prop in overrides) return overrides[prop]
      const value = Reflect.get(current(), prop)
      if (typeof value === 'function') {
        if (!made.has(prop)) made.set(prop, (...args: unknown[]) => (Reflect.get(current(), prop) as (...a: unknown[]) => unknown).apply(current(), args))
        return made.get(prop)
      }
      if (value !== null && typeof value === 'object' && !(value instanceof Database)) {
        if (!made.has(prop)) made.set(prop, live(() => Reflect.get(current(), prop) as object))
        return made.get(prop)
      }
      return value
    },
  })
}

/** Opens an existing log file for reading only, alongside a running broker (WAL readers do not block it). */
export function openReadOnly(path: string): Database {
  const db = new Database(path, { readonly: true, strict: true })
  db.run('PRAGMA busy_timeout = 5000')
  return db
}
