// `bun run audit`: a good log passes; tampered events and projection rows are found and named.
import { Database } from 'bun:sqlite'
import { afterAll, describe, expect, test } from 'bun:test'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { auditFile, formatReport } from '../../src/cli/audit-core.ts'
import { chainHash, type EventRow, GENESIS_HASH } from '../../src/events/log.ts'
import { openStore } from '../../src/store.ts'
import { generateLog, ROOT, runTool } from './run.ts'

const dir = mkdtempSync(join(tmpdir(), 'duo-audit-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

let made = 0
/** A fresh generated log file of its own for each test, so tampering never leaks between them. */
function freshLog(events = 1500): string {
  const path = join(dir, `log-${++made}.db`)
  generateLog(path, events)
  return path
}

/** Changes the file behind the log's back, as an intruder with raw access would. */
function tamper(path: string, ...statements: string[]): void {
  const raw = new Database(path)
  for (const sql of statements) raw.run(sql)
  raw.close()
}

/** Recomputes every stored hash, as a forger who knows the scheme would, so the chain is intact again. */
function rechain(path: string): void {
  const raw = new Database(path)
  const update = raw.query('UPDATE events SET hash = ? WHERE seq = ?')
  raw.transaction(() => {
    let prev = GENESIS_HASH
    for (const row of raw.query<EventRow, []>('SELECT seq, type, at, data, hash FROM events ORDER BY seq').all()) {
      prev = chainHash(prev, row.seq, row.type, row.at, row.data)
      update.run(prev, row.seq)
    }
  })()
  raw.close()
}

const audit = (...args: string[]) => runTool('src/cli/audit.ts', args)
const aMessageSeq = (path: string, nth = 1) => {
  const db = new Database(path, { readonly: true })
  const row = db.query<{ seq: number }, [number]>("SELECT seq FROM events WHERE type = 'MessageSent' ORDER BY seq LIMIT 1 OFFSET ?").get(nth)!
  db.close()
  return row.seq
}

describe('audit of a good log', () => {
  test('passes every check, prints a summary and exits 0', async () => {
    const path = freshLog()
    const run = audit('--db', path)
    expect(run.exitCode).toBe(0)
    expect(run.stdout).toContain('1500 events (last seq 1500)')
    expect(run.stdout.match(/^ {2}OK {3}/gm)).toHaveLength(4)
    expect(run.stdout.trim().endsWith('audit passed')).toBe(true)
    expect(run.stderr).toBe('')
  })

  test('an empty log passes too', async () => {
    const path = join(dir, 'empty.db')
    await openStore({ path }).close()
    const report = await auditFile(path)
    expect(report).toMatchObject({ ok: true, events: 0, lastSeq: 0, differences: [] })
  })

  test('reads the file without changing it', async () => {
    const path = freshLog(200)
    const before = await Bun.file(path).bytes()
    expect((await auditFile(path)).ok).toBe(true)
    expect(await Bun.file(path).bytes()).toEqual(before)
  })

  test('raises no false alarm while another process keeps appending', async () => {
    const path = freshLog(500)
    const writer = Bun.spawn(
      [process.execPath, '-e', `
        import { openStore } from './src/store.ts'
        const store = openStore({ path: ${JSON.stringify(path)} })
        await store.commands.execute({ kind: 'register', partnerId: 'busy-a' })
        await store.commands.execute({ kind: 'register', partnerId: 'busy-b' })
        console.log('ready')
        for (let i = 0; ; i++) await Promise.all([1, 2, 3].map((n) => store.commands.execute({ kind: 'talk', fromId: 'busy-a', to: 'busy-b', content: 'm' + i + '.' + n })))
      `],
      { cwd: ROOT, stdout: 'pipe', stderr: 'inherit' },
    )
    try {
      const reader = writer.stdout.getReader()
      await Promise.race([reader.read(), Bun.sleep(10_000).then(() => Promise.reject(new Error('writer did not start')))])
      const seen: number[] = []
      for (let i = 0; i < 4; i++) {
        const report = await auditFile(path)
        expect(formatReport(report)).toContain('audit passed')
        seen.push(report.lastSeq)
        await Bun.sleep(50)
      }
      // The writer really was writing in between.
      expect(seen[3]!).toBeGreaterThan(seen[0]!)
    } finally {
      writer.kill('SIGKILL')
      await writer.exited
    }
  })
})

describe('audit of a tampered log', () => {
  test('an edited event: exits non-zero and names its seq', async () => {
    const path = freshLog()
    const seq = aMessageSeq(path, 10)
    tamper(
      path,
      'DROP TRIGGER events_refuse_update',
      `UPDATE events SET data = json_set(data, '$.content', 'forged') WHERE seq = ${seq}`,
    )
    const run = audit('--db', path)
    expect(run.exitCode).toBe(1)
    expect(run.stdout).toMatch(new RegExp(`FAIL hash chain intact: first at seq ${seq} \\(MessageSent\\)`))
    expect(run.stdout).toContain('audit FAILED')
    const report = await auditFile(path)
    expect(report.log.chain).toMatchObject({ seq, type: 'MessageSent', count: 1 })
    expect(report.log.sequence).toBeUndefined()
    expect(report.log.schema).toBeUndefined()
    // The stored view still has the original text; the rebuild has the forged one.
    expect(report.differences.map((d) => d.table)).toEqual(['messages'])
    expect(report.differences[0]!.rebuilt).toEqual([expect.objectContaining({ seq, content: 'forged' })])
  })

  test('a deleted event: names the missing seq', async () => {
    const path = freshLog()
    const seq = aMessageSeq(path, 20)
    tamper(path, 'DROP TRIGGER events_refuse_delete', `DELETE FROM events WHERE seq = ${seq}`)
    const run = audit('--db', path)
    expect(run.exitCode).toBe(1)
    expect(run.stdout).toContain(`FAIL seq gap-free from 1: first at seq ${seq + 1}`)
    expect(run.stdout).toContain(`seq ${seq} missing`)
  })

  test('an event rewritten with its whole chain recomputed: the schema check still names it', async () => {
    const path = freshLog(300)
    const seq = aMessageSeq(path, 3)
    tamper(path, 'DROP TRIGGER events_refuse_update', `UPDATE events SET data = json_remove(data, '$.fromId') WHERE seq = ${seq}`)
    rechain(path)
    const report = await auditFile(path)
    expect(report.ok).toBe(false)
    expect(report.log.chain).toBeUndefined()
    expect(report.log.schema).toMatchObject({ seq, type: 'MessageSent', count: 1 })
    expect(report.log.schema!.problem).toContain('fromId')
  })

  test('a tampered projection row: exits non-zero and shows the stored and rebuilt rows', async () => {
    const path = freshLog()
    const seq = aMessageSeq(path, 5)
    tamper(path, `UPDATE messages SET content = 'forged in the view' WHERE seq = ${seq}`, `UPDATE partners SET status_message = 'sneaky' WHERE id = 'agent-3'`)
    const run = audit('--db', path)
    expect(run.exitCode).toBe(1)
    expect(run.stdout.match(/^ {2}OK {3}/gm)).toHaveLength(3)
    expect(run.stdout).toContain('FAIL projections rebuilt from the log equal the stored ones')
    expect(run.stdout).toContain('table messages differs')
    expect(run.stdout).toContain('forged in the view')
    expect(run.stdout).toContain('table partners differs')
    expect(run.stdout).toContain('sneaky')
    const report = await auditFile(path)
    const messages = report.differences.find((d) => d.table === 'messages')!
    expect(messages.stored).toEqual([expect.objectContaining({ seq, content: 'forged in the view' })])
    expect(messages.rebuilt).toEqual([expect.objectContaining({ seq })])
  })

  test('a projection row that should not exist, and one that is missing', async () => {
    const path = freshLog(300)
    tamper(path, `INSERT INTO direct_pairs (low, high, conversation_id) VALUES ('a', 'b', 'direct_a_b')`, 'DELETE FROM read_positions')
    const report = await auditFile(path)
    const byTable = Object.fromEntries(report.differences.map((d) => [d.table, d]))
    expect(Object.keys(byTable).sort()).toEqual(['direct_pairs', 'read_positions'])
    expect(byTable.direct_pairs!.stored).toEqual([{ low: 'a', high: 'b', conversation_id: 'direct_a_b' }])
    expect(byTable.direct_pairs!.rebuilt).toEqual([])
    expect(byTable.read_positions!.stored).toEqual([])
    expect(byTable.read_positions!.rebuilt.length).toBeGreaterThan(0)
  })
})

describe('audit of a view table rebuilt without its key', () => {
  test('a duplicated row is reported by the row counts', async () => {
    const path = freshLog(200)
    tamper(
      path,
      'CREATE TABLE partners_copy AS SELECT * FROM partners',
      'DROP TABLE partners',
      'ALTER TABLE partners_copy RENAME TO partners',
      "INSERT INTO partners SELECT * FROM partners WHERE id = 'agent-1'",
    )
    const report = await auditFile(path)
    expect(report.ok).toBe(false)
    expect(report.differences).toEqual([expect.objectContaining({ table: 'partners', note: '41 rows stored but 40 rebuilt (duplicate rows)' })])
  })
})

describe('audit arguments', () => {
  test('a missing file or an unknown flag: one line, exit 2, no file created', () => {
    const missing = join(dir, 'nope.db')
    const run = audit('--db', missing)
    expect(run.exitCode).toBe(2)
    expect(run.stderr.trim().split('\n')).toEqual([`audit: no database at ${missing}`])
    expect(existsSync(missing)).toBe(false)
    const bad = audit('--verbose')
    expect(bad.exitCode).toBe(2)
    expect(bad.stderr.trim().split('\n')).toHaveLength(1)
  })
})
