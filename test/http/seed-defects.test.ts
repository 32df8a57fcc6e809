// The original mcp-claude-duo's known defects, each shown fixed against a real broker.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { readdirSync, rmSync } from 'node:fs'
import { connect } from 'node:net'
import { type Message, type TestBroker, eventually, startTestBroker, stillPending, tempDir } from './helpers.ts'

describe('defects of the original, in open mode', () => {
  let broker: TestBroker
  beforeAll(async () => {
    broker = await startTestBroker()
    await broker.register('alice', 'bob', 'carol')
  })
  afterAll(() => broker.close())

  const unreadOf = async (partnerId: string, conversationId: string): Promise<number> =>
    (await broker.get(`/conversations/${partnerId}`)).body.conversations.find((c: { id: string }) => c.id === conversationId)
      .unread_count

  test('(1) messages within the same second are neither lost nor repeated by legacy listen', async () => {
    const first = await Promise.all(Array.from({ length: 30 }, (_, i) => broker.talk('alice', { to: 'bob' }, `a${i}`)))
    const got1 = (await broker.get('/listen/bob?timeout=0')).body.messages as Message[]
    expect(got1.map((m) => m.seq)).toEqual(first.map((s) => s.messageId).sort((a, b) => a - b))
    // More in the very same second (and millisecond) as those just read.
    const second = await Promise.all(Array.from({ length: 30 }, (_, i) => broker.talk('carol', { to: 'bob' }, `c${i}`)))
    const got2 = (await broker.get('/listen/bob?timeout=0')).body.messages as Message[]
    expect(got2.map((m) => m.seq)).toEqual(second.map((s) => s.messageId).sort((a, b) => a - b))
    expect((await broker.get('/listen/bob?timeout=0')).body).toEqual({ hasMessages: false, messages: [] })
  })

  test('(2) a second listener does not kick out the first: both are answered with the message', async () => {
    const first = broker.get('/listen/bob?timeout=1')
    const second = broker.get('/listen/bob?timeout=1')
    await broker.untilParked(2)
    expect(await stillPending(Promise.race([first, second]), 0)).toBe(true)
    await broker.talk('alice', { to: 'bob' }, 'for every listener')
    const replies = await Promise.all([first, second])
    for (const reply of replies) {
      expect(reply.status).toBe(200)
      expect(reply.body.messages.map((m: Message) => m.content)).toEqual(['for every listener'])
    }
  })

  test('(3) a legacy long-poll whose client went away leaves the messages unread', async () => {
    await broker.get('/listen/carol?timeout=0') // nothing unread to start with
    const controller = new AbortController()
    const poll = fetch(`${broker.url}/listen/carol?timeout=1`, { signal: controller.signal }).catch((e) => e)
    const listening = async () =>
      (await broker.get('/partners')).body.partners.find((p: { id: string }) => p.id === 'carol').isListening
    expect(await eventually(listening)).toBe(true)
    controller.abort()
    expect(await poll).toBeInstanceOf(Error)
    expect(await eventually(async () => !(await listening()))).toBe(true)

    // Nobody listened when it was committed (the wait above ended), so nothing can record it as read.
    await broker.talk('alice', { to: 'carol' }, 'after the client left')
    expect(await unreadOf('carol', 'direct_alice_carol')).toBe(1)
    const again = (await broker.get('/listen/carol?timeout=0')).body
    expect(again.messages.map((m: Message) => m.content)).toEqual(['after the client left'])
  })

  test('(3) a legacy answer written to a closed connection is not recorded as read', async () => {
    await broker.get('/listen/carol?timeout=0')
    // A raw client that asks, then hangs up while the broker is still waiting for a message.
    const socket = connect(broker.port, '127.0.0.1')
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
    socket.write(`GET /listen/carol?timeout=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`)
    const listening = async () =>
      (await broker.get('/partners')).body.partners.find((p: { id: string }) => p.id === 'carol').isListening
    expect(await eventually(listening)).toBe(true)
    socket.destroy()
    // The message races the broker noticing the hang-up; either way it must stay unread.
    await broker.talk('bob', { to: 'carol' }, 'into the void')
    // The broker is done with that listen once it no longer holds carol as listening.
    expect(await eventually(async () => !(await listening()))).toBe(true)
    expect(await unreadOf('carol', 'direct_bob_carol')).toBe(1)
    const again = (await broker.get('/listen/carol?timeout=0')).body
    expect(again.messages.map((m: Message) => m.content)).toEqual(['into the void'])
  })

  test('(4) the broker writes no files into partners’ project paths', async () => {
    const projects = ['dora', 'ed'].map((id) => ({ id, dir: tempDir(`duo-project-${id}-`) }))
    try {
      for (const { id, dir } of projects) {
        expect((await broker.post('/register', { partnerId: id, name: id, projectPath: dir })).status).toBe(200)
        expect((await broker.post(`/partners/${id}/notifications`, { enabled: true })).status).toBe(200)
      }
      // Messages while nobody listens (the original wrote CLAUDE.md notifications then), and while one listens.
      await broker.talk('dora', { to: 'ed' }, 'offline note')
      const group = (await broker.post('/conversations', { creatorId: 'ed', name: 'G', participants: ['dora', 'alice'] })).body
        .conversation.id
      await broker.talk('alice', { conversationId: group }, 'group note')
      const poll = broker.get('/listen/dora?timeout=1')
      await broker.talk('ed', { to: 'dora' }, 'live note')
      await poll
      await broker.post('/unregister', { partnerId: 'ed' })
      // Every write a talk causes is done before it is answered.
      await broker.talk('dora', { to: 'ed' }, 'while ed is offline')
      for (const { dir } of projects) expect(readdirSync(dir)).toEqual([])
    } finally {
      for (const { dir } of projects) rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('defects of the original, in token mode', () => {
  let broker: TestBroker
  let tokens: Record<string, string>
  beforeAll(async () => {
    broker = await startTestBroker({ auth: 'token' })
    tokens = {}
    for (const id of ['alice', 'bob']) tokens[id] = (await broker.post('/register', { partnerId: id })).body.token
  })
  afterAll(() => broker.close())

  test('(5) talking as another partner is refused with 403 and appends nothing', async () => {
    const before = await broker.lastSeq()
    const forged = await broker.post(
      '/talk',
      { fromId: 'bob', to: 'alice', content: 'I am bob, honest' },
      { authorization: `Bearer ${tokens.alice}` },
    )
    expect(forged.status).toBe(403)
    expect(forged.body.error).toEqual(expect.any(String))
    expect(await broker.lastSeq()).toBe(before)
    const own = await broker.post('/talk', { fromId: 'alice', to: 'bob', content: 'hi' }, { authorization: `Bearer ${tokens.alice}` })
    expect(own.status).toBe(200)
  })
})
