// Schema versions and connection settings shared by the log and the views (kept apart from the log itself).
import type { Database } from 'bun:sqlite'

/**
 * Runs the steps of `steps` that `part` has not had yet, each in its own transaction. The version is read
 * inside that (immediate) transaction: two processes opening a new file at once must not both run a step.
 */
export function migrate(db: Database, part: string, steps: string[]): void {
  db.run('CREATE TABLE IF NOT EXISTS duo_schema (part TEXT PRIMARY KEY, version INTEGER NOT NULL)')
  const version = db.query<{ version: number }, [string]>('SELECT version FROM duo_schema WHERE part = +?')
  const record = db.query('INSERT INTO duo_schema (part, version) VALUES (?, ?) ON CONFLICT (part) DO UPDATE SET version = excluded.version')
  const step = db.transaction((): boolean => {
    const from = version.get(part)?.version ?? 0
    if (from > steps.length) throw new Error(`the database's ${part} schema (v${from}) is newer than this program (v${steps.length})`)
    if (from === steps.length) return false
    db.run(steps[from]!)
    record.run(part, from + 1)
    return true
  })
  while (step.immediate()) {}
}

/** Sets the pragmas a writer needs: WAL, the chosen sync level, a busy timeout for readers in other processes. */
export function configureWriter(db: Database, sync: 'full' | 'normal' = 'full'): void {
  // The timeout first: switching a new file to WAL takes a lock that another process may hold right now.
  db.run('PRAGMA busy_timeout = 5000')
  db.run('PRAGMA journal_mode = WAL')
  db.run(`PRAGMA synchronous = ${sync === 'full' ? 'FULL' : 'NORMAL'}`)
}
