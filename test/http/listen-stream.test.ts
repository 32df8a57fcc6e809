// GET /listen/:id/stream: a partner's messages as Server-Sent Events, replayed from a cursor and then live.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { LOAD, type Message, type TestBroker, eventually, readSse, startTestBroker } from './helpers.ts'

describe('GET /listen/:id/stream', () => {
  let broker: TestBroker
  beforeAll(async () => {
    broker = await startTestBroker({ keepAliveMs: 200, ...LOAD })
    await broker.register('alice', 'bob', 'carol')
  })
  afterAll(() => broker.close())

  const stream = async (partnerId: string, query = '', headers: Record<string, string> = {}) => {
    const response = await fetch(`${broker.url}/listen/${partnerId}/stream${query}`, { headers })
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toStartWith('text/event-stream')
    return readSse(response)
  }
  const wire = (m: Message) =>
    `id: ${m.seq}\nevent: message\ndata: ${JSON.stringify({
      id: m.id,
      seq: m.seq,
      conversation_id: m.conversation_id,
      from_id: m.from_id,
      from_kind: 'agent',
      content: m.content,
      created_at: m.created_at,
    })}\n\n`
  const historyOf = async (conversationId: string): Promise<Message[]> =>
    (await broker.get(`/conversations/${conversationId}/messages?limit=1000`)).body.messages
  const isListening = async (id: string): Promise<boolean> =>
    (await broker.get('/partners')).body.partners.find((p: { id: string }) => p.id === id).isListening

  test('replays from a cursor with the exact wire text, delivers live, and acknowledges nothing', async () => {
    const start = await broker.lastSeq()
    await broker.talk('alice', { to: 'bob' }, 'first')
    await broker.talk('bob', { to: 'alice' }, 'own, not shown')
    await broker.talk('carol', { to: 'bob' }, 'second "quoted"\nwith a newline')
    const sse = await stream('bob', `?after=${start}`)
    await sse.until((frames) => frames.filter((f) => f.event === 'message').length === 2)
    const past = [...(await historyOf('direct_alice_bob')), ...(await historyOf('direct_bob_carol'))]
      .filter((m) => m.from_id !== 'bob')
      .sort((a, b) => a.seq - b.seq)
    expect(sse.state.text).toBe(`: connected\n\n${past.map(wire).join('')}`)
    expect(await isListening('bob')).toBe(true)

    const live = await broker.talk('alice', { to: 'bob' }, 'live')
    await sse.until((frames) => frames.some((f) => f.id === String(live.messageId)))
    const liveMessage = (await historyOf('direct_alice_bob')).find((m) => m.seq === live.messageId)!
    expect(sse.state.text).toBe(`: connected\n\n${[...past, liveMessage].map(wire).join('')}`)

    const unread = (await broker.get('/conversations/bob')).body.conversations.map((c: { unread_count: number }) => c.unread_count)
    expect(unread.reduce((a: number, b: number) => a + b, 0)).toBe(3)
    await sse.cancel()
    expect(await eventually(async () => !(await isListening('bob')))).toBe(true)
  })

  test('resumes with Last-Event-ID, which wins over ?after', async () => {
    const all = (await broker.get('/listen/bob?after=0&wait=0')).body.messages as Message[]
    expect(all.length).toBeGreaterThanOrEqual(3)
    const sse = await stream('bob', '?after=0', { 'last-event-id': String(all[0]!.seq) })
    await sse.until((frames) => frames.some((f) => f.id === String(all.at(-1)!.seq)))
    expect(sse.data<Message>().map((m) => m.seq)).toEqual(all.slice(1).map((m) => m.seq))
    await sse.cancel()
  })

  test('shows one conversation with conversationId', async () => {
    const sse = await stream('bob', '?after=0&conversationId=direct_bob_carol')
    await broker.talk('alice', { to: 'bob' }, 'elsewhere')
    const mine = await broker.talk('carol', { to: 'bob' }, 'here')
    await sse.until((frames) => frames.some((f) => f.id === String(mine.messageId)))
    expect(sse.data<Message>().every((m) => m.conversation_id === 'direct_bob_carol')).toBe(true)
    await sse.cancel()
  })

  test('sends keep-alive comments while idle', async () => {
    const sse = await stream('carol', `?after=${await broker.lastSeq()}`)
    await sse.until((frames) => frames.filter((f) => f.comment === 'keep-alive').length >= 2, 3000)
    expect(sse.state.text).toStartWith(': connected\n\n: keep-alive\n\n: keep-alive\n\n')
    await sse.cancel()
  })

  test('refuses an unknown partner (404), a foreign conversation (403), a cursor ahead (409), a bad cursor (400)', async () => {
    const status = async (path: string, headers: Record<string, string> = {}) => {
      const response = await fetch(`${broker.url}${path}`, { headers })
      const body = (await response.json()) as { error: string; reason?: string; last_seq?: number }
      expect(body.error).toEqual(expect.any(String))
      return { status: response.status, body }
    }
    expect((await status('/listen/nobody/stream')).status).toBe(404)
    expect((await status('/listen/carol/stream?conversationId=direct_alice_bob')).status).toBe(403)
    const last = await broker.lastSeq()
    const ahead = await status(`/listen/bob/stream?after=${last + 10}`)
    expect(ahead).toEqual({ status: 409, body: { error: expect.any(String), reason: 'cursor_ahead', last_seq: last } })
    expect((await status('/listen/bob/stream', { 'last-event-id': String(last + 1) })).status).toBe(409)
    expect((await status('/listen/bob/stream?after=-2')).status).toBe(400)
  })

  test('replay then live has no gap and no reordering while messages race it', async () => {
    const start = await broker.lastSeq()
    let writing = true
    const sent: number[] = []
    const writer = (async () => {
      let n = 0
      while (writing) {
        const batch = await Promise.all([
          broker.talk('alice', { to: 'carol' }, `race ${n++}`),
          broker.talk('bob', { to: 'carol' }, `race ${n++}`),
          broker.talk('carol', { to: 'alice' }, `own ${n++}`),
        ])
        sent.push(batch[0].messageId, batch[1].messageId)
      }
    })()
    const readers = []
    const grown = async (by: number) => {
      const from = await broker.lastSeq()
      expect(await eventually(async () => (await broker.lastSeq()) >= from + by, 10_000, 5)).toBe(true)
    }
    for (let i = 0; i < 4; i++) {
      await grown(6)
      readers.push(await stream('carol', `?after=${start}`))
    }
    await grown(20)
    writing = false
    await writer
    sent.sort((a, b) => a - b)
    for (const sse of readers) {
      await sse.until((frames) => frames.some((f) => f.id === String(sent.at(-1))), 10_000)
      const ids = sse.state.frames.filter((f) => f.event === 'message').map((f) => Number(f.id))
      expect(ids).toEqual(sent)
      await sse.cancel()
    }
    expect(sent.length).toBeGreaterThan(30)
  })
})
