// The audit: the log's own checks plus the projections rebuilt from scratch and compared with the stored ones.
import { Database, constants } from 'bun:sqlite'
import { resolve } from 'node:path'
import type { Envelope } from '../events/schema.ts'
import { type Finding, LOG_CHECKS, type LogCheck } from '../events/verify.ts'
import { openViews, VIEW_TABLES } from '../projections/index.ts'
import { requireExistingFile, UsageError } from './args.ts'
import type { LogChecksJob, LogChecksResult } from './audit-worker.ts'

export type Row = Record<string, unknown>
/** Rows of one projection table that differ, keyed the table's way; both sides hold at most a few rows. */
export type TableDiff = { table: string; key: string[]; stored: Row[]; rebuilt: Row[]; note?: string }

export type AuditReport = {
  path: string
  events: number
  lastSeq: number
  ms: number
  log: Partial<Record<LogCheck, Finding>>
  /** The first event that could not be applied to the rebuilt projections, if any. */
  rebuild?: Finding
  differences: TableDiff[]
  /** Further checks of where the log is kept (a PostgreSQL database's triggers), printed before the verdict. */
  extra?: Array<{ ok: boolean; label: string }>
  ok: boolean
}

/** The file exists but SQLite cannot read it as a database (corrupt, truncated, not SQLite at all). */
export class DamagedLogError extends Error {}

const DAMAGED = new Set(['SQLITE_CORRUPT', 'SQLITE_NOTADB'])

export type AuditOptions = { pageRows?: number; sampleRows?: number }

// bun:sqlite enables URI file names only when asked through the open flags; `mode=ro` then keeps the
// attached live file read-only for this connection, whatever a bug in here might try.
const SCRATCH_FLAGS = constants.SQLITE_OPEN_READWRITE | constants.SQLITE_OPEN_CREATE | constants.SQLITE_OPEN_URI
const uriOf = (path: string) => `file:${resolve(path).replace(/[%?#]/g, (c) => `%${c.charCodeAt(0).toString(16)}`)}?mode=ro`

/**
 * Audits the log file at `path`, read-only. The rebuild and the comparison happen in one read transaction
 * on the file, so a broker appending meanwhile is neither blocked nor a source of false alarms: the events
 * folded and the projections compared are the same snapshot. The log's own checks (hashing, schemas) run
 * meanwhile on a second thread over the same events, 1..lastSeq of that snapshot.
 */
export async function auditFile(path: string, options: AuditOptions = {}): Promise<AuditReport> {
  const started = performance.now()
  const pageRows = options.pageRows ?? 5000
  requireExistingFile(path)
  const db = new Database(':memory:', SCRATCH_FLAGS)
  try {
    const views = openScratchViews(db)
    const liveTables = attachLive(db, path)
    if (!liveTables.has('events')) throw new UsageError(`${path} holds no Duo event log (no events table)`)

    db.run('BEGIN')
    try {
      const lastSeq = db.query<{ seq: number | null }, []>('SELECT max(seq) AS seq FROM live.events').get()?.seq ?? 0
      const logChecks = checkLogInWorker({ path, lastSeq, pageRows })
      // Whatever the rebuild throws, the worker's promise must not be left to reject unobserved.
      logChecks.catch(() => {})
      const rebuild = rebuildViews(db, views.project, pageRows)
      const differences = Object.entries(VIEW_TABLES).flatMap(([table, key]) =>
        compareTable(db, table, key.split(',').map((k) => k.trim()), liveTables, options.sampleRows ?? 3),
      )
      const { checked, findings } = await logChecks
      return {
        path,
        events: checked,
        lastSeq,
        ms: performance.now() - started,
        log: findings,
        rebuild,
        differences,
        ok: LOG_CHECKS.every((check) => !findings[check]) && !rebuild && differences.length === 0,
      }
    } finally {
      db.run('ROLLBACK')
    }
  } finally {
    db.close()
  }
}

/** Attaches the log file read-only as `live`; returns its table names. */
function attachLive(db: Database, path: string): Set<string> {
  try {
    db.query('ATTACH ? AS live').run(uriOf(path))
    db.run('PRAGMA live.busy_timeout = 5000')
    const tables = db.query<{ name: string }, []>("SELECT name FROM live.sqlite_master WHERE type = 'table'").all()
    return new Set(tables.map((r) => r.name))
  } catch (error) {
    if (DAMAGED.has((error as { code?: string }).code ?? '')) throw new DamagedLogError((error as Error).message)
    throw new UsageError(`cannot read ${path}: ${(error as Error).message}`)
  }
}

/** The views' tables in the scratch, minus the plain indexes: they hold no content and made the rebuild 2x slower. */
function openScratchViews(db: Database) {
  // A scratch that is thrown away needs no rollback journal.
  db.run('PRAGMA journal_mode = OFF')
  db.run('PRAGMA temp_store = MEMORY')
  const views = openViews(db)
  // Unique indexes stay: they are rules the rebuilt state must obey, as the stored one did.
  const plain = db
    .query<{ name: string }, []>("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND sql NOT LIKE 'CREATE UNIQUE%'")
    .all()
  for (const { name } of plain) db.run(`DROP INDEX "${name}"`)
  return views
}

/** Folds every event of the snapshot into the scratch views; returns the first event that would not apply. */
function rebuildViews(db: Database, project: (event: Envelope) => void, pageRows: number): Finding | undefined {
  const page = db.query<[number, string, string, string, string], [number, number]>(
    'SELECT seq, type, at, data, hash FROM live.events WHERE seq > ? ORDER BY seq LIMIT +?',
  )
  let failed: Finding | undefined
  for (let cursor = 0; ; ) {
    const rows = page.values(cursor, pageRows) as Array<[number, string, string, string, string]>
    for (const [seq, type, at, data, hash] of rows) {
      try {
        // Validity is the worker's check; here an event only has to apply, as it did in the broker.
        project({ seq, type, at, data: JSON.parse(data), hash } as Envelope)
      } catch (error) {
        if (failed) failed.count++
        else failed = { seq, type, problem: `cannot be applied to the projections: ${(error as Error).message}`, count: 1 }
      }
    }
    if (rows.length < pageRows) return failed
    cursor = rows[rows.length - 1]![0]
  }
}

function checkLogInWorker(job: LogChecksJob): Promise<LogChecksResult> {
  const worker = new Worker(new URL('./audit-worker.ts', import.meta.url).href)
  return new Promise<LogChecksResult>((resolve, reject) => {
    worker.onmessage = (message: MessageEvent<{ ok: true; result: LogChecksResult } | { ok: false; error: string }>) =>
      message.data.ok ? resolve(message.data.result) : reject(new Error(message.data.error))
    worker.onerror = (event) => reject(new Error(`audit worker failed: ${event.message}`))
    worker.postMessage(job)
  }).finally(() => worker.terminate())
}

/** Rows in one table but not the other (EXCEPT, NULLs equal), paired up by key where both have one. */
function compareTable(db: Database, table: string, key: string[], liveTables: Set<string>, sample: number): TableDiff[] {
  if (!liveTables.has(table)) return [{ table, key, stored: [], rebuilt: [], note: 'the stored database has no such table' }]
  const columns = db.query<{ name: string }, []>(`PRAGMA main.table_info(${table})`).all().map((c) => `"${c.name}"`)
  const list = columns.join(', ')
  const only = (a: string, b: string) =>
    db
      .query<Row, [number]>(`SELECT ${list} FROM ${a}.${table} EXCEPT SELECT ${list} FROM ${b}.${table} ORDER BY ${key.join(', ')} LIMIT +?`)
      .all(sample)
  const count = (schema: string) => db.query<{ n: number }, []>(`SELECT count(*) AS n FROM ${schema}.${table}`).get()!.n
  try {
    const rebuilt = only('main', 'live')
    const [rebuiltCount, storedCount] = [count('main'), count('live')]
    // Rows are distinct (every view table has a key): nothing missing and equal counts mean equal tables,
    // which spares the second, as costly, EXCEPT in the common case.
    if (rebuilt.length === 0 && rebuiltCount === storedCount) return []
    const stored = only('live', 'main')
    if (rebuilt.length === 0 && stored.length === 0)
      return [{ table, key, stored, rebuilt, note: `${storedCount} rows stored but ${rebuiltCount} rebuilt (duplicate rows)` }]
    return [{ table, key, stored, rebuilt }]
  } catch (error) {
    // A stored table with other columns than the rebuilt one: the difference is the schema itself.
    return [{ table, key, stored: [], rebuilt: [], note: (error as Error).message }]
  }
}

/** The summary `audit` prints: one line per check, then what is wrong, naming events and rows. */
export function formatReport(report: AuditReport): string {
  const lines = [`audit ${report.path}: ${report.events} events (last seq ${report.lastSeq}) in ${(report.ms / 1000).toFixed(2)} s`]
  const labels: Record<LogCheck, string> = {
    sequence: 'seq gap-free from 1',
    chain: 'hash chain intact',
    schema: 'events valid against their schemas',
  }
  const finding = (f: Finding) =>
    `first at seq ${f.seq} (${f.type}): ${f.problem}${f.count > 1 ? ` (${f.count} events in all)` : ''}`
  for (const check of LOG_CHECKS) {
    const f = report.log[check]
    lines.push(`  ${f ? 'FAIL' : 'OK  '} ${labels[check]}${f ? `: ${finding(f)}` : ''}`)
  }
  const projectionsOk = !report.rebuild && report.differences.length === 0
  lines.push(`  ${projectionsOk ? 'OK  ' : 'FAIL'} projections rebuilt from the log equal the stored ones`)
  if (report.rebuild) lines.push(`       rebuild: ${finding(report.rebuild)}`)
  for (const diff of report.differences) lines.push(...describeDiff(diff))
  for (const check of report.extra ?? []) lines.push(`  ${check.ok ? 'OK  ' : 'FAIL'} ${check.label}`)
  lines.push(report.ok ? 'audit passed' : 'audit FAILED')
  return lines.join('\n')
}

function describeDiff(diff: TableDiff): string[] {
  if (diff.note) return [`       table ${diff.table}: ${diff.note}`]
  const keyOf = (row: Row) => JSON.stringify(diff.key.map((k) => row[k]))
  const rebuiltByKey = new Map(diff.rebuilt.map((row) => [keyOf(row), row]))
  const lines = [`       table ${diff.table} differs (first rows by ${diff.key.join(', ')}):`]
  for (const row of diff.stored) {
    const twin = rebuiltByKey.get(keyOf(row))
    rebuiltByKey.delete(keyOf(row))
    lines.push(`         stored  ${JSON.stringify(row)}`)
    lines.push(twin ? `         rebuilt ${JSON.stringify(twin)}` : '         rebuilt has no such row')
  }
  for (const row of rebuiltByKey.values()) lines.push(`         stored has no row for rebuilt ${JSON.stringify(row)}`)
  return lines
}
