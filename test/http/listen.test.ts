// Listening over HTTP: cursor long-poll, legacy long-poll, ack, wake-ups, bursts and concurrent listeners.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { slowTest } from '../slow.ts'
import { LOAD, type Message, type TestBroker, eventually, startTestBroker, stillPending } from './helpers.ts'

type CursorReply = { hasMessages: boolean; messages: Message[]; cursor: number }

describe('cursor long-poll', () => {
  let broker: TestBroker
  beforeAll(async () => {
    broker = await startTestBroker()
    await broker.register('alice', 'bob', 'carol')
  })
  afterAll(() => broker.close())

  test('answers at once with the messages after the cursor, its own excluded, each with seq', async () => {
    const start = await broker.lastSeq()
    const m1 = await broker.talk('alice', { to: 'bob' }, 'one')
    await broker.talk('bob', { to: 'alice' }, 'own')
    const m3 = await broker.talk('carol', { to: 'bob' }, 'three')
    const reply = await broker.get<CursorReply>(`/listen/bob?after=${start}&wait=5`)
    expect(reply.status).toBe(200)
    expect(reply.body.hasMessages).toBe(true)
    expect(reply.body.messages.map((m) => [m.seq, m.from_id, m.content])).toEqual([
      [m1.messageId, 'alice', 'one'],
      [m3.messageId, 'carol', 'three'],
    ])
    expect(reply.body.messages[0]).toEqual({
      id: m1.messageId,
      seq: m1.messageId,
      conversation_id: 'direct_alice_bob',
      from_id: 'alice',
      from_kind: 'agent',
      content: 'one',
      created_at: expect.any(String),
    })
    expect(reply.body.cursor).toBe(m3.messageId)
  })

  test('filters by conversationId', async () => {
    const start = await broker.lastSeq()
    await broker.talk('alice', { to: 'bob' }, 'from alice')
    const fromCarol = await broker.talk('carol', { to: 'bob' }, 'from carol')
    const reply = await broker.get<CursorReply>(`/listen/bob?after=${start}&wait=0&conversationId=direct_bob_carol`)
    expect(reply.body.messages.map((m) => m.seq)).toEqual([fromCarol.messageId])
  })

  slowTest('wait=1 with nothing returns after about a second with hasMessages false and a cursor', async () => {
    const cursor = await broker.lastSeq()
    const started = performance.now()
    const reply = await broker.get<CursorReply>(`/listen/bob?after=${cursor}&wait=1`)
    const took = performance.now() - started
    expect(reply.status).toBe(200)
    // The cursor may move past events the partner does not see (its own read position, say), never back.
    expect(reply.body).toEqual({ hasMessages: false, messages: [], cursor: expect.any(Number) })
    expect(reply.body.cursor).toBeGreaterThanOrEqual(cursor)
    expect(took).toBeGreaterThanOrEqual(950)
    expect(took).toBeLessThan(3000)
  })

  test('wait=0 answers at once', async () => {
    const cursor = await broker.lastSeq()
    const started = performance.now()
    const reply = await broker.get<CursorReply>(`/listen/bob?after=${cursor}&wait=0`)
    expect(performance.now() - started).toBeLessThan(500)
    expect(reply.body).toEqual({ hasMessages: false, messages: [], cursor: expect.any(Number) })
    expect(reply.body.cursor).toBeGreaterThanOrEqual(cursor)
  })

  test('a waiting long-poll is answered by the next message', async () => {
    const cursor = await broker.lastSeq()
    const poll = broker.get<CursorReply>(`/listen/bob?after=${cursor}&wait=10`)
    await broker.untilParked(1)
    expect(await stillPending(poll, 0)).toBe(true)
    const sent = await broker.talk('alice', { to: 'bob' }, 'wake')
    const reply = await poll
    expect(reply.body.messages.map((m) => m.content)).toEqual(['wake'])
    expect(reply.body.cursor).toBe(sent.messageId)
    expect(sent.notified).toBe(1)
  })

  test.each(['wait=-1', 'wait=3601', 'wait=abc', 'wait=', 'after=-1', 'after=1.5', 'after=x'])(
    'refuses %s with 400 {error}',
    async (query) => {
      const reply = await broker.get(`/listen/bob?${query.startsWith('after') ? query : `after=0&${query}`}`)
      expect(reply.status).toBe(400)
      expect(reply.body.error).toEqual(expect.any(String))
    },
  )

  test('refuses an unknown partner (404), an unknown conversation (404), a conversation it is not in (403)', async () => {
    const unknown = await broker.get('/listen/nobody?after=0&wait=0')
    expect([unknown.status, unknown.body.reason, unknown.body.partnerId]).toEqual([404, 'unknown_partner', 'nobody'])
    const noSuch = await broker.get('/listen/bob?after=0&wait=0&conversationId=group_nope')
    expect([noSuch.status, noSuch.body.reason, noSuch.body.conversationId]).toEqual([404, 'unknown_conversation', 'group_nope'])
    const notMine = await broker.get('/listen/carol?after=0&wait=0&conversationId=direct_alice_bob')
    expect(notMine.status).toBe(403)
    expect(notMine.body.reason).toBe('not_a_participant')
    expect(notMine.body.error).toContain('direct_alice_bob')
  })

  test('a cursor beyond the end of the log is 409 with the last seq, for long-poll and ack', async () => {
    const last = await broker.lastSeq()
    const reply = await broker.get(`/listen/bob?after=${last + 100}&wait=5`)
    expect(reply.status).toBe(409)
    expect(reply.body).toEqual({ error: expect.any(String), reason: 'cursor_ahead', last_seq: last })
    const ack = await broker.post('/listen/bob/ack', { cursor: last + 1 })
    expect(ack.status).toBe(409)
    expect(ack.body).toEqual({ error: expect.any(String), reason: 'cursor_ahead', last_seq: last })
  })

  test('asking with after=N acknowledges up to N in the conversations it covers', async () => {
    await broker.register('dan', 'erin')
    const cursor = await broker.lastSeq()
    const a = await broker.talk('dan', { to: 'erin' }, 'a')
    await broker.talk('dan', { to: 'erin' }, 'b')
    const unread = async () =>
      (await broker.get('/conversations/erin')).body.conversations.find((c: { id: string }) => c.id === 'direct_dan_erin')
        .unread_count
    expect(await unread()).toBe(2)
    const first = await broker.get<CursorReply>(`/listen/erin?after=${cursor}&wait=0`)
    expect(first.body.messages).toHaveLength(2)
    expect(await unread()).toBe(2) // delivering acknowledges nothing; the next ask does
    await broker.get(`/listen/erin?after=${a.messageId}&wait=0`)
    expect(await unread()).toBe(1)
    await broker.get(`/listen/erin?after=${first.body.cursor}&wait=0`)
    expect(await unread()).toBe(0)
  })

  test('POST /listen/:id/ack acknowledges up to a cursor without waiting', async () => {
    await broker.register('fay')
    const m = await broker.talk('dan', { to: 'fay' }, 'ack me')
    await broker.talk('erin', { to: 'fay' }, 'and me')
    const reply = await broker.post('/listen/fay/ack', { cursor: m.messageId, conversationId: 'direct_dan_fay' })
    expect(reply.status).toBe(200)
    expect(reply.body).toEqual({ success: true, acknowledged: [{ conversationId: 'direct_dan_fay', seq: m.messageId }] })
    const conversations = (await broker.get('/conversations/fay')).body.conversations as Array<{ id: string; unread_count: number }>
    expect(Object.fromEntries(conversations.map((c) => [c.id, c.unread_count]))).toEqual({
      direct_dan_fay: 0,
      direct_erin_fay: 1,
    })
    // Again: nothing more to acknowledge, nothing appended.
    const before = await broker.lastSeq()
    const again = await broker.post('/listen/fay/ack', { cursor: m.messageId, conversationId: 'direct_dan_fay' })
    expect(again.body).toEqual({ success: true, acknowledged: [] })
    expect(await broker.lastSeq()).toBe(before)
  })

  test('ack refuses a missing cursor (400), an unknown partner (404), a conversation it is not in (403)', async () => {
    const before = await broker.lastSeq()
    expect((await broker.post('/listen/fay/ack', {})).status).toBe(400)
    expect((await broker.post('/listen/fay/ack', { cursor: 'soon' })).status).toBe(400)
    const unknown = await broker.post('/listen/nobody/ack', { cursor: 1 })
    expect([unknown.status, unknown.body.reason]).toEqual([404, 'unknown_partner'])
    const notMine = await broker.post('/listen/fay/ack', { cursor: 1, conversationId: 'direct_alice_bob' })
    expect([notMine.status, notMine.body.reason]).toEqual([403, 'not_a_participant'])
    expect(await broker.lastSeq()).toBe(before)
  })
})

describe('wake-ups', () => {
  let broker: TestBroker
  beforeAll(async () => {
    broker = await startTestBroker()
    await broker.register('alice', 'bob', 'carol')
    await broker.talk('alice', { to: 'bob' }, 'open alice-bob')
    await broker.talk('carol', { to: 'bob' }, 'open bob-carol')
    await broker.post('/listen/bob/ack', { cursor: await broker.lastSeq() }) // nothing unread for legacy listeners
  })
  afterAll(() => broker.close())

  test('two concurrent long-polls of one partner are both woken by one message', async () => {
    const cursor = await broker.lastSeq()
    const first = broker.get<CursorReply>(`/listen/bob?after=${cursor}&wait=10`)
    const second = broker.get<CursorReply>(`/listen/bob?after=${cursor}&wait=10`)
    const legacy = broker.get<CursorReply>('/listen/bob?timeout=1')
    await broker.untilParked(3)
    expect(await stillPending(Promise.race([first, second, legacy]), 0)).toBe(true)
    const sent = await broker.talk('alice', { to: 'bob' }, 'for both')
    const replies = await Promise.all([first, second, legacy])
    for (const reply of replies) {
      expect(reply.status).toBe(200)
      expect(reply.body.messages.map((m) => m.seq)).toEqual([sent.messageId])
    }
  })

  test('a message wakes exactly its recipients: a third partner’s listener keeps waiting', async () => {
    const cursor = await broker.lastSeq()
    const bobs = broker.get<CursorReply>(`/listen/bob?after=${cursor}&wait=10`)
    const carols = broker.get<CursorReply>(`/listen/carol?after=${cursor}&wait=10`)
    await broker.untilParked(2)
    expect(await stillPending(Promise.race([bobs, carols]), 0)).toBe(true)
    await broker.talk('alice', { to: 'bob' }, 'only bob')
    // A commit wakes its listeners before the talk is answered: whoever is still parked now was not woken.
    expect(broker.parked()).toBe(1)
    expect((await bobs).body.messages.map((m) => m.content)).toEqual(['only bob'])
    expect(await stillPending(carols, 0)).toBe(true)
    await broker.talk('bob', { to: 'carol' }, 'now carol')
    const reply = await carols
    expect(reply.body.messages.map((m) => m.content)).toEqual(['now carol'])
  })

  test('a listener filtered by conversation is not woken by another conversation', async () => {
    await broker.post('/listen/bob/ack', { cursor: await broker.lastSeq() }) // nothing unread for the legacy listener
    const cursor = await broker.lastSeq()
    const filtered = broker.get<CursorReply>(`/listen/bob?after=${cursor}&wait=10&conversationId=direct_alice_bob`)
    const legacyFiltered = broker.get<CursorReply>('/listen/bob?timeout=1&conversationId=direct_alice_bob')
    const unfiltered = broker.get<CursorReply>(`/listen/bob?after=${cursor}&wait=10`)
    await broker.untilParked(3)
    expect(await stillPending(Promise.race([filtered, legacyFiltered, unfiltered]), 0)).toBe(true)
    await broker.talk('carol', { to: 'bob' }, 'other conversation')
    expect(broker.parked()).toBe(2)
    expect((await unfiltered).body.messages.map((m) => m.content)).toEqual(['other conversation'])
    expect(await stillPending(Promise.race([filtered, legacyFiltered]), 0)).toBe(true)
    await broker.talk('alice', { to: 'bob' }, 'this conversation')
    expect((await filtered).body.messages.map((m) => m.content)).toEqual(['this conversation'])
    expect((await legacyFiltered).body.messages.map((m) => m.content)).toEqual(['this conversation'])
    // The legacy listener read everything unread in alice-bob; bob-carol stays unread for the next one.
    expect((await broker.get<CursorReply>('/listen/bob?timeout=0')).body.messages.map((m) => m.content)).toContain(
      'other conversation',
    )
  })

  test('a group message wakes every other member', async () => {
    const group = (await broker.post('/conversations', { creatorId: 'alice', name: 'G', participants: ['bob', 'carol'] })).body
      .conversation.id
    const cursor = await broker.lastSeq()
    const polls = ['bob', 'carol'].map((id) => broker.get<CursorReply>(`/listen/${id}?after=${cursor}&wait=10`))
    const alices = broker.get<CursorReply>(`/listen/alice?after=${cursor}&wait=10`)
    await broker.untilParked(3)
    expect(await stillPending(Promise.race([...polls, alices]), 0)).toBe(true)
    const sent = await broker.talk('alice', { conversationId: group }, 'all hands')
    expect(sent.notified).toBe(2)
    expect(broker.parked()).toBe(1) // its own message does not wake the sender
    for (const poll of polls) expect((await poll).body.messages.map((m) => m.seq)).toEqual([sent.messageId])
    expect(await stillPending(alices, 0)).toBe(true)
    await broker.talk('bob', { conversationId: group }, 'ack')
    expect((await alices).body.messages.map((m) => m.content)).toEqual(['ack'])
  })
})

describe('a burst of concurrent messages through the cursor long-poll', () => {
  let broker: TestBroker
  beforeAll(async () => {
    broker = await startTestBroker({ sync: 'full', ...LOAD })
    await broker.register('alice', 'bob', 'carol')
  })
  afterAll(() => broker.close())

  test('500 messages sent at once are delivered exactly once and in order', async () => {
    const N = 500
    let cursor = await broker.lastSeq()
    const received: Message[] = []
    let sending = true
    const reader = (async () => {
      while (received.length < N) {
        const reply = await broker.get<CursorReply>(`/listen/bob?after=${cursor}&wait=${sending ? 5 : 1}`)
        expect(reply.status).toBe(200)
        received.push(...reply.body.messages)
        if (reply.body.messages.length === 0 && !sending) break
        cursor = reply.body.cursor
      }
    })()
    const sent = await Promise.all(
      Array.from({ length: N }, (_, i) =>
        broker.talk(i % 2 === 0 ? 'alice' : 'carol', { to: 'bob' }, `burst ${i}`),
      ),
    )
    sending = false
    await reader
    const ids = sent.map((s) => s.messageId).sort((a, b) => a - b)
    expect(received.map((m) => m.seq)).toEqual(ids)
    expect(new Set(received.map((m) => m.content)).size).toBe(N)
    // Many share a millisecond: the cursor, not the clock, keeps them apart.
    expect(new Set(received.map((m) => m.created_at)).size).toBeLessThan(N)
  })
})

describe('legacy long-poll (no cursor)', () => {
  let broker: TestBroker
  beforeAll(async () => {
    broker = await startTestBroker(LOAD)
    await broker.register('alice', 'bob', 'carol')
  })
  afterAll(() => broker.close())

  test('returns the unread messages at once and then none', async () => {
    await broker.talk('alice', { to: 'bob' }, 'unread 1')
    await broker.talk('carol', { to: 'bob' }, 'unread 2')
    const reply = await broker.get('/listen/bob?timeout=1')
    expect(reply.status).toBe(200)
    expect(reply.body).toEqual({
      hasMessages: true,
      messages: [
        expect.objectContaining({ conversation_id: 'direct_alice_bob', from_id: 'alice', content: 'unread 1' }),
        expect.objectContaining({ conversation_id: 'direct_bob_carol', from_id: 'carol', content: 'unread 2' }),
      ],
    })
    for (const m of reply.body.messages) expect(Object.keys(m)).toEqual(expect.arrayContaining(['id', 'conversation_id', 'from_id', 'content', 'created_at']))
    expect(await eventually(async () => (await broker.get('/listen/bob?timeout=0')).body.hasMessages === false)).toBe(true)
  })

  slowTest('timeout is in minutes: a short one returns empty after it passes', async () => {
    const started = performance.now()
    const reply = await broker.get('/listen/bob?timeout=0.02') // 1.2 s
    expect(reply.body).toEqual({ hasMessages: false, messages: [] })
    expect(performance.now() - started).toBeGreaterThanOrEqual(1100)
  })

  test.each(['timeout=-1', 'timeout=61', 'timeout=soon'])('refuses %s with 400', async (query) => {
    const reply = await broker.get(`/listen/bob?${query}`)
    expect(reply.status).toBe(400)
    expect(reply.body.error).toEqual(expect.any(String))
  })

  test('isListening is true while a legacy long-poll waits', async () => {
    const poll = broker.get('/listen/carol?timeout=1')
    const listening = async () =>
      (await broker.get('/partners')).body.partners.find((p: { id: string }) => p.id === 'carol').isListening
    expect(await eventually(listening)).toBe(true)
    await broker.talk('alice', { to: 'carol' }, 'hey')
    expect((await poll).body.messages.map((m: Message) => m.content)).toEqual(['hey'])
    expect(await eventually(async () => !(await listening()))).toBe(true)
  })

  test('interleaved with talks in the same second, it loses nothing and repeats nothing (many rounds)', async () => {
    const received: string[] = []
    const sent: string[] = []
    for (let round = 0; round < 60; round++) {
      const batch = Array.from({ length: 1 + (round % 4) }, (_, i) => `r${round}-${i}`)
      sent.push(...batch)
      // Talks and a listen race each other: some messages land before the listen reads, some after.
      const talks = Promise.all(batch.map((content, i) => broker.talk(i % 2 ? 'carol' : 'alice', { to: 'bob' }, content)))
      const listen = broker.get('/listen/bob?timeout=0')
      await talks
      received.push(...(await listen).body.messages.map((m: Message) => m.content))
    }
    for (let tries = 0; tries < 5; tries++) {
      const rest = (await broker.get('/listen/bob?timeout=0')).body.messages.map((m: Message) => m.content)
      received.push(...rest)
    }
    expect(received.length).toBe(sent.length)
    expect(new Set(received)).toEqual(new Set(sent))
  })
})
