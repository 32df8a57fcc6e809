// Three brokers on different ports sharing one PostgreSQL log: talk through all of them, wake-ups, presence, tokens.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { slowDescribe, slowTest } from '../slow.ts'
import { chainHash, GENESIS_HASH } from '../../src/events/log.ts'
import { runTool } from '../cli/run.ts'
import { eventually, LOAD, readSse, startTestBroker, type TestBroker } from '../http/helpers.ts'
import { freshDatabase, type TestDatabase } from './helpers.ts'

let database: TestDatabase
let brokers: TestBroker[] = []
const ADMIN = 'shared-operator-token-0123456789abcdef'

beforeAll(async () => {
  database = await freshDatabase('duo_brokers')
  // The poll is pushed out of the way: within these tests only LISTEN/NOTIFY can bring another broker's commit.
  brokers = await Promise.all([0, 1, 2].map(() => startTestBroker({ dbPath: database.url, pgPollMs: 600_000, ...LOAD })))
})
afterAll(async () => {
  for (const broker of brokers) await broker.close()
  await database.drop()
})

const isListening = async (broker: TestBroker, id: string) =>
  (await broker.get('/partners')).body.partners.find((p: { id: string }) => p.id === id)?.isListening === true

type Row = { seq: string; type: string; at: string; data: string; hash: string }
const allRows = async (): Promise<Row[]> => [...(await database.sql`SELECT seq, type, at, data, hash FROM events ORDER BY seq`)]

describe('three brokers in open mode', () => {
  test('share one broker id, the log\'s, in /health and /register (a partner keeps one token for them all)', async () => {
    const ids = await Promise.all(brokers.map(async (broker) => (await broker.get('/health')).body.broker_id))
    expect(ids[0]).toMatch(/^[0-9a-f]{32}$/)
    expect(new Set(ids).size).toBe(1)
    expect(brokers.map((b) => b.brokerId)).toEqual(ids)
    const [row] = await database.sql`SELECT broker_id FROM log_identity`
    expect(row.broker_id).toBe(ids[0])
  })

  test('concurrent talk through all three: every acknowledged message is in the log once, seq gap-free and chained', async () => {
    await brokers[0]!.register('alice', 'bob', 'carol')
    const acked: Array<{ content: string; seq: number }> = []
    const senders = ['alice', 'bob', 'carol'].map(async (from, s) => {
      for (let i = 0; i < 40; i++) {
        const broker = brokers[(s + i) % 3]!
        const to = from === 'alice' ? 'bob' : 'alice'
        const content = `${from} #${i} via ${broker.port}`
        const reply = await broker.talk(from, { to }, content)
        acked.push({ content, seq: reply.seq })
      }
    })
    await Promise.all(senders)
    const rows = await allRows()
    let prev = GENESIS_HASH
    rows.forEach((row, i) => {
      expect(Number(row.seq)).toBe(i + 1)
      expect(row.hash).toBe(chainHash(prev, i + 1, row.type, row.at, row.data))
      prev = row.hash
    })
    const stored = new Map<string, number[]>()
    for (const row of rows.filter((r) => r.type === 'MessageSent')) {
      const content = JSON.parse(row.data).content as string
      stored.set(content, [...(stored.get(content) ?? []), Number(row.seq)])
    }
    for (const { content, seq } of acked) expect(stored.get(content)).toEqual([seq])
    expect(runTool('src/cli/audit.ts', ['--db', database.url]).stdout).toContain('audit passed')
    // Every broker serves the same log.
    for (const broker of brokers) {
      const page = await broker.get(`/events?after=0&limit=1000`)
      expect(page.body.events.map((e: { hash: string }) => e.hash)).toEqual(rows.map((r) => r.hash))
    }
  })

  test('a long-poll on one broker is woken by a message sent through another', async () => {
    const [a, b] = [brokers[0]!, brokers[1]!]
    const cursor = await a.lastSeq()
    const started = Date.now()
    const poll = a.get(`/listen/bob?after=${cursor}&wait=15`)
    expect(await eventually(() => isListening(a, 'bob'), 5000)).toBe(true)
    const sent = await b.talk('alice', { to: 'bob' }, 'across brokers')
    const reply = await poll
    expect(reply.status).toBe(200)
    expect(reply.body.messages.map((m: { content: string }) => m.content)).toEqual(['across brokers'])
    expect(reply.body.cursor).toBe(sent.seq)
    // Far below the 15 s wait and the 600 s poll: the notification woke it.
    expect(Date.now() - started).toBeLessThan(10_000)
  })

  test('an SSE stream on one broker gets a message sent through another', async () => {
    const [a, c] = [brokers[0]!, brokers[2]!]
    const controller = new AbortController()
    const response = await fetch(`${a.url}/listen/bob/stream?after=${await a.lastSeq()}`, { signal: controller.signal })
    const stream = readSse(response)
    await stream.until((frames) => frames.some((f) => f.comment === 'connected'))
    const sent = await c.talk('carol', { to: 'bob' }, 'streamed across')
    await stream.until((frames) => frames.some((f) => f.id === String(sent.seq)), 10_000)
    expect(stream.data().map((m) => m.content)).toEqual(['streamed across'])
    controller.abort()
    await stream.cancel()
  })

  test("the operator's event stream on one broker shows events committed through the others, in seq order", async () => {
    const [a, b, c] = brokers as [TestBroker, TestBroker, TestBroker]
    const controller = new AbortController()
    const from = await a.lastSeq()
    const stream = readSse(await fetch(`${a.url}/events/stream?after=${from}`, { signal: controller.signal }))
    await stream.until((frames) => frames.some((f) => f.comment === 'connected'))
    const sent = [await b.talk('alice', { to: 'bob' }, 'via b'), await c.talk('bob', { to: 'alice' }, 'via c')]
    await stream.until((frames) => frames.some((f) => f.id === String(sent[1]!.seq)), 10_000)
    const seqs = stream.data<{ seq: number }>().map((e) => e.seq)
    expect(seqs).toEqual(Array.from({ length: sent[1]!.seq - from }, (_, i) => from + 1 + i))
    controller.abort()
    await stream.cancel()
  })

  test('a cursor handed out by one broker is resumed at once by another', async () => {
    const [a, b] = [brokers[0]!, brokers[1]!]
    const sent = await a.talk('alice', { to: 'carol' }, 'resume me elsewhere')
    const reply = await b.get(`/listen/carol?after=${sent.seq}&wait=0`)
    expect(reply.status).toBe(200)
    const history = await b.get(`/events?after=${sent.seq - 1}`)
    expect(history.body.events[0].seq).toBe(sent.seq)
  })

  test('a read position recorded through one broker holds on the others: unread counts and acks agree', async () => {
    const [a, b, c] = brokers as [TestBroker, TestBroker, TestBroker]
    await a.register('erin', 'frank')
    const first = await a.talk('erin', { to: 'frank' }, 'one')
    await b.talk('erin', { to: 'frank' }, 'two')
    const unread = async (broker: TestBroker) =>
      (await broker.get('/conversations/frank')).body.conversations.find((x: { id: string }) => x.id === first.conversationId)
        ?.unread_count
    expect(await unread(c)).toBe(2)
    const acked = await a.post('/listen/frank/ack', { cursor: first.seq })
    expect(acked.status).toBe(200)
    expect(await unread(b)).toBe(1)
    expect(await unread(c)).toBe(1)
    // The same ack again through another broker records nothing new.
    const again = await c.post('/listen/frank/ack', { cursor: first.seq })
    expect(again.body.acknowledged).toEqual([])
  })

  slowTest('presence counts a listener on every broker', async () => {
    const [a, b, c] = brokers as [TestBroker, TestBroker, TestBroker]
    const controller = new AbortController()
    const poll = fetch(`${a.url}/listen/carol?after=${await a.lastSeq()}&wait=30`, { signal: controller.signal }).catch(() => null)
    const listening = (broker: TestBroker) => isListening(broker, 'carol')
    expect(await eventually(async () => (await listening(b)) && (await listening(c)), 10_000)).toBe(true)
    expect((await c.get('/health')).body.listening).toBeGreaterThanOrEqual(1)
    controller.abort()
    await poll
    expect(await eventually(async () => !(await listening(c)), 10_000)).toBe(true)
  })
})

describe('a dropped LISTEN connection', () => {
  test('a message committed while the brokers were not listening still wakes the listener, without waiting for the poll', async () => {
    const [a, b] = [brokers[0]!, brokers[1]!]
    const cursor = await a.lastSeq()
    const poll = a.get(`/listen/bob?after=${cursor}&wait=15`)
    expect(await eventually(() => isListening(a, 'bob'), 5000)).toBe(true)
    // Every broker's LISTEN session is cut; the message below is committed before they are back.
    const cut = await database.sql`SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity
      WHERE datname = current_database() AND query ILIKE 'LISTEN%'`
    expect(cut.length).toBe(3)
    const sent = await b.talk('alice', { to: 'bob' }, 'sent while nobody listened')
    const reply = await poll
    expect(reply.body.messages.map((m: { seq: number }) => m.seq)).toEqual([sent.seq])
    // Back on LISTEN: the next message wakes at once again.
    expect(await eventually(async () => (await database.sql`SELECT 1 FROM pg_stat_activity
      WHERE datname = current_database() AND query ILIKE 'LISTEN%'`).length === 3, 10_000)).toBe(true)
    const next = a.get(`/listen/bob?after=${sent.seq}&wait=15`)
    expect(await eventually(() => isListening(a, 'bob'), 5000)).toBe(true)
    const again = await b.talk('alice', { to: 'bob' }, 'after the reconnect')
    expect((await next).body.messages.map((m: { seq: number }) => m.seq)).toEqual([again.seq])
  })
})

slowDescribe('two brokers with a short presence timeout', () => {
  let pair: TestBroker[] = []
  let pairDb: TestDatabase
  beforeAll(async () => {
    pairDb = await freshDatabase('duo_presence')
    pair = await Promise.all([0, 1].map(() => startTestBroker({ dbPath: pairDb.url, presenceTimeoutMs: 1500, pgPollMs: 600_000 })))
  })
  afterAll(async () => {
    for (const broker of pair) await broker.close()
    await pairDb.drop()
  })

  test('a partner active through one broker shows online, with that time as last_seen, through the other', async () => {
    const [a, b] = pair as [TestBroker, TestBroker]
    await a.register('dave')
    const status = async (broker: TestBroker) =>
      (await broker.get('/partners')).body.partners.find((p: { id: string }) => p.id === 'dave') as { status: string; last_seen: string }
    expect(await eventually(async () => (await status(b)).status === 'offline', 10_000)).toBe(true)
    const active = Date.now()
    expect((await a.get('/listen/dave?after=0&wait=0')).status).toBe(200)
    expect(await eventually(async () => (await status(b)).status === 'online', 10_000)).toBe(true)
    expect(Date.parse((await status(b)).last_seen)).toBeGreaterThanOrEqual(active - 5)
  })
})

describe('three brokers in token mode', () => {
  let tokenBrokers: TestBroker[] = []
  let tokenDb: TestDatabase
  beforeAll(async () => {
    tokenDb = await freshDatabase('duo_tokens')
    tokenBrokers = await Promise.all(
      [0, 1, 2].map(() => startTestBroker({ dbPath: tokenDb.url, auth: 'token', pgPollMs: 600_000 })),
    )
  })
  afterAll(async () => {
    for (const broker of tokenBrokers) await broker.close()
    await tokenDb.drop()
  })

  test('a token issued through one broker is accepted at once by the others; a wrong one is refused by all', async () => {
    const [a, b, c] = tokenBrokers as [TestBroker, TestBroker, TestBroker]
    const alice = await a.post('/register', { partnerId: 'alice' })
    const bob = await a.post('/register', { partnerId: 'bob' })
    const auth = (token: string) => ({ authorization: `Bearer ${token}` })
    const sent = await b.post('/talk', { fromId: 'alice', to: 'bob', content: 'signed' }, auth(alice.body.token))
    expect(sent.status).toBe(200)
    const read = await c.get(`/listen/bob?after=0&wait=0`, auth(bob.body.token))
    expect(read.body.messages.map((m: { content: string }) => m.content)).toEqual(['signed'])
    const forged = await c.post('/talk', { fromId: 'alice', to: 'bob', content: 'forged' }, auth(bob.body.token))
    expect(forged.status).toBe(403)
    expect(forged.body.reason).toBe('acting_for_another')
  })

  test('a console sign-in through one broker holds on the others, and signing out through another ends it on all', async () => {
    const [a, b, c] = tokenBrokers as [TestBroker, TestBroker, TestBroker]
    const signIn = await fetch(`${a.url}/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token: a.adminToken }),
    })
    expect(signIn.status).toBe(200)
    const cookie = signIn.headers.get('set-cookie')!.split(';')[0]!
    for (const broker of [b, c]) {
      expect((await broker.get('/session', { cookie })).body).toMatchObject({ signedIn: true })
      expect((await broker.get('/events?after=0', { cookie })).status).toBe(200)
    }
    expect((await c.call('DELETE', '/session', undefined, { cookie })).status).toBe(200)
    for (const broker of [a, b]) {
      expect((await broker.get('/session', { cookie })).body).toMatchObject({ signedIn: false })
      const refused = await broker.get('/events?after=0', { cookie })
      expect(refused.status).toBe(401)
      expect(refused.body.reason).toBe('operator_token_required')
    }
  })

  test('the operator token is one for all brokers and kept in the database, not in a file', async () => {
    const tokens = new Set(tokenBrokers.map((b) => b.adminToken))
    expect(tokens.size).toBe(1)
    const [row] = await tokenDb.sql`SELECT token FROM duo_operator`
    expect(row.token).toBe(tokenBrokers[0]!.adminToken)
    for (const broker of tokenBrokers) {
      expect(broker.adminTokenFile).toBeNull()
      expect((await broker.get('/events?after=0', { authorization: `Bearer ${row.token}` })).status).toBe(200)
    }
  })
})
