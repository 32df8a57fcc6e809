// The log on PostgreSQL: gap-free seq in commit order, the same hash chain as SQLite, immutability enforced
// by the database, schema versions, and decisions that hold across several stores sharing one database.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { chainHash, GENESIS_HASH } from '../../src/events/log.ts'
import { StorageError } from '../../src/pg/log.ts'
import { LOG_MIGRATIONS, migratePg, SHARED_MIGRATIONS } from '../../src/pg/schema.ts'
import { openPgStore, type PgStore } from '../../src/pg/store.ts'
import { freshDatabase, type TestDatabase } from './helpers.ts'

let database: TestDatabase
const stores: PgStore[] = []
const open = async () => {
  // Racing writers send hundreds of messages between the same two agents: no loop guard.
  const store = await openPgStore({ url: database.url, rules: { maxHops: 0 } })
  stores.push(store)
  return store
}
beforeAll(async () => {
  database = await freshDatabase('duo_log')
})
afterAll(async () => {
  for (const store of stores) await store.close().catch(() => {})
  await database.drop()
})

const register = (store: PgStore, partnerId: string) => store.commands.execute({ kind: 'register', partnerId })
const talk = (store: PgStore, fromId: string, to: string, content: string, idempotencyKey?: string) =>
  store.commands.execute({ kind: 'talk', fromId, to, content, idempotencyKey })

type Row = { seq: string; type: string; at: string; data: string; hash: string }
const allRows = async (): Promise<Row[]> => [...(await database.sql`SELECT seq, type, at, data, hash FROM events ORDER BY seq`)]

/** Every seq from 1 to the end, each hash chained exactly as the SQLite log's `chainHash` does. */
function expectChained(rows: Row[]): void {
  let prev = GENESIS_HASH
  rows.forEach((row, i) => {
    expect(Number(row.seq)).toBe(i + 1)
    expect(row.hash).toBe(chainHash(prev, i + 1, row.type, row.at, row.data))
    prev = row.hash
  })
}

describe('one store on PostgreSQL', () => {
  test('appends are gap-free from 1, chained like the SQLite log, and in the replica', async () => {
    const store = await open()
    await register(store, 'alice')
    await register(store, 'bob')
    const sent = await Promise.all(Array.from({ length: 20 }, (_, i) => talk(store, 'alice', 'bob', `m${i}`)))
    expect(sent.every((r) => r.ok)).toBe(true)
    const rows = await allRows()
    expectChained(rows)
    expect(store.log.lastSeq()).toBe(rows.length)
    expect(store.log.readAfter(0, 1000).map((e) => e.hash)).toEqual(rows.map((r) => r.hash))
  })

  test('the database refuses UPDATE, DELETE and TRUNCATE of stored events', async () => {
    await expect(database.sql`UPDATE events SET data = '{}' WHERE seq = 1`).rejects.toThrow(/immutable: UPDATE refused/)
    await expect(database.sql`DELETE FROM events WHERE seq = 1`).rejects.toThrow(/immutable: DELETE refused/)
    await expect(database.sql`TRUNCATE events`).rejects.toThrow(/immutable: TRUNCATE refused/)
    expectChained(await allRows())
  })

  test('the database refuses an event that does not follow the head or does not chain', async () => {
    const [head] = await database.sql`SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1`
    const next = Number(head.seq) + 1
    const at = new Date().toISOString()
    const skip = chainHash(head.hash, next + 1, 'X', at, '{}')
    await expect(database.sql`INSERT INTO events VALUES (${next + 1}, 'X', ${at}, '{}', ${skip})`).rejects.toThrow(/does not follow the head/)
    await expect(database.sql`INSERT INTO events VALUES (${next}, 'X', ${at}, '{}', ${GENESIS_HASH})`).rejects.toThrow(/does not chain/)
    expect(Number((await database.sql`SELECT max(seq) AS m FROM events`)[0].m)).toBe(Number(head.seq))
  })

  test('schema versions are recorded; a database newer than the program is refused', async () => {
    const versions = await database.sql`SELECT part, version FROM duo_schema ORDER BY part`
    expect([...versions]).toEqual([
      { part: 'log', version: LOG_MIGRATIONS.length },
      { part: 'shared', version: SHARED_MIGRATIONS.length },
    ])
    await database.sql`INSERT INTO duo_schema VALUES ('future', 3)`
    await expect(migratePg(database.sql, 'future', ['SELECT 1'])).rejects.toThrow(/newer than this program/)
  })
})

describe('several stores on one database', () => {
  test('a store opened later replays the whole log into its replica', async () => {
    const late = await open()
    expect(late.log.lastSeq()).toBe(stores[0]!.log.lastSeq())
    expect(late.views.partners.get('bob')).not.toBeNull()
  })

  test('writers racing through three stores keep seq gap-free and chained; each store follows the others', async () => {
    const [a, b, c] = [stores[0]!, stores[1]!, await open()]
    const before = (await allRows()).length
    const sends = [a, b, c].flatMap((store, s) => Array.from({ length: 30 }, (_, i) => talk(store, 'alice', 'bob', `race ${s}.${i}`)))
    const results = await Promise.all(sends)
    expect(results.every((r) => r.ok)).toBe(true)
    const rows = await allRows()
    expectChained(rows)
    expect(rows.length).toBe(before + 90)
    const contents = rows.filter((r) => r.type === 'MessageSent').map((r) => JSON.parse(r.data).content)
    expect(new Set(contents.filter((t: string) => t.startsWith('race '))).size).toBe(90)
    const seqs = results.map((r) => (r.ok ? r.value.appended[0]!.seq : 0))
    expect(new Set(seqs).size).toBe(90)
    for (const store of [a, b, c]) await store.log.catchUp()
    for (const store of [a, b, c]) expect(store.log.lastSeq()).toBe(rows.length)
  })

  test('an idempotency key holds across stores: the retry through another store is not stored again', async () => {
    const [a, b] = [stores[0]!, stores[1]!]
    const first = await talk(a, 'alice', 'bob', 'once', 'key-across')
    // b has not necessarily heard of it yet: the append through b must decide at the shared head.
    const retry = await talk(b, 'alice', 'bob', 'once', 'key-across')
    expect(first.ok && retry.ok).toBe(true)
    if (!first.ok || !retry.ok) return
    expect(retry.value.decision.duplicateOf).toBe(first.value.appended[0]!.seq)
    const copies = (await allRows()).filter((r) => r.type === 'MessageSent' && JSON.parse(r.data).idempotencyKey === 'key-across')
    expect(copies.length).toBe(1)
  })

  test('a refusal is decided at the shared head: a partner registered through one store is known to the next', async () => {
    const [a, b] = [stores[0]!, stores[1]!]
    await register(a, 'carol')
    const sent = await talk(b, 'carol', 'alice', 'hello from carol')
    expect(sent.ok).toBe(true)
  })

  test('a write the database cannot take rejects with StorageError and stores nothing', async () => {
    const store = await open()
    const before = (await allRows()).length
    await store.sql.close()
    await expect(talk(store, 'alice', 'bob', 'lost')).rejects.toBeInstanceOf(StorageError)
    expect((await allRows()).length).toBe(before)
  })
})

describe('commit order', () => {
  test('a reader following the log while writers race never sees a gap that later fills', async () => {
    const writers = [stores[0]!, stores[1]!, stores[2]!]
    let cursor = Number((await database.sql`SELECT coalesce(max(seq), 0) AS m FROM events`)[0].m)
    const start = cursor
    let writing = true
    const gaps: string[] = []
    const reader = (async () => {
      while (writing || cursor < Number((await database.sql`SELECT max(seq) AS m FROM events`)[0].m)) {
        const rows = await database.sql`SELECT seq FROM events WHERE seq > ${cursor} ORDER BY seq LIMIT 500`
        for (const row of rows) {
          const seq = Number(row.seq)
          if (seq !== cursor + 1) gaps.push(`saw ${seq} right after ${cursor}`)
          cursor = seq
        }
      }
    })()
    const loops = writers.map(async (store, w) => {
      for (let i = 0; i < 60; i++) {
        const batch = Array.from({ length: 1 + (i % 4) }, (_, k) => talk(store, 'alice', 'bob', `order ${w}.${i}.${k}`))
        const results = await Promise.all(batch)
        if (!results.every((r) => r.ok)) throw new Error('a racing talk was refused')
      }
    })
    await Promise.all(loops)
    writing = false
    await reader
    expect(gaps).toEqual([])
    expect(cursor - start).toBe(3 * 60 * 2.5)
  })
})
