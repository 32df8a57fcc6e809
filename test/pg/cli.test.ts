// The operator tools on a PostgreSQL log: copy-log from SQLite (every seq and hash unchanged), audit, replay, backup.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { Database } from 'bun:sqlite'
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chainHash } from '../../src/events/log.ts'
import { openPgStore } from '../../src/pg/store.ts'
import { follow, generateLog, runTool } from '../cli/run.ts'
import { freshDatabase, type TestDatabase } from './helpers.ts'

const EVENTS = 3000
const dir = mkdtempSync(join(tmpdir(), 'duo-pg-cli-'))
const file = join(dir, 'source.db')
let database: TestDatabase

beforeAll(async () => {
  generateLog(file, EVENTS)
  database = await freshDatabase('duo_cli')
})
afterAll(async () => {
  await database.drop()
  rmSync(dir, { recursive: true, force: true })
})

type Row = { seq: number; type: string; at: string; data: string; hash: string }
const sqliteRows = (path: string): Row[] => {
  const db = new Database(path, { readonly: true })
  const rows = db.query<Row, []>('SELECT seq, type, at, data, hash FROM events ORDER BY seq').all()
  db.close()
  return rows
}
const brokerIdOf = (path: string): string => {
  const db = new Database(path, { readonly: true })
  const row = db.query<{ broker_id: string }, []>('SELECT broker_id FROM log_identity').get()!
  db.close()
  return row.broker_id
}
const pgRows = async (): Promise<Row[]> =>
  [...(await database.sql`SELECT seq, type, at, data, hash FROM events ORDER BY seq`)].map((r) => ({ ...r, seq: Number(r.seq) }))

describe('copy-log, then the tools on the copy', () => {
  test('copy-log copies every event with its seq, time, data text and hash unchanged', async () => {
    const run = runTool('src/cli/copy-log.ts', ['--from', file, '--to', database.url])
    expect(run.stderr).toBe('')
    expect(run.exitCode).toBe(0)
    expect(run.stdout).toContain(`${EVENTS} events copied`)
    expect(await pgRows()).toEqual(sqliteRows(file))
    // The same log, so the same broker id: partners keep their tokens when they move over.
    const [shared] = await database.sql`SELECT broker_id FROM log_identity`
    expect(shared.broker_id).toBe(brokerIdOf(file))
  })

  test('audit passes on the copy, and names the shared database', () => {
    const run = runTool('src/cli/audit.ts', ['--db', database.url])
    expect(run.stdout).toContain('audit passed')
    expect(run.stdout).toContain(`${EVENTS} events`)
    expect(run.stdout).toContain("OK   the database enforces the log's rules")
    expect(run.exitCode).toBe(0)
  })

  test('replay of the copy prints the same bytes as replay of the file', () => {
    const fromFile = runTool('src/cli/replay.ts', ['--db', file])
    const fromPg = runTool('src/cli/replay.ts', ['--db', database.url, '--after', '0'])
    expect(fromPg.exitCode).toBe(0)
    expect(fromPg.stdout.split('\n').length).toBe(EVENTS + 1)
    expect(fromPg.stdout).toBe(fromFile.stdout)
  })

  test('copy-log again resumes: nothing is added twice', async () => {
    const run = runTool('src/cli/copy-log.ts', ['--from', file, '--to', database.url])
    expect(run.exitCode).toBe(0)
    expect(run.stdout).toContain(`0 events copied`)
    expect(run.stdout).toContain(`${EVENTS} were there already`)
    expect((await pgRows()).length).toBe(EVENTS)
  })

  test('a broker on the copy continues the same chain', async () => {
    const store = await openPgStore({ url: database.url })
    try {
      expect(store.log.lastSeq()).toBe(EVENTS)
      const result = await store.commands.execute({ kind: 'register', partnerId: 'newcomer' })
      expect(result.ok).toBe(true)
      const rows = await pgRows()
      const last = rows[EVENTS]!
      expect(last.seq).toBe(EVENTS + 1)
      expect(last.hash).toBe(chainHash(rows[EVENTS - 1]!.hash, last.seq, last.type, last.at, last.data))
    } finally {
      await store.close()
    }
  })

  test('replay --follow prints what brokers append to the shared log, and stops cleanly on SIGTERM', async () => {
    const tail = follow('src/cli/replay.ts', ['--follow', '--db', database.url, '--after', String(EVENTS - 1)])
    try {
      await tail.waitFor((line) => line.startsWith(`{"seq":${EVENTS + 1},`))
      const store = await openPgStore({ url: database.url })
      await store.commands.execute({ kind: 'setStatus', partnerId: 'newcomer', message: 'followed' })
      await store.close()
      await tail.waitFor((line) => line.startsWith(`{"seq":${EVENTS + 2},`), 5000)
      tail.proc.kill('SIGTERM')
      expect(await tail.ended()).toBe(0)
      const lines = tail.lines.filter((l) => l !== '').map((l) => JSON.parse(l))
      expect(lines.map((e) => e.seq)).toEqual([EVENTS, EVENTS + 1, EVENTS + 2])
      expect(lines[2]).toMatchObject({ type: 'PartnerStatusChanged', data: { message: 'followed' } })
    } finally {
      tail.proc.kill('SIGKILL')
    }
  })

  test('backup writes the shared log to an SQLite file that audits clean and holds the same events', async () => {
    const out = join(dir, 'backup.db')
    const run = runTool('src/cli/backup.ts', ['--db', database.url, '--out', out])
    expect(run.exitCode).toBe(0)
    expect(run.stdout).toContain(`${EVENTS + 2} events copied`)
    expect(sqliteRows(out)).toEqual(await pgRows())
    const audit = runTool('src/cli/audit.ts', ['--db', out])
    expect(audit.stdout).toContain('audit passed')
    expect(brokerIdOf(out)).toBe(brokerIdOf(file))
    expect(statSync(out).mode & 0o777).toBe(0o600)
  })

  test('copy-log refuses a database that holds another log, and changes nothing', async () => {
    const other = join(dir, 'other.db')
    generateLog(other, 50)
    const before = (await pgRows()).length
    const run = runTool('src/cli/copy-log.ts', ['--from', other, '--to', database.url])
    expect(run.exitCode).toBe(2)
    expect(run.stderr).toContain('not the beginning of this file')
    expect((await pgRows()).length).toBe(before)
  })

  test('audit fails, naming the event, when a superuser edits the log behind the triggers', async () => {
    await database.sql.unsafe('ALTER TABLE events DISABLE TRIGGER events_refuse_update')
    await database.sql`UPDATE events SET data = ${'{"partnerId":"mallory","name":"mallory","projectPath":null}'} WHERE seq = 1`
    const run = runTool('src/cli/audit.ts', ['--db', database.url])
    expect(run.exitCode).toBe(1)
    expect(run.stdout).toMatch(/FAIL hash chain intact: first at seq 1 /)
    expect(run.stdout).toMatch(/FAIL the database enforces the log's rules: missing events_refuse_update/)
    expect(run.stdout).toContain('audit FAILED')
  })

  test('the tools name a database that holds no log in one line, exit 2', async () => {
    const empty = await freshDatabase('duo_empty')
    try {
      const run = runTool('src/cli/audit.ts', ['--db', empty.url])
      expect(run.exitCode).toBe(2)
      expect(run.stderr.trim()).toMatch(/^audit: .* holds no Duo event log \(no events table\)$/)
    } finally {
      await empty.drop()
    }
  })
})
