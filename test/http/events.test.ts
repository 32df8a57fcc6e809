// The event-cursor API over HTTP: /events paging and filters, and the /events/stream SSE of the whole log.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { LOAD, type TestBroker, eventually, readSse, startTestBroker } from './helpers.ts'

type Envelope = { seq: number; type: string; at: string; data: Record<string, unknown>; hash: string }

describe('GET /events', () => {
  let broker: TestBroker
  let groupId: string
  beforeAll(async () => {
    broker = await startTestBroker()
    await broker.register('alice', 'bob', 'carol')
    await broker.talk('alice', { to: 'bob' }, 'one')
    groupId = (await broker.post('/conversations', { creatorId: 'carol', name: 'G', participants: ['alice'] })).body.conversation.id
    await broker.talk('carol', { conversationId: groupId }, 'two')
    await broker.talk('bob', { to: 'alice' }, 'three')
  })
  afterAll(() => broker.close())

  test('pages the log from a cursor with next', async () => {
    const all = (await broker.get('/events')).body
    expect(all.events.map((e: Envelope) => e.seq)).toEqual(Array.from({ length: all.events.length }, (_, i) => i + 1))
    expect(all.next).toBe(all.events.length)
    expect(all.events[0]).toEqual({
      seq: 1,
      type: 'PartnerRegistered',
      at: expect.stringMatching(/Z$/),
      data: expect.objectContaining({ partnerId: 'alice' }),
      hash: expect.stringMatching(/^[0-9a-f]{64}$/),
    })

    const pages: number[][] = []
    let after = 0
    for (;;) {
      const page = (await broker.get(`/events?after=${after}&limit=3`)).body
      if (page.events.length === 0) {
        expect(page.next).toBe(after)
        break
      }
      pages.push(page.events.map((e: Envelope) => e.seq))
      after = page.next
    }
    expect(pages.flat()).toEqual(all.events.map((e: Envelope) => e.seq))
    expect(pages.every((p) => p.length <= 3)).toBe(true)
  })

  test('filters by type, conversation and partner', async () => {
    const byType = (await broker.get('/events?type=MessageSent')).body.events as Envelope[]
    expect(byType.map((e) => e.data.content)).toEqual(['one', 'two', 'three'])
    const byConversation = (await broker.get(`/events?conversation=${groupId}`)).body.events as Envelope[]
    expect(byConversation.map((e) => e.type)).toEqual(['ConversationCreated', 'MessageSent'])
    const byPartner = (await broker.get('/events?partner=bob&type=MessageSent')).body.events as Envelope[]
    expect(byPartner.map((e) => e.data.content)).toEqual(['three'])
    const filteredPage = (await broker.get('/events?type=MessageSent&limit=1')).body
    expect(filteredPage.events).toHaveLength(1)
    const rest = (await broker.get(`/events?type=MessageSent&after=${filteredPage.next}`)).body.events as Envelope[]
    expect(rest.map((e) => e.data.content)).toEqual(['two', 'three'])
  })

  test('a cursor beyond the end is 409 with the last seq; the end itself is an empty page', async () => {
    const last = await broker.lastSeq()
    expect((await broker.get(`/events?after=${last}`)).body).toEqual({ events: [], next: last })
    const ahead = await broker.get(`/events?after=${last + 1}`)
    expect(ahead.status).toBe(409)
    expect(ahead.body).toEqual({ error: expect.any(String), reason: 'cursor_ahead', last_seq: last })
  })

  test.each(['after=-1', 'after=abc', 'limit=0', 'limit=1001', 'type=NoSuchEvent', 'partner=..', 'conversation=a%20b'])(
    'refuses %s with 400 {error}',
    async (query) => {
      const reply = await broker.get(`/events?${query}`)
      expect(reply.status).toBe(400)
      expect(reply.body.error).toEqual(expect.any(String))
    },
  )
})

describe('GET /events in token mode', () => {
  let broker: TestBroker
  beforeAll(async () => {
    broker = await startTestBroker({ auth: 'token' })
  })
  afterAll(() => broker.close())

  test('needs the operator token (401 without, 403 with a partner token)', async () => {
    const token = (await broker.post('/register', { partnerId: 'alice' })).body.token
    expect((await broker.get('/events')).status).toBe(401)
    expect((await broker.get('/events', { authorization: `Bearer ${token}` })).status).toBe(403)
    const ok = await broker.get('/events', { authorization: `Bearer ${broker.adminToken}` })
    expect(ok.status).toBe(200)
    expect(ok.body.events).toHaveLength(1)
    const stream = await fetch(`${broker.url}/events/stream`)
    expect(stream.status).toBe(401)
    expect(((await stream.json()) as any).error).toEqual(expect.any(String))
  })
})

describe('GET /events/stream', () => {
  let broker: TestBroker
  beforeAll(async () => {
    broker = await startTestBroker({ keepAliveMs: 200, ...LOAD })
    await broker.register('alice', 'bob')
    await broker.talk('alice', { to: 'bob' }, 'before')
  })
  afterAll(() => broker.close())

  const open = (query = '', headers: Record<string, string> = {}) => {
    const controller = new AbortController()
    return {
      controller,
      response: fetch(`${broker.url}/events/stream${query}`, { headers, signal: controller.signal }),
    }
  }

  test('replays from a cursor with the exact wire text, then delivers live', async () => {
    const { response } = open('?after=2')
    const res = await response
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toStartWith('text/event-stream')
    const sse = readSse(res)
    const past = (await broker.get('/events?after=2')).body.events as Envelope[]
    const wire = (e: Envelope) => `id: ${e.seq}\nevent: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`
    await sse.until((frames) => frames.filter((f) => f.id).length === past.length)
    expect(sse.state.text).toBe(`: connected\n\n${past.map(wire).join('')}`)

    const sent = await broker.talk('bob', { to: 'alice' }, 'live')
    await sse.until((frames) => frames.some((f) => f.id === String(sent.messageId)))
    const live = (await broker.get(`/events?after=${past.at(-1)!.seq}`)).body.events as Envelope[]
    expect(sse.state.text).toBe(`: connected\n\n${[...past, ...live].map(wire).join('')}`)
    await sse.cancel()
  })

  test('the Last-Event-ID header resumes and wins over ?after', async () => {
    const { response } = open('?after=0', { 'last-event-id': '3' })
    const sse = readSse(await response)
    const last = await broker.lastSeq()
    await sse.until((frames) => frames.some((f) => f.id === String(last)))
    const ids = sse.state.frames.filter((f) => f.id).map((f) => Number(f.id))
    expect(ids).toEqual(Array.from({ length: last - 3 }, (_, i) => i + 4))
    await sse.cancel()
  })

  test('sends keep-alive comments while idle', async () => {
    const { response } = open(`?after=${await broker.lastSeq()}`)
    const sse = readSse(await response)
    await sse.until((frames) => frames.filter((f) => f.comment === 'keep-alive').length >= 2, 3000)
    expect(sse.state.text).toStartWith(': connected\n\n: keep-alive\n\n')
    await sse.cancel()
  })

  test('refuses a cursor beyond the end (409 with last_seq) and a malformed one (400)', async () => {
    const last = await broker.lastSeq()
    const ahead = await fetch(`${broker.url}/events/stream?after=${last + 5}`)
    expect(ahead.status).toBe(409)
    expect(await ahead.json()).toEqual({ error: expect.any(String), reason: 'cursor_ahead', last_seq: last })
    const headerAhead = await fetch(`${broker.url}/events/stream`, { headers: { 'last-event-id': String(last + 1) } })
    expect(headerAhead.status).toBe(409)
    await headerAhead.body?.cancel()
    const bad = await fetch(`${broker.url}/events/stream?after=soon`)
    expect(bad.status).toBe(400)
    expect(((await bad.json()) as any).error).toEqual(expect.any(String))
  })

  test('replay then live has no gap and no reordering while appends race it', async () => {
    let writing = true
    const writer = (async () => {
      let n = 0
      while (writing) {
        await Promise.all([
          broker.talk('alice', { to: 'bob' }, `race ${n++}`),
          broker.talk('bob', { to: 'alice' }, `race ${n++}`),
        ])
      }
    })()
    // Readers join at different moments while the writer keeps appending.
    const readers = []
    const grown = async (by: number) => {
      const from = await broker.lastSeq()
      expect(await eventually(async () => (await broker.lastSeq()) >= from + by, 10_000, 5)).toBe(true)
    }
    for (let i = 0; i < 4; i++) {
      await grown(6)
      readers.push(readSse(await open('?after=0').response))
    }
    await grown(20)
    writing = false
    await writer
    const last = await broker.lastSeq()
    for (const sse of readers) {
      await sse.until((frames) => frames.some((f) => f.id === String(last)), 10_000)
      const ids = sse.state.frames.filter((f) => f.id !== undefined).map((f) => Number(f.id))
      expect(ids).toEqual(Array.from({ length: last }, (_, i) => i + 1))
      const data = sse.data<Envelope>()
      expect(data.map((e) => e.seq)).toEqual(ids)
      await sse.cancel()
    }
    expect(last).toBeGreaterThan(50)
    expect(await eventually(async () => (await broker.get('/health')).status === 200)).toBe(true)
  })
})
