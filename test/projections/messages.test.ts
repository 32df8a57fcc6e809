// The messages view: history paging, cursor reads, unread from read positions, idempotency keys.
import { afterEach, describe, expect, test } from 'bun:test'
import type { DuoEvent } from '../../src/events/schema.ts'
import { closeStores, direct, group, left, read, registered, sent, storeWithClock } from './given.ts'

afterEach(closeStores)

const people = ['alice', 'bob', 'carol'].map((id) => registered(id))
// seq 1-3 people, 4 direct alice-bob, 5 group alice-bob-carol
const setting = [...people, direct('direct_alice_bob', 'alice', 'bob'), group('group_1', 'Release', ['alice', 'bob', 'carol'])]

/** Ten messages into the direct conversation, interleaved with group chatter: direct ones get seqs 6, 8, ..., 24. */
const interleaved = (): DuoEvent[] =>
  Array.from({ length: 10 }, (_, i) => [sent('direct_alice_bob', i % 2 ? 'bob' : 'alice', `d${i}`), sent('group_1', 'carol', `g${i}`)]).flat()

describe('history', () => {
  test('the latest `limit` messages, oldest first, as the API shows them', async () => {
    const { store, given, at } = storeWithClock()
    await given(...setting, ...interleaved())
    const page = store.views.messages.history('direct_alice_bob', 3)
    expect(page.map((m) => m.content)).toEqual(['d7', 'd8', 'd9'])
    expect(page[2]).toEqual({ id: 24, seq: 24, conversation_id: 'direct_alice_bob', from_id: 'bob', from_kind: 'agent', content: 'd9', created_at: at() })
  })

  test('pages backwards with `before`, down to nothing', async () => {
    const { store, given } = storeWithClock()
    await given(...setting, ...interleaved())
    const contents = (before: number) => store.views.messages.history('direct_alice_bob', 4, before).map((m) => m.content)
    expect(contents(20)).toEqual(['d3', 'd4', 'd5', 'd6']) // seqs 12..18
    expect(contents(12)).toEqual(['d0', 'd1', 'd2'])
    expect(contents(6)).toEqual([])
    expect(store.views.messages.history('direct_alice_bob', 1000).length).toBe(10)
    expect(store.views.messages.history('group_1', 1000).every((m) => m.conversation_id === 'group_1')).toBe(true)
  })
})

describe('unread', () => {
  test('counts exactly past the read position when many messages share one millisecond', async () => {
    const { store, given } = storeWithClock()
    await given(...setting)
    // The clock stands still: 50 messages with the same time, as a busy broker writes them.
    const appended = await given(...Array.from({ length: 50 }, (_, i) => sent('group_1', i % 5 === 0 ? 'alice' : 'bob', `m${i}`)))
    expect(new Set(appended.map((e) => e.at)).size).toBe(1)
    const twentieth = appended[19]!.seq
    await given(read('carol', 'group_1', twentieth))
    const unread = store.views.messages.unread('carol', 1000)
    expect(unread.map((m) => m.seq)).toEqual(appended.slice(20).map((e) => e.seq))
    expect(store.views.conversations.forPartner('carol')[0]).toMatchObject({ id: 'group_1', unread_count: 30, read_seq: twentieth })
    // Alice's own ten messages are never unread for her.
    expect(store.views.conversations.forPartner('alice').find((c) => c.id === 'group_1')!.unread_count).toBe(40)
  })

  test('a read position never moves back', async () => {
    const { store, given } = storeWithClock()
    await given(...setting, sent('group_1', 'alice'), sent('group_1', 'alice'), read('bob', 'group_1', 7), read('bob', 'group_1', 6))
    expect(store.views.messages.unread('bob', 10)).toEqual([])
    expect(store.views.conversations.forPartner('bob').find((c) => c.id === 'group_1')!.read_seq).toBe(7)
  })

  test('is limited to one conversation when asked, and to conversations the partner is still in', async () => {
    const { store, given } = storeWithClock()
    await given(...setting, sent('group_1', 'carol', 'g'), sent('direct_alice_bob', 'alice', 'd'))
    expect(store.views.messages.unread('bob', 10).map((m) => m.content)).toEqual(['g', 'd'])
    expect(store.views.messages.unread('bob', 10, 'direct_alice_bob').map((m) => m.content)).toEqual(['d'])
    await given(left('group_1', 'bob'))
    expect(store.views.messages.unread('bob', 10).map((m) => m.content)).toEqual(['d'])
  })
})

describe('visible after a cursor', () => {
  test("gives the partner's messages past the cursor, not its own, in seq order", async () => {
    const { store, given } = storeWithClock()
    await given(...setting, ...interleaved())
    const seqs = (after: number, conversationId?: string) =>
      store.views.messages.visibleAfter('alice', after, 100, conversationId).map((m) => m.seq)
    expect(seqs(19)).toEqual([20, 21, 23, 24, 25]) // 22 is her own
    expect(seqs(19, 'direct_alice_bob')).toEqual([20, 24])
    expect(seqs(25)).toEqual([])
    expect(store.views.messages.visibleAfter('alice', 0, 3).map((m) => m.seq)).toEqual([7, 8, 9])
  })
})

describe('idempotency keys', () => {
  test('find the message a sender sent under a key', async () => {
    const { store, given } = storeWithClock()
    await given(...setting, sent('group_1', 'alice', 'once', 'k1'), sent('group_1', 'bob', 'other', 'k1'))
    expect(store.views.messages.byIdempotencyKey('alice', 'k1')).toEqual({ seq: 6, conversation_id: 'group_1' })
    expect(store.views.messages.byIdempotencyKey('bob', 'k1')).toEqual({ seq: 7, conversation_id: 'group_1' })
    expect(store.views.messages.byIdempotencyKey('carol', 'k1')).toBeNull()
    expect(store.views.messages.count()).toBe(2)
  })
})
