// The log: gap-free seqs, the hash chain, group commit with per-job rollback, immutability, schema versions.
import { Database } from 'bun:sqlite'
import { afterAll, describe, expect, test } from 'bun:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { auditFile } from '../../src/cli/audit-core.ts'
import { chainHash, type EventRow, GENESIS_HASH, MIGRATIONS, migrateLog, openEventLog } from '../../src/events/log.ts'
import { migrate } from '../../src/events/migrate.ts'
import type { DuoEvent, Envelope } from '../../src/events/schema.ts'
import * as conversations from '../../src/projections/conversations.ts'
import * as messages from '../../src/projections/messages.ts'
import * as delivery from '../../src/projections/delivery.ts'
import * as partners from '../../src/projections/partners.ts'
import { openStore } from '../../src/store.ts'

const dir = mkdtempSync(join(tmpdir(), 'duo-log-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const registered = (partnerId: string): DuoEvent => ({
  type: 'PartnerRegistered',
  data: { partnerId, name: partnerId, projectPath: null },
})
const status = (partnerId: string, message: string): DuoEvent => ({ type: 'PartnerStatusChanged', data: { partnerId, message } })

function freshLog() {
  const db = new Database(':memory:', { strict: true })
  migrateLog(db)
  return { db, log: openEventLog(db) }
}
const rowsOf = (db: Database) => db.query<EventRow, []>('SELECT seq, type, at, data, hash FROM events ORDER BY seq').all()

describe('appending', () => {
  test('numbers events from 1 without gaps across transactions', async () => {
    const { log } = freshLog()
    await log.transact(() => log.append([registered('a')]))
    await log.transact(() => log.append([registered('b'), registered('c'), status('a', 'x')]))
    await log.transact(() => log.append([status('b', 'y'), status('c', 'z')]))
    expect(log.lastSeq()).toBe(6)
    expect(log.readAfter(0, 100).map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6])
    expect(log.readAfter(4, 100).map((e) => e.seq)).toEqual([5, 6])
  })

  test('chains each hash over the previous hash and the stored columns, from the genesis hash', async () => {
    const { db, log } = freshLog()
    await log.transact(() => log.append([registered('a'), status('a', 'one')]))
    await log.transact(() => log.append([status('a', 'two')]))
    let prev = GENESIS_HASH
    for (const row of rowsOf(db)) {
      expect(row.hash).toBe(chainHash(prev, row.seq, row.type, row.at, row.data))
      prev = row.hash
    }
    expect(rowsOf(db)[1]!.data).toBe(JSON.stringify({ partnerId: 'a', message: 'one' }))
  })

  test('returns envelopes with seq, time and hash, and transact resolves with the job\'s value', async () => {
    const at = new Date('2026-11-25T10:30:00.123Z')
    const db = new Database(':memory:', { strict: true })
    migrateLog(db)
    const log = openEventLog(db, { now: () => at })
    const appended = await log.transact(() => log.append([registered('a')]))
    expect(appended).toEqual([
      { seq: 1, type: 'PartnerRegistered', at: at.toISOString(), data: registered('a').data, hash: rowsOf(db)[0]!.hash } as Envelope,
    ])
  })

  test('refuses append outside transact', () => {
    const { log } = freshLog()
    expect(() => log.append([registered('a')])).toThrow(/outside transact/)
  })

  test('reads filtered by type, conversation and partner', async () => {
    const store = openStore({ path: ':memory:' })
    await store.commands.execute({ kind: 'register', partnerId: 'alice' })
    await store.commands.execute({ kind: 'register', partnerId: 'bob' })
    await store.commands.execute({ kind: 'talk', fromId: 'alice', to: 'bob', content: 'hi' })
    await store.commands.execute({ kind: 'setStatus', partnerId: 'bob', message: 'busy' })
    expect(store.log.readAfter(0, 100, { type: 'MessageSent' }).map((e) => e.seq)).toEqual([4])
    expect(store.log.readAfter(0, 100, { conversation: 'direct_alice_bob' }).map((e) => e.type)).toEqual([
      'ConversationCreated',
      'MessageSent',
    ])
    expect(store.log.readAfter(0, 100, { partner: 'bob' }).map((e) => e.seq)).toEqual([2, 5])
    await store.close()
  })

  test('a read filtered by conversation or partner examines a bounded window and its next cursor moves on', async () => {
    const db = new Database(':memory:', { strict: true })
    migrateLog(db)
    const windowed = openEventLog(db, { scanWindow: 3 })
    await windowed.transact(() =>
      windowed.append([registered('a'), registered('b'), status('a', '1'), status('b', '2'), status('b', '3'), status('a', '4'), status('b', '5')]),
    )
    // Window (0, 3]: seqs 1..3, of which a's are 1 and 3.
    expect(windowed.page(0, 100, { partner: 'a' })).toMatchObject({ events: [{ seq: 1 }, { seq: 3 }], next: 3 })
    // (3, 6] holds only a's seq 6; a full page ends at its last event rather than the window.
    expect(windowed.page(3, 100, { partner: 'b' }).events.map((e) => e.seq)).toEqual([4, 5])
    expect(windowed.page(3, 1, { partner: 'b' })).toMatchObject({ events: [{ seq: 4 }], next: 4 })
    // A window without a match is an empty page whose cursor still advances, and never past the last seq.
    expect(windowed.page(3, 100, { partner: 'nobody' })).toEqual({ events: [], next: 6 })
    expect(windowed.page(6, 100, { partner: 'nobody' })).toEqual({ events: [], next: 7 })
    expect(windowed.page(7, 100, { partner: 'a' })).toEqual({ events: [], next: 7 })
    // Combined with type, and paging on to the end gathers every match exactly once.
    expect(windowed.page(0, 100, { partner: 'b', type: 'PartnerStatusChanged' }).events).toEqual([])
    const seen: number[] = []
    for (let after = 0; after < windowed.lastSeq(); ) {
      const page = windowed.page(after, 100, { partner: 'b', type: 'PartnerStatusChanged' })
      seen.push(...page.events.map((e) => e.seq))
      expect(page.next).toBeGreaterThan(after)
      after = page.next
    }
    expect(seen).toEqual([4, 5, 7])
    // Type alone stays indexed and unbounded.
    expect(windowed.page(0, 100, { type: 'PartnerStatusChanged' }).events.map((e) => e.seq)).toEqual([3, 4, 5, 6, 7])
  })
})

describe('group commit', () => {
  test('concurrent transact calls share one commit and land in call order with consecutive seqs', async () => {
    const { log } = freshLog()
    const batches: number[][] = []
    log.onCommit((events) => batches.push(events.map((e) => e.seq)))
    const results = await Promise.all(
      Array.from({ length: 300 }, (_, i) => log.transact(() => log.append([registered(`p${i}`)])[0]!)),
    )
    expect(results.map((e) => e.seq)).toEqual(Array.from({ length: 300 }, (_, i) => i + 1))
    expect(results.map((e) => (e.data as { partnerId: string }).partnerId)).toEqual(Array.from({ length: 300 }, (_, i) => `p${i}`))
    expect(batches).toEqual([results.map((e) => e.seq)])
  })

  test('a job that throws rolls back alone while its batch-mates commit, without a hole in seq', async () => {
    const store = openStore({ path: ':memory:' })
    const first = store.log.transact(() => store.log.append([registered('a')]))
    const failing = store.log.transact(() => {
      store.log.append([registered('ghost'), status('ghost', 'half-done')])
      throw new Error('changed my mind')
    })
    const third = store.log.transact(() => store.log.append([registered('c')]))
    const outcomes = await Promise.allSettled([first, failing, third])
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled'])
    expect((outcomes[1] as PromiseRejectedResult).reason.message).toBe('changed my mind')
    expect(store.log.readAfter(0, 100).map((e) => [e.seq, (e.data as { partnerId: string }).partnerId])).toEqual([
      [1, 'a'],
      [2, 'c'],
    ])
    // The projections rolled back with the job: the views never saw the ghost.
    expect(store.views.partners.get('ghost')).toBeNull()
    expect(store.views.partners.all().map((p) => p.id)).toEqual(['a', 'c'])
    await store.close()
  })

  test('a commit listener is called once the batch is visible to other connections', async () => {
    const path = join(dir, 'listener.db')
    const store = openStore({ path })
    const reader = new Database(path, { readonly: true })
    const seen: number[] = []
    store.log.onCommit(() => seen.push(reader.query<{ n: number }, []>('SELECT count(*) AS n FROM events').get()!.n))
    await Promise.all([
      store.log.transact(() => store.log.append([registered('a')])),
      store.log.transact(() => store.log.append([registered('b')])),
    ])
    expect(seen).toEqual([2])
    reader.close()
    await store.close()
  })
})

describe('a log file', () => {
  test('the database itself refuses UPDATE and DELETE of stored events', async () => {
    const path = join(dir, 'immutable.db')
    const store = openStore({ path })
    await store.commands.execute({ kind: 'register', partnerId: 'alice' })
    await store.commands.execute({ kind: 'setStatus', partnerId: 'alice', message: 'here' })
    const before = rowsOf(store.db)
    const raw = new Database(path)
    expect(() => raw.run(`UPDATE events SET data = '{}' WHERE seq = 1`)).toThrow(/immutable/)
    expect(() => raw.run('DELETE FROM events')).toThrow(/immutable/)
    expect(() => raw.run('DELETE FROM events WHERE seq = 2')).toThrow(/immutable/)
    expect(() => store.db.run(`UPDATE events SET hash = 'x'`)).toThrow(/immutable/)
    raw.close()
    expect(rowsOf(store.db)).toEqual(before)
    await store.close()
  })

  test('records schema versions in duo_schema, and re-opening migrates nothing twice', async () => {
    const path = join(dir, 'versions.db')
    const expected = {
      log: MIGRATIONS.length,
      partners: partners.MIGRATIONS.length,
      conversations: conversations.MIGRATIONS.length,
      messages: messages.migrations('0').length,
      delivery: delivery.MIGRATIONS.length,
    }
    const versions = (db: Database) =>
      Object.fromEntries(db.query<{ part: string; version: number }, []>('SELECT part, version FROM duo_schema').all().map((r) => [r.part, r.version]))

    const first = openStore({ path })
    await first.commands.execute({ kind: 'register', partnerId: 'alice' })
    expect(versions(first.db)).toEqual(expected)
    await first.close()

    // A second run of any CREATE TABLE step would throw "already exists".
    const second = openStore({ path })
    expect(versions(second.db)).toEqual(expected)
    expect(second.log.lastSeq()).toBe(1)
    await second.commands.execute({ kind: 'register', partnerId: 'bob' })
    expect(second.log.readAfter(0, 10).map((e) => e.seq)).toEqual([1, 2])
    expect(second.views.partners.all().map((p) => p.id)).toEqual(['alice', 'bob'])
    await second.close()
  })

  test('several processes opening a new file at once all succeed, migrate it once, and append one chain', async () => {
    const path = join(dir, 'crowd.db')
    const opener = `import { openStore } from './src/store.ts'
      const store = openStore({ path: ${JSON.stringify(path)} })
      await store.commands.execute({ kind: 'register', partnerId: 'p' + process.pid })
      await store.close()`
    const procs = Array.from({ length: 4 }, () =>
      Bun.spawn([process.execPath, '-e', opener], { cwd: join(import.meta.dir, '../..'), stderr: 'pipe', stdout: 'ignore' }),
    )
    const codes = await Promise.all(procs.map((p) => p.exited))
    const errors = await Promise.all(procs.map((p) => new Response(p.stderr).text()))
    expect(errors.filter((e) => e !== '')).toEqual([])
    expect(codes).toEqual([0, 0, 0, 0])
    const store = openStore({ path })
    expect(store.log.lastSeq()).toBe(4)
    expect(store.db.query('SELECT version FROM duo_schema WHERE part = ?').get('log')).toEqual({ version: MIGRATIONS.length })
    await store.close()
    // Each writer continued the others' chain, and its views stayed in step.
    expect((await auditFile(path)).ok).toBe(true)
  })

  test('migrate runs only the steps a part has not had, and refuses a newer database', () => {
    const db = new Database(':memory:', { strict: true })
    migrate(db, 'extra', ['CREATE TABLE t1 (x)'])
    migrate(db, 'extra', ['CREATE TABLE t1 (x)'])
    migrate(db, 'extra', ['CREATE TABLE t1 (x)', 'CREATE TABLE t2 (y)'])
    const tables = db.query<{ name: string }, []>("SELECT name FROM sqlite_master WHERE name LIKE 't_' ORDER BY name").all()
    expect(tables.map((t) => t.name)).toEqual(['t1', 't2'])
    expect(db.query('SELECT version FROM duo_schema WHERE part = ?').get('extra')).toEqual({ version: 2 })
    expect(() => migrate(db, 'extra', ['CREATE TABLE t1 (x)'])).toThrow(/newer than this program/)
  })
})
