// Group commit: when a transact promise resolves, what a failed commit leaves behind, order across batches.
import { Database } from 'bun:sqlite'
import { afterAll, describe, expect, test } from 'bun:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chainHash, type EventRow, GENESIS_HASH, migrateLog, openEventLog } from '../../src/events/log.ts'
import type { DuoEvent } from '../../src/events/schema.ts'
import { openStore } from '../../src/store.ts'

const dir = mkdtempSync(join(tmpdir(), 'duo-group-commit-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const registered = (partnerId: string): DuoEvent => ({
  type: 'PartnerRegistered',
  data: { partnerId, name: partnerId, projectPath: null },
})
const count = (db: Database) => db.query<{ n: number }, []>('SELECT count(*) AS n FROM events').get()!.n
const rowsOf = (db: Database) => db.query<EventRow, []>('SELECT seq, type, at, data, hash FROM events ORDER BY seq').all()

describe('a transact promise', () => {
  test('resolves only once the batch is committed: another connection sees nothing before and every row then', async () => {
    const path = join(dir, 'visible.db')
    const store = openStore({ path })
    const reader = new Database(path, { readonly: true })
    const seenAtResolve: number[] = []
    const pending = Array.from({ length: 50 }, (_, i) =>
      store.log.transact(() => store.log.append([registered(`p${i}`)])).then(() => seenAtResolve.push(count(reader))),
    )
    // The batch is flushed on a later turn of the event loop: nothing is visible yet.
    expect(count(reader)).toBe(0)
    await Promise.all(pending)
    expect(seenAtResolve).toEqual(Array(50).fill(50))
    reader.close()
    await store.close()
  })

  test('a file log commits with synchronous=FULL unless DUO_SYNC says normal', async () => {
    const full = openStore({ path: join(dir, 'full.db') })
    const normal = openStore({ path: join(dir, 'normal.db'), sync: 'normal' })
    expect(full.db.query<{ synchronous: number }, []>('PRAGMA synchronous').get()!.synchronous).toBe(2)
    expect(normal.db.query<{ synchronous: number }, []>('PRAGMA synchronous').get()!.synchronous).toBe(1)
    await full.close()
    await normal.close()
  })

  test('commit listeners run after the commit and before any promise of the batch resolves', async () => {
    const db = new Database(':memory:', { strict: true })
    migrateLog(db)
    const log = openEventLog(db)
    const order: string[] = []
    log.onCommit((events) => order.push(`commit ${events.map((e) => e.seq).join(',')}`))
    await Promise.all([
      log.transact(() => log.append([registered('a')])).then(() => order.push('resolved a')),
      log.transact(() => log.append([registered('b')])).then(() => order.push('resolved b')),
    ])
    expect(order).toEqual(['commit 1,2', 'resolved a', 'resolved b'])
  })
})

describe('a commit that fails', () => {
  /** A log whose COMMIT fails when a job leaves a deferred foreign key dangling (a stand-in for an I/O error). */
  function failingLog() {
    const db = new Database(':memory:', { strict: true })
    db.run('PRAGMA foreign_keys = ON')
    migrateLog(db)
    db.run('CREATE TABLE parent (id INTEGER PRIMARY KEY)')
    db.run('CREATE TABLE child (parent_id INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)')
    const log = openEventLog(db)
    const poison = () => db.run('INSERT INTO child (parent_id) VALUES (42)')
    return { db, log, poison }
  }

  test('rejects every job of its batch, stores nothing, wakes nobody, and leaves seq where it was', async () => {
    const { db, log, poison } = failingLog()
    await log.transact(() => log.append([registered('before')]))
    const committed: number[] = []
    log.onCommit((events) => committed.push(...events.map((e) => e.seq)))
    const outcomes = await Promise.allSettled([
      log.transact(() => log.append([registered('a')])),
      log.transact(() => {
        log.append([registered('b')])
        poison()
      }),
      log.transact(() => log.append([registered('c')])),
    ])
    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected', 'rejected'])
    expect(String((outcomes[0] as PromiseRejectedResult).reason)).toMatch(/FOREIGN KEY/)
    expect(committed).toEqual([])
    expect(log.lastSeq()).toBe(1)
    expect(rowsOf(db).map((r) => r.seq)).toEqual([1])
    expect(db.inTransaction).toBe(false)
  })

  test('the next batch continues the seq and the hash chain from the last committed event', async () => {
    const { db, log, poison } = failingLog()
    await log.transact(() => log.append([registered('before')]))
    await log
      .transact(() => {
        log.append([registered('lost'), registered('lost-too')])
        poison()
      })
      .catch(() => {})
    const [after] = await log.transact(() => log.append([registered('after')]))
    expect(after!.seq).toBe(2)
    let prev = GENESIS_HASH
    for (const row of rowsOf(db)) {
      expect(row.hash).toBe(chainHash(prev, row.seq, row.type, row.at, row.data))
      prev = row.hash
    }
    expect(rowsOf(db).map((r) => JSON.parse(r.data).partnerId)).toEqual(['before', 'after'])
  })
})

describe('order across batches', () => {
  test('more transacts than one batch holds still land in call order with consecutive seqs', async () => {
    const db = new Database(':memory:', { strict: true })
    migrateLog(db)
    const log = openEventLog(db)
    const batches: number[][] = []
    log.onCommit((events) => batches.push(events.map((e) => e.seq)))
    const n = 4500
    const results = await Promise.all(Array.from({ length: n }, (_, i) => log.transact(() => log.append([registered(`p${i}`)])[0]!.seq)))
    expect(results).toEqual(Array.from({ length: n }, (_, i) => i + 1))
    expect(batches.length).toBeGreaterThan(1)
    expect(batches.flat()).toEqual(results)
  })

  test('a transact started by a commit listener or a resolved promise joins a later batch, after the current one', async () => {
    const db = new Database(':memory:', { strict: true })
    migrateLog(db)
    const log = openEventLog(db)
    const batches: number[][] = []
    const chained: Promise<number>[] = []
    log.onCommit((events) => {
      batches.push(events.map((e) => e.seq))
      if (batches.length === 1) chained.push(log.transact(() => log.append([registered('from-listener')])[0]!.seq))
    })
    const first = await Promise.all([
      log.transact(() => log.append([registered('a')])[0]!.seq),
      log.transact(() => log.append([registered('b')])[0]!.seq),
    ])
    const next = await log.transact(() => log.append([registered('c')])[0]!.seq)
    expect(first).toEqual([1, 2])
    expect(await chained[0]).toBe(3)
    expect(next).toBe(4)
    expect(batches[0]).toEqual([1, 2])
  })
})
