// The messages view's keys by conversation live in two tables (see messages.ts): every read must see one
// conversation's messages whole, on either side of a sweep, after a rollback across one, and on an older file.
import { Database } from 'bun:sqlite'
import { afterAll, afterEach, describe, expect, test } from 'bun:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { auditFile } from '../../src/cli/audit-core.ts'
import type { DuoEvent } from '../../src/events/schema.ts'
import { RECENT_KEYS_SPAN } from '../../src/projections/messages.ts'
import { openStore, type Store } from '../../src/store.ts'
import { closeStores, direct, group, read, registered, sent, storeWithClock } from './given.ts'

afterEach(closeStores)
const dir = mkdtempSync(join(tmpdir(), 'duo-keys-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const CONVERSATIONS = ['direct_alice_bob', 'direct_bob_carol', 'group_all']
const MEMBERS: Record<string, string[]> = {
  direct_alice_bob: ['alice', 'bob'],
  direct_bob_carol: ['bob', 'carol'],
  group_all: ['alice', 'bob', 'carol'],
}
const setup: DuoEvent[] = [
  registered('alice'),
  registered('bob'),
  registered('carol'),
  direct('direct_alice_bob', 'alice', 'bob'),
  direct('direct_bob_carol', 'bob', 'carol'),
  group('group_all', 'All', ['alice', 'bob', 'carol']),
]

/** The i-th event after the setup: mostly messages, spread unevenly over conversations and senders, now and then a read by bob. */
function nth(i: number, seq: number): DuoEvent {
  const conversation = CONVERSATIONS[(i * 7) % 5 === 0 ? 2 : i % 2]!
  if (i % 11 === 5) return read('bob', conversation, seq - 1)
  const members = MEMBERS[conversation]!
  return sent(conversation, members[(i * 3) % members.length]!, `message ${i}`)
}

type Kept = { seq: number; conversation: string; from: string }

/** What the log says, computed without the views: the reference every read is compared with. */
function model(store: Store) {
  const messages: Kept[] = []
  const readAt = new Map<string, number>()
  for (const e of store.log.readAfter(0, 1_000_000)) {
    if (e.type === 'MessageSent') messages.push({ seq: e.seq, conversation: e.data.conversationId, from: e.data.fromId })
    if (e.type === 'ReadPositionAdvanced')
      readAt.set(`${e.data.partnerId} ${e.data.conversationId}`, Math.max(readAt.get(`${e.data.partnerId} ${e.data.conversationId}`) ?? 0, e.data.seq))
  }
  const of = (partner: string) => messages.filter((m) => MEMBERS[m.conversation]!.includes(partner) && m.from !== partner)
  return { messages, readAt, of }
}

/** Every read by conversation, against the model, at the store's current head. */
function expectReadsMatch(store: Store) {
  const { messages, readAt, of } = model(store)
  const seqs = (rows: Array<{ seq: number }>) => rows.map((r) => r.seq)
  const head = store.log.lastSeq()
  const { views } = store
  for (const conversation of CONVERSATIONS) {
    const all = messages.filter((m) => m.conversation === conversation)
    expect(seqs(views.messages.history(conversation, 5))).toEqual(all.slice(-5).map((m) => m.seq))
    const middle = head - RECENT_KEYS_SPAN / 2
    expect(seqs(views.messages.history(conversation, 7, middle))).toEqual(all.filter((m) => m.seq < middle).slice(-7).map((m) => m.seq))
    expect(views.messages.historyPage(conversation, 9, Number.MAX_SAFE_INTEGER, 1 << 20).seqs).toEqual(all.slice(-9).map((m) => m.seq))
    const after = Math.max(0, head - RECENT_KEYS_SPAN - 3)
    const bobsHere = of('bob').filter((m) => m.conversation === conversation && m.seq > after)
    if (MEMBERS[conversation]!.includes('bob')) {
      expect(seqs(views.messages.visibleAfter('bob', after, 1000, conversation))).toEqual(bobsHere.map((m) => m.seq))
      expect(views.messages.visiblePage('bob', after, 4, 1 << 20, conversation).seqs).toEqual(bobsHere.slice(0, 4).map((m) => m.seq))
      const newest = all.filter((m) => m.seq <= head - 2).at(-1)?.seq ?? null
      expect(views.delivery.positions('bob', conversation, head - 2).upto).toBe(newest)
    }
  }
  for (const after of [0, head - RECENT_KEYS_SPAN - 1, head - 3]) {
    const expected = of('bob').filter((m) => m.seq > after).slice(0, 25).map((m) => m.seq)
    expect(seqs(views.messages.visibleAfter('bob', after, 25))).toEqual(expected)
    expect(views.messages.visiblePage('bob', after, 25, 1 << 20).seqs).toEqual(expected)
    // Not yet in front of bob in any way: past his read position too.
    const unseen = of('bob').filter((m) => m.seq > Math.max(after, readAt.get(`bob ${m.conversation}`) ?? 0))
    expect(seqs(views.delivery.unseen('bob', after, 25))).toEqual(unseen.slice(0, 25).map((m) => m.seq))
  }
  const unread = of('bob').filter((m) => m.seq > (readAt.get(`bob ${m.conversation}`) ?? 0))
  expect(seqs(views.messages.unread('bob', 10_000))).toEqual(unread.map((m) => m.seq))
  expect(views.messages.unreadSized('bob', 10_000).map((r) => r.seq)).toEqual(unread.map((m) => m.seq))
  const counts = Object.fromEntries(views.conversations.forPartner('bob').map((c) => [c.id, c.unread_count]))
  for (const conversation of ['direct_alice_bob', 'direct_bob_carol', 'group_all'])
    expect(counts[conversation]).toBe(unread.filter((m) => m.conversation === conversation).length)
  const totals = Object.fromEntries(views.conversations.everyOne(10).map((c) => [c.id, c.message_count]))
  for (const conversation of CONVERSATIONS) expect(totals[conversation]).toBe(messages.filter((m) => m.conversation === conversation).length)
  for (const row of views.messages.ackable('bob', head - 1)) {
    const newest = messages.filter((m) => m.conversation === row.conversation_id && m.seq <= head - 1).at(-1)?.seq ?? null
    expect(row.upto).toBe(newest)
  }
}

const sweptTo = (db: Database) => db.query<{ upto: number }, []>('SELECT upto FROM message_keys_swept').get()!.upto
const recentKeys = (db: Database) => db.query<{ n: number }, []>('SELECT count(*) AS n FROM message_keys_recent').get()!.n

describe('keys by conversation in two tables', () => {
  test('every read by conversation stays whole before, at and after each sweep of the recent keys', async () => {
    const { store, given } = storeWithClock()
    await given(...setup)
    let swept = 0
    for (let i = 0; store.log.lastSeq() < 2 * RECENT_KEYS_SPAN + 40; i++) {
      await given(nth(i, store.log.lastSeq() + 1))
      const offset = store.log.lastSeq() % RECENT_KEYS_SPAN
      if (offset === 0) {
        swept++
        expect(recentKeys(store.db)).toBe(0)
        expect(sweptTo(store.db)).toBe(store.log.lastSeq())
      }
      if (offset <= 2 || offset >= RECENT_KEYS_SPAN - 2 || i % 97 === 0) expectReadsMatch(store)
    }
    expect(swept).toBe(2)
    // Both tables are in use at the end: the older keys moved, the newest not yet.
    expect(recentKeys(store.db)).toBeGreaterThan(0)
    expect(store.db.query<{ n: number }, []>('SELECT count(*) AS n FROM message_keys').get()!.n).toBeGreaterThan(RECENT_KEYS_SPAN)
  })

  test('a sweep rolled back with its job leaves the keys where they were; the next event at that seq sweeps, as a rebuild does', async () => {
    const path = join(dir, 'rollback.db')
    const store = openStore({ path })
    await store.log.transact(() => store.log.append(setup))
    for (let i = 0; store.log.lastSeq() < RECENT_KEYS_SPAN - 1; i++) await store.log.transact(() => store.log.append([nth(i, store.log.lastSeq() + 1)]))
    const waiting = recentKeys(store.db)
    expect(waiting).toBeGreaterThan(RECENT_KEYS_SPAN / 2)
    const failed = store.log.transact(() => {
      store.log.append([sent('group_all', 'alice', 'the sweeping one')])
      expect(recentKeys(store.db)).toBe(0)
      throw new Error('rolled back')
    })
    await expect(failed).rejects.toThrow('rolled back')
    expect(recentKeys(store.db)).toBe(waiting)
    expectReadsMatch(store)
    await store.log.transact(() => store.log.append([sent('group_all', 'carol', 'the one that stays')]))
    expect(store.log.lastSeq()).toBe(RECENT_KEYS_SPAN)
    expect(recentKeys(store.db)).toBe(0)
    expectReadsMatch(store)
    await store.close()
    const report = await auditFile(path)
    expect(report.ok).toBe(true)
  })

  test('a file written before the keys gets them split as its events would have, and loses the old index', async () => {
    const path = join(dir, 'older.db')
    const first = openStore({ path, sync: 'normal' })
    await first.log.transact(() => first.log.append(setup))
    const events = Array.from({ length: RECENT_KEYS_SPAN + 100 }, (_, i) => nth(i, setup.length + i + 1))
    await first.log.transact(() => first.log.append(events))
    await first.close()
    // Back to the schema of before: the old index, no key tables, their steps not yet run.
    const db = new Database(path)
    db.run('DROP TABLE message_keys; DROP TABLE message_keys_recent; DROP TABLE message_keys_swept')
    db.run('CREATE INDEX messages_by_conversation ON messages (conversation_id, seq)')
    db.run("UPDATE duo_schema SET version = 2 WHERE part = 'messages'")
    db.run("UPDATE duo_schema SET version = version - 1 WHERE part = 'conversations'")
    db.close()

    const store = openStore({ path, sync: 'normal' })
    const indexes = store.db.query<{ name: string }, []>("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'messages'").all()
    expect(indexes.map((i) => i.name)).not.toContain('messages_by_conversation')
    expect(recentKeys(store.db)).toBe(model(store).messages.filter((m) => m.seq > RECENT_KEYS_SPAN).length)
    expect(sweptTo(store.db)).toBe(RECENT_KEYS_SPAN)
    expectReadsMatch(store)
    await store.close()
    expect((await auditFile(path)).ok).toBe(true)
  })
})
