// Memory bounded by bytes: pages cut by bytes resume exactly, and clients that never read hold one pull each.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import net from 'node:net'
import { eventually, LOAD, type Message, readSse, type TestBroker, startTestBroker } from './helpers.ts'

const BIG = 60 * 1024
const body = (i: number) => `${String(i).padStart(4, '0')}${'x'.repeat(BIG - 4)}`

/** A raw socket that sends one request and never reads its answer (Bun's node:net stops reading once paused). */
function stalled(url: string, path: string): net.Socket {
  const { hostname, port } = new URL(url)
  const socket = net.connect(Number(port), hostname, () => socket.write(`GET ${path} HTTP/1.1\r\nHost: ${hostname}\r\n\r\n`))
  socket.pause()
  socket.on('error', () => {})
  return socket
}

describe('pages cut by bytes (DUO_PAGE_KB=128)', () => {
  let broker: TestBroker
  let conversation: string
  const seqs: number[] = []
  beforeAll(async () => {
    broker = await startTestBroker({ ...LOAD, pageBytes: 128 * 1024 })
    await broker.register('alice', 'bob')
    for (let i = 0; i < 7; i++) {
      const sent = await broker.talk('alice', { to: 'bob' }, body(i))
      conversation = sent.conversationId
      seqs.push(sent.seq)
    }
  })
  afterAll(() => broker.close())

  test('history pages backwards with `before` and gets every message once, in order', async () => {
    const got: Message[] = []
    let before: number | undefined
    for (let pages = 0; pages < 10; pages++) {
      const reply = await broker.get(`/conversations/${conversation}/messages?limit=1000${before ? `&before=${before}` : ''}`)
      expect(reply.status).toBe(200)
      const page = reply.body.messages as Message[]
      if (page.length === 0) break
      // Two 60 KiB messages fit a 128 KiB page; a cut page says so.
      expect(page.length).toBeLessThanOrEqual(2)
      if (page[0]!.seq !== seqs[0]) expect(reply.body.truncated).toBe(true)
      got.unshift(...page)
      before = page[0]!.seq
    }
    expect(got.map((m) => m.seq)).toEqual(seqs)
    expect(got.map((m) => m.content)).toEqual(seqs.map((_, i) => body(i)))
  })

  test('a cursor long-poll pages forwards with `cursor` and misses nothing', async () => {
    const got: number[] = []
    let after = 0
    for (let pages = 0; pages < 10 && got.length < seqs.length; pages++) {
      const reply = await broker.get(`/listen/bob?after=${after}&wait=0`)
      expect(reply.status).toBe(200)
      expect(reply.body.messages.length).toBeLessThanOrEqual(2)
      got.push(...reply.body.messages.map((m: Message) => m.seq))
      after = reply.body.cursor
    }
    expect(got).toEqual(seqs)
  })

  test('legacy listen answers a page that fits and marks only that page read', async () => {
    await broker.register('carol')
    const direct = await broker.talk('carol', { to: 'bob' }, body(100))
    await broker.talk('carol', { to: 'bob' }, body(101))
    await broker.talk('carol', { to: 'bob' }, body(102))
    const first = await broker.get(`/listen/bob?timeout=0&conversationId=${direct.conversationId}`)
    expect(first.body.messages.map((m: Message) => m.content.slice(0, 4))).toEqual(['0100', '0101'])
    expect(first.body.truncated).toBe(true)
    expect(await eventually(async () => {
      const next = await broker.get(`/listen/bob?timeout=0&conversationId=${direct.conversationId}`)
      return next.body.messages.length === 1 && next.body.messages[0].content.startsWith('0102')
    })).toBe(true)
  })

  test('/events pages with `next` through big events without skipping one', async () => {
    const last = await broker.lastSeq()
    const got: number[] = []
    let after = 0
    for (let pages = 0; pages < 100 && after < last; pages++) {
      const reply = await broker.get(`/events?after=${after}&limit=1000`)
      expect(reply.status).toBe(200)
      got.push(...reply.body.events.map((e: { seq: number }) => e.seq))
      after = reply.body.next
    }
    expect(got).toEqual(Array.from({ length: last }, (_, i) => i + 1))
  })

  test('an SSE catch-up over big messages delivers them all, in order', async () => {
    const response = await fetch(`${broker.url}/listen/bob/stream?after=0&conversationId=${conversation}`)
    const sse = readSse(response)
    await sse.until((frames) => frames.filter((f) => f.event === 'message').length === seqs.length)
    expect(sse.data<Message>().map((m) => m.seq)).toEqual(seqs)
    await sse.cancel()
  })
})

describe('clients that never read (DUO_SEND_BUDGET_MB=1, DUO_PAGE_KB=16384)', () => {
  let broker: TestBroker
  let conversation: string
  beforeAll(async () => {
    // Pages larger than the kernel's socket buffers, so that a whole answer cannot hide in them.
    broker = await startTestBroker({ ...LOAD, sendBudgetBytes: 2 ** 20, pageBytes: 16 * 2 ** 20 })
    await broker.register('alice', 'bob')
    // 12 MB: more than the kernel's socket buffers take on loopback, so a non-reading client stalls the stream.
    for (let i = 0; i < 200; i++) conversation = (await broker.talk('alice', { to: 'bob' }, body(i))).conversationId
  })
  afterAll(() => broker.close())

  const pending = async () => (await broker.get('/health')).body.send_pending_bytes as number

  test('hold about one pull each; beyond the budget new big answers get 503 broker_busy, and it recovers', async () => {
    const sockets = Array.from({ length: 6 }, () => stalled(broker.url, '/events/stream?after=0'))
    try {
      // Six stalled streams, each holding one pull of at most about 256 KiB + one frame: over the 1 MiB budget.
      const full = await eventually(async () => (await pending()) >= 2 ** 20, 10_000)
      expect(full, `the stalled streams should hold over 1 MiB; they hold ${await pending()} bytes`).toBe(true)
      expect(await pending()).toBeLessThanOrEqual(6 * (256 + 64) * 1024)
      const refused = await broker.get(`/conversations/${conversation}/messages?limit=5`)
      expect(refused.status).toBe(503)
      expect(refused.body.reason).toBe('broker_busy')
      expect(refused.headers.get('retry-after')).toBe('1')
      // Small answers are not held up: health answers, and talk still works.
      expect((await broker.talk('bob', { to: 'alice' }, 'still here')).success).toBe(true)
    } finally {
      for (const socket of sockets) socket.destroy()
    }
    expect(await eventually(async () => (await pending()) === 0, 10_000)).toBe(true)
    const again = await broker.get(`/conversations/${conversation}/messages?limit=5`)
    expect(again.status).toBe(200)
    expect(again.body.messages).toHaveLength(5)
  })

  test('a history or long-poll client that never reads leaves nothing held once it goes', async () => {
    const sockets = [
      stalled(broker.url, `/conversations/${conversation}/messages?limit=1000`),
      stalled(broker.url, '/listen/bob?after=0&wait=0'),
      stalled(broker.url, '/listen/bob?timeout=0'),
    ]
    try {
      expect(await eventually(async () => (await pending()) > 0, 10_000)).toBe(true)
      expect(await pending()).toBeLessThanOrEqual(3 * 2 * 64 * 1024)
    } finally {
      for (const socket of sockets) socket.destroy()
    }
    expect(await eventually(async () => (await pending()) === 0, 10_000)).toBe(true)
    // The legacy listen never finished writing: nothing was marked read.
    const unread = await broker.get('/conversations/bob')
    expect(unread.body.conversations.find((c: { id: string }) => c.id === conversation).unread_count).toBe(200)
  })
})
