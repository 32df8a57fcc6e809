// The operator tools on a PostgreSQL log: audit through an SQLite snapshot, replay pages, the database-side checks.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { SQL } from 'bun'
import { connect, redactUrl } from '../pg/schema.ts'
import { missingTriggers, snapshotToSqlite } from '../pg/snapshot.ts'
import { type AuditReport, auditFile } from './audit-core.ts'
import { UsageError } from './args.ts'

/** Connects to `url` and checks that it holds a Duo log; the caller closes the pool. */
export async function openSharedLog(url: string): Promise<SQL> {
  const sql = connect(url, 2)
  try {
    const [row] = await sql`SELECT to_regclass('public.events') AS events, to_regclass('public.duo_schema') AS schema`
    if (!row.events || !row.schema) throw new UsageError(`${redactUrl(url)} holds no Duo event log (no events table)`)
    return sql
  } catch (error) {
    await sql.close()
    if (error instanceof UsageError) throw error
    throw new UsageError(`cannot read ${redactUrl(url)}: ${(error as Error).message}`)
  }
}

/**
 * Audits the shared log: one snapshot of it is written to a scratch SQLite file and audited like any log
 * file (seq, chain, schemas, the views folded from it), and the database is checked for the triggers that
 * keep the log's promises. The views themselves live in each broker's memory, rebuilt from the log at start.
 */
export async function auditShared(url: string): Promise<AuditReport> {
  const sql = await openSharedLog(url)
  const dir = mkdtempSync(join(tmpdir(), 'duo-audit-'))
  try {
    const path = join(dir, 'snapshot.db')
    await snapshotToSqlite(sql, path)
    const report = await auditFile(path)
    const missing = await missingTriggers(sql)
    const extra = [
      { ok: missing.length === 0, label: `the database enforces the log's rules${missing.length ? `: missing ${missing.join(', ')}` : ''}` },
    ]
    return { ...report, path: redactUrl(url), extra, ok: report.ok && missing.length === 0 }
  } finally {
    rmSync(dir, { recursive: true, force: true })
    await sql.close()
  }
}

/**
 * One page of JSON Lines, built by PostgreSQL from the stored text (the same bytes as SQLite's replay):
 * `data` is copied as stored, the other strings quoted by `to_json`.
 */
export async function replayPage(sql: SQL, after: number, limit: number): Promise<Array<[number, string]>> {
  const rows = await sql`SELECT seq, '{"seq":' || seq || ',"type":' || to_json(type)::text || ',"at":' || to_json(at)::text
      || ',"data":' || data || ',"hash":' || to_json(hash)::text || '}' AS line
    FROM events WHERE seq > ${after} ORDER BY seq LIMIT ${limit}`
  return [...rows].map((r: { seq: string; line: string }) => [Number(r.seq), r.line])
}
