// Command-line plumbing shared by the CLI tools: flags, the database path, and one-line failures (exit 2).
import type { Database } from 'bun:sqlite'
import { existsSync, statSync } from 'node:fs'
import { DEFAULT_DB_PATH, openReadOnly } from '../store.ts'

/** A mistake of the caller's (bad flag, missing file): reported as one line, never a stack trace. */
export class UsageError extends Error {}

type FlagSpec = Record<string, 'string' | 'boolean'>
type FlagValues<S extends FlagSpec> = { [K in keyof S]?: S[K] extends 'string' ? string : boolean }

/** Parses `--name value`, `--name=value` and boolean `--name`; anything else is a UsageError. */
export function parseFlags<S extends FlagSpec>(argv: string[], spec: S): FlagValues<S> {
  const values: Record<string, string | boolean> = {}
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    const match = /^--([a-z][a-z-]*)(?:=(.*))?$/s.exec(arg)
    const name = match?.[1]
    const kind = name !== undefined ? spec[name] : undefined
    if (!match || !name || !kind) throw new UsageError(`unknown argument ${JSON.stringify(arg)}`)
    if (kind === 'boolean') {
      if (match[2] !== undefined) throw new UsageError(`--${name} takes no value`)
      values[name] = true
      continue
    }
    const value = match[2] ?? argv[++i]
    if (value === undefined || (match[2] === undefined && value.startsWith('--')))
      throw new UsageError(`--${name} needs a value`)
    values[name] = value
  }
  return values as FlagValues<S>
}

/** A non-negative integer flag (a seq or a count); `undefined` stays undefined. */
export function integerFlag(name: string, value: string | undefined, min = 0): number | undefined {
  if (value === undefined) return undefined
  const n = /^\d+$/.test(value) ? Number(value) : Number.NaN
  if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`--${name} must be an integer ≥ ${min}, not ${JSON.stringify(value)}`)
  return n
}

/** The database path: the flag, else `DUO_DB`, else `data/duo.db` in the Duo repository (as the broker's). */
export function dbPathFrom(flag: string | undefined): string {
  return flag ?? (process.env.DUO_DB?.trim() || DEFAULT_DB_PATH)
}

/** Refuses paths that name no existing database file; reading must never create one. */
export function requireExistingFile(path: string): void {
  if (path === ':memory:' || path === '') throw new UsageError(`${JSON.stringify(path)} is not a database file`)
  if (!existsSync(path)) throw new UsageError(`no database at ${path}`)
  if (!statSync(path).isFile()) throw new UsageError(`${path} is not a file`)
}

/** Runs a CLI's main; a UsageError (or a database that cannot be read) becomes one stderr line and exit 2. */
export async function runCli(tool: string, main: () => Promise<number>): Promise<never> {
  let code: number
  try {
    code = await main()
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error)
    console.error(`${tool}: ${message.split('\n')[0]}`)
    code = error instanceof UsageError || isSqliteError(error) ? 2 : 1
  }
  process.exit(code)
}

const isSqliteError = (error: unknown): boolean => error instanceof Error && error.name === 'SQLiteError'

/** Opens an existing event log read-only (beside a running broker); refuses files that hold no Duo log. */
export function openLogFile(path: string): Database {
  requireExistingFile(path)
  let db: Database
  let table: unknown
  try {
    db = openReadOnly(path)
    table = db.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'events'").get()
  } catch (error) {
    throw new UsageError(`cannot read ${path}: ${(error as Error).message}`)
  }
  if (!table) {
    db.close()
    throw new UsageError(`${path} holds no Duo event log (no events table)`)
  }
  return db
}
