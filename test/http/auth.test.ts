// Identity and access in token mode, against a real broker on loopback: who may act, who may read, and where secrets go.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { hashToken, sameSecret } from '../../src/http/auth.ts'
import { ConfigError, configFromEnv } from '../../src/http/config.ts'
import { startBroker } from '../../src/http/server.ts'
import { type Answer, expectRefusal, type SecureBroker, startSecureBroker } from './secure-harness.ts'

const TOKEN_SHAPE = /^duo_[A-Za-z0-9_-]{43}$/ // 32 random bytes in base64url: 256 bits

/** Opens an SSE request and resolves with its status and type once the headers are in; the caller aborts it. */
async function openStream(url: string, token?: string) {
  const controller = new AbortController()
  const response = await fetch(url, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
    signal: AbortSignal.any([controller.signal, AbortSignal.timeout(10_000)]),
  })
  return { response, abort: () => controller.abort() }
}

describe('token mode: every request that acts as a partner', () => {
  let broker: SecureBroker
  let alice: string
  let bob: string
  let groupToLeave: string

  beforeAll(async () => {
    broker = await startSecureBroker()
    alice = await broker.register('alice')
    bob = await broker.register('bob')
    const created = await broker.call('POST', '/conversations', {
      token: alice,
      body: { creatorId: 'alice', name: 'to leave', participants: ['bob'] },
    })
    groupToLeave = created.body.conversation.id
  })
  afterAll(() => broker.close())

  const cases: Array<{ name: string; method: string; path: () => string; body?: () => unknown; stream?: boolean }> = [
    { name: 'talk', method: 'POST', path: () => '/talk', body: () => ({ fromId: 'alice', to: 'bob', content: 'hello' }) },
    { name: 'cursor listen', method: 'GET', path: () => '/listen/alice?after=0&wait=0' },
    { name: 'legacy listen', method: 'GET', path: () => '/listen/alice?timeout=0' },
    { name: 'ack', method: 'POST', path: () => '/listen/alice/ack', body: () => ({ cursor: 0 }) },
    { name: 'listen stream', method: 'GET', path: () => '/listen/alice/stream', stream: true },
    {
      name: 'create a group',
      method: 'POST',
      path: () => '/conversations',
      body: () => ({ creatorId: 'alice', name: 'plans', participants: ['bob'] }),
    },
    { name: 'leave', method: 'POST', path: () => `/conversations/${groupToLeave}/leave`, body: () => ({ partnerId: 'alice' }) },
    { name: 'status', method: 'POST', path: () => '/partners/alice/status', body: () => ({ message: 'busy' }) },
    { name: 'notifications', method: 'POST', path: () => '/partners/alice/notifications', body: () => ({ enabled: false }) },
    { name: 'conversation list', method: 'GET', path: () => '/conversations/alice' },
    { name: 're-register', method: 'POST', path: () => '/register', body: () => ({ partnerId: 'alice', name: 'Alice' }) },
    { name: 'unregister', method: 'POST', path: () => '/unregister', body: () => ({ partnerId: 'alice' }) },
  ]

  for (const c of cases) {
    test(`${c.name}: 401 without a token or with a wrong one, 403 with another's or the operator's, success with its own`, async () => {
      const send = (token?: string) => broker.call(c.method, c.path(), { token, body: c.body?.() })
      const before = await broker.lastSeq()
      expectRefusal(await send(), 401)
      expectRefusal(await send('duo_not-a-real-token'), 401)
      expectRefusal(await send(bob), 403)
      expectRefusal(await send(broker.adminToken), 403)
      expect(await broker.lastSeq()).toBe(before)

      if (c.stream) {
        const { response, abort } = await openStream(broker.url + c.path(), alice)
        expect(response.status).toBe(200)
        expect(response.headers.get('content-type')).toStartWith('text/event-stream')
        abort()
        return
      }
      const own = await send(alice)
      expect(own.status).toBe(200)
      expect(own.body).not.toHaveProperty('error')
    })
  }

  test('a re-registration with its own token answers without a new token', async () => {
    const again = await broker.call('POST', '/register', { token: alice, body: { partnerId: 'alice' } })
    expect(again.status).toBe(200)
    expect(again.body).not.toHaveProperty('token')
    // ...and the token still works.
    expect((await broker.call('GET', '/conversations/alice', { token: alice })).status).toBe(200)
  })

  test('first registrations of one id racing: exactly one gets a token, the others are refused', async () => {
    const before = await broker.lastSeq()
    const answers = await Promise.all(
      Array.from({ length: 40 }, () => broker.call('POST', '/register', { body: { partnerId: 'racer', name: 'r' } })),
    )
    const winners = answers.filter((a) => a.status === 200)
    expect(winners).toHaveLength(1)
    expect(winners[0]!.body.token).toMatch(TOKEN_SHAPE)
    for (const loser of answers.filter((a) => a.status !== 200)) expectRefusal(loser, 401)
    expect(await broker.lastSeq()).toBe(before + 1)
  })

  test('/partners needs a partner or operator token; /health needs none', async () => {
    expectRefusal(await broker.call('GET', '/partners'), 401)
    expectRefusal(await broker.call('GET', '/partners', { token: 'duo_wrong' }), 401)
    expect((await broker.call('GET', '/partners', { token: bob })).status).toBe(200)
    expect((await broker.call('GET', '/partners', { token: broker.adminToken })).status).toBe(200)
    const health = await broker.call('GET', '/health')
    expect(health.status).toBe(200)
    expect(health.body.auth).toBe('token')
  })

  test('an Authorization header that is not a bearer token counts as none (401)', async () => {
    for (const authorization of [`Basic ${btoa('alice:x')}`, 'Bearer', `Bearer ${alice} extra`, `Bearer ${alice}, Bearer ${bob}`])
      expectRefusal(await broker.call('GET', '/conversations/alice', { headers: { authorization } }), 401)
  })
})

describe('a partner sees only the conversations it takes part in', () => {
  let broker: SecureBroker
  let alice: string
  let bob: string
  let carol: string
  let group: string

  beforeAll(async () => {
    broker = await startSecureBroker()
    alice = await broker.register('alice')
    bob = await broker.register('bob')
    carol = await broker.register('carol')
    const created = await broker.call('POST', '/conversations', {
      token: alice,
      body: { creatorId: 'alice', name: 'secret plans', participants: ['bob'] },
    })
    group = created.body.conversation.id
    await broker.call('POST', '/talk', { token: alice, body: { fromId: 'alice', conversationId: group, content: 'group secret 1' } })
    await broker.call('POST', '/talk', { token: alice, body: { fromId: 'alice', to: 'bob', content: 'direct secret 1' } })
  })
  afterAll(() => broker.close())

  test('an outsider cannot post into a group (403) and nothing is appended', async () => {
    const before = await broker.lastSeq()
    expectRefusal(await broker.call('POST', '/talk', { token: carol, body: { fromId: 'carol', conversationId: group, content: 'let me in' } }), 403)
    expectRefusal(
      await broker.call('POST', '/talk', { token: carol, body: { fromId: 'carol', conversationId: 'direct_alice_bob', content: 'hi' } }),
      403,
    )
    expectRefusal(await broker.call('POST', `/conversations/${group}/leave`, { token: carol, body: { partnerId: 'carol' } }), 403)
    expect(await broker.lastSeq()).toBe(before)
  })

  test('an outsider cannot read its history or participants; without a token nobody learns whether it exists', async () => {
    for (const path of [`/conversations/${group}/messages`, `/conversations/${group}/participants`, '/conversations/direct_alice_bob/messages']) {
      expectRefusal(await broker.call('GET', path, { token: carol }), 403)
      expectRefusal(await broker.call('GET', path), 401)
    }
    expectRefusal(await broker.call('GET', '/conversations/group_nope/messages'), 401)
    expectRefusal(await broker.call('GET', '/conversations/group_nope/messages', { token: carol }), 404)
    const member = await broker.call('GET', `/conversations/${group}/messages`, { token: bob })
    expect(member.body.messages.map((m: { content: string }) => m.content)).toEqual(['group secret 1'])
    const operator = await broker.call('GET', `/conversations/${group}/participants`, { token: broker.adminToken })
    expect(operator.body.participants.map((p: { id: string }) => p.id)).toEqual(['alice', 'bob'])
  })

  test("an outsider's conversation list shows neither the group nor others' direct conversations, and no unread", async () => {
    const own = await broker.call('GET', '/conversations/carol', { token: carol })
    expect(own.body.conversations).toEqual([])
    const bobs = await broker.call('GET', '/conversations/bob', { token: bob })
    expect(bobs.body.conversations.map((c: { id: string }) => c.id).sort()).toEqual(['direct_alice_bob', group].sort())
    expect(bobs.body.conversations.every((c: { unread_count: number }) => c.unread_count === 1)).toBe(true)
  })

  test('an outsider cannot listen to, stream or acknowledge a conversation it is not in (403)', async () => {
    const before = await broker.lastSeq()
    expectRefusal(await broker.call('GET', `/listen/carol?after=0&wait=0&conversationId=${group}`, { token: carol }), 403)
    expectRefusal(await broker.call('GET', `/listen/carol?timeout=0&conversationId=${group}`, { token: carol }), 403)
    expectRefusal(await broker.call('GET', `/listen/carol/stream?conversationId=${group}`, { token: carol }), 403)
    expectRefusal(await broker.call('POST', '/listen/carol/ack', { token: carol, body: { cursor: before, conversationId: group } }), 403)
    expect(await broker.lastSeq()).toBe(before)
  })

  test('an outsider is not woken by, nor streamed, nor handed the messages of others', async () => {
    const start = await broker.lastSeq()
    const stream = await openStream(`${broker.url}/listen/carol/stream?after=0`, carol)
    expect(stream.response.status).toBe(200)
    const carolPoll = broker.call('GET', `/listen/carol?after=${start}&wait=1`, { token: carol })
    const bobPoll = broker.call('GET', `/listen/bob?after=${start}&wait=10`, { token: bob })
    await broker.untilParked(3)
    await broker.call('POST', '/talk', { token: alice, body: { fromId: 'alice', conversationId: group, content: 'group secret 2' } })
    await broker.call('POST', '/talk', { token: alice, body: { fromId: 'alice', to: 'bob', content: 'direct secret 2' } })

    // The member is woken with it (so the outsider's silence below is not a broken wake-up).
    const bobAnswer = await bobPoll
    expect(bobAnswer.body.messages.map((m: { content: string }) => m.content)).toContain('group secret 2')
    const carolAnswer = await carolPoll
    expect(carolAnswer.status).toBe(200)
    expect(carolAnswer.body.messages).toEqual([])

    // A message that is for carol arrives after the others: had they leaked into her stream, they would come first.
    await broker.call('POST', '/talk', { token: bob, body: { fromId: 'bob', to: 'carol', content: 'for carol' } })
    const reader = stream.response.body!.getReader()
    let text = ''
    while (!text.includes('for carol')) {
      const { value, done } = await reader.read()
      if (done) break
      text += new TextDecoder().decode(value)
    }
    stream.abort()
    expect(text).toContain('for carol')
    expect(text).not.toContain('secret')

    const legacy = await broker.call('GET', '/listen/carol?timeout=0', { token: carol })
    expect(legacy.body.messages.map((m: { content: string }) => m.content)).toEqual(['for carol'])
  })
})

describe('the operator token', () => {
  let broker: SecureBroker
  let alice: string
  let bob: string

  beforeAll(async () => {
    broker = await startSecureBroker()
    alice = await broker.register('alice')
    bob = await broker.register('bob')
  })
  afterAll(() => broker.close())

  test('reads /events; a partner token cannot (403), none or a wrong one cannot (401)', async () => {
    expectRefusal(await broker.call('GET', '/events'), 401)
    expectRefusal(await broker.call('GET', '/events', { token: 'duo_admin_guess' }), 401)
    expectRefusal(await broker.call('GET', '/events', { token: alice }), 403)
    const page = await broker.call('GET', '/events', { token: broker.adminToken })
    expect(page.status).toBe(200)
    expect(page.body.events.map((e: { type: string }) => e.type)).toEqual(['PartnerRegistered', 'PartnerRegistered'])
  })

  test('streams /events/stream; a partner token cannot (403), none cannot (401)', async () => {
    expectRefusal(await broker.call('GET', '/events/stream'), 401)
    expectRefusal(await broker.call('GET', '/events/stream', { token: bob }), 403)
    const { response, abort } = await openStream(`${broker.url}/events/stream`, broker.adminToken)
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toStartWith('text/event-stream')
    abort()
  })

  test('reissues a partner token: only with the operator token, and the old token stops working', async () => {
    const before = await broker.lastSeq()
    expectRefusal(await broker.call('POST', '/partners/alice/token'), 401)
    expectRefusal(await broker.call('POST', '/partners/alice/token', { token: alice }), 403)
    expectRefusal(await broker.call('POST', '/partners/alice/token', { token: bob }), 403)
    expectRefusal(await broker.call('POST', '/partners/nobody/token', { token: broker.adminToken }), 404)
    expect(await broker.lastSeq()).toBe(before)

    const reissued = await broker.call('POST', '/partners/alice/token', { token: broker.adminToken })
    expect(reissued.status).toBe(200)
    const fresh: string = reissued.body.token
    expect(fresh).toMatch(TOKEN_SHAPE)
    expect(fresh).not.toBe(alice)

    const talk = (token: string) =>
      broker.call('POST', '/talk', { token, body: { fromId: 'alice', to: 'bob', content: 'after the reissue' } })
    expectRefusal(await talk(alice), 401)
    expectRefusal(await broker.call('GET', '/conversations/alice', { token: alice }), 401)
    expect((await talk(fresh)).status).toBe(200)
    expect((await broker.call('POST', '/register', { token: fresh, body: { partnerId: 'alice' } })).status).toBe(200)

    const events = (await broker.call('GET', `/events?after=${before}&type=PartnerTokenReissued`, { token: broker.adminToken })).body.events
    expect(events).toEqual([expect.objectContaining({ data: { partnerId: 'alice', tokenHash: hashToken(fresh) } })])
    alice = fresh
  })

  test('a reissue ends the long-polls and streams opened with the old token', async () => {
    const last = await broker.lastSeq()
    // Nothing unread, so the legacy long-poll below waits too.
    expect((await broker.call('POST', '/listen/bob/ack', { token: bob, body: { cursor: last } })).status).toBe(200)
    const stream = await openStream(`${broker.url}/listen/bob/stream?after=${last}`, bob)
    expect(stream.response.status).toBe(200)
    const poll = broker.call('GET', `/listen/bob?after=${last}&wait=20`, { token: bob })
    const legacy = broker.call('GET', '/listen/bob?timeout=1', { token: bob })
    await broker.untilParked(3)
    const started = Date.now()
    const reissued = await broker.call('POST', '/partners/bob/token', { token: broker.adminToken })
    expect(reissued.status).toBe(200)

    expectRefusal(await poll, 401)
    expectRefusal(await legacy, 401)
    const reader = stream.response.body!.getReader()
    let text = ''
    for (;;) {
      const { value, done } = await reader.read()
      if (done) break
      text += new TextDecoder().decode(value)
    }
    expect(Date.now() - started).toBeLessThan(3000)
    // A message sent now does not reach the ended stream; the new token listens as usual.
    await broker.call('POST', '/talk', { token: alice, body: { fromId: 'alice', to: 'bob', content: 'after bob’s reissue' } })
    expect(text).not.toContain('after bob’s reissue')
    const again = await broker.call('GET', `/listen/bob?after=${last}&wait=0`, { token: reissued.body.token })
    expect(again.body.messages.map((m: { content: string }) => m.content)).toContain('after bob’s reissue')
  })
})

describe('secrets', () => {
  let broker: SecureBroker
  const tokens: string[] = []
  const logged: string[] = []
  const original = { log: console.log, error: console.error, warn: console.warn, info: console.info }

  beforeAll(async () => {
    for (const name of ['log', 'error', 'warn', 'info'] as const)
      console[name] = (...args: unknown[]) => {
        logged.push(args.map(String).join(' '))
        original[name](...args)
      }
    broker = await startSecureBroker()
    tokens.push(await broker.register('alice'), await broker.register('bob'))
    const [alice] = tokens as [string, string]
    const created = await broker.call('POST', '/conversations', {
      token: alice,
      body: { creatorId: 'alice', name: 'g', participants: ['bob'] },
    })
    await broker.call('POST', '/talk', { token: alice, body: { fromId: 'alice', conversationId: created.body.conversation.id, content: 'x' } })
    await broker.call('POST', '/talk', { token: alice, body: { fromId: 'alice', to: 'bob', content: 'y' } })
    const reissued = await broker.call('POST', '/partners/bob/token', { token: broker.adminToken })
    tokens.push(reissued.body.token)
    // A failing request that carries a token must not echo it either.
    await broker.call('POST', '/talk', { token: alice, body: { fromId: 'bob', to: 'alice', content: 'z' } })
  })
  afterAll(async () => {
    Object.assign(console, original)
    await broker.close()
  })

  test('tokens are 256 random bits, all different', () => {
    for (const token of tokens) expect(token).toMatch(TOKEN_SHAPE)
    expect(new Set(tokens).size).toBe(tokens.length)
  })

  test('no GET answer contains a token; /events holds only their sha-256', async () => {
    const [alice] = tokens as [string]
    const reads: Answer[] = []
    for (const path of ['/health', '/partners', '/conversations/alice', '/conversations/direct_alice_bob/messages', '/docs/json'])
      reads.push(await broker.call('GET', path, { token: alice }))
    reads.push(await broker.call('GET', '/conversations/direct_alice_bob/participants', { token: alice }))
    const events = await broker.call('GET', '/events?limit=1000', { token: broker.adminToken })
    reads.push(events)
    for (const read of reads) expect(read.status).toBe(200)
    const all = reads.map((r) => r.text).join('\n')
    for (const secret of [...tokens, broker.adminToken]) expect(all).not.toContain(secret)
    const hashes = events.body.events.flatMap((e: { data: { tokenHash?: string } }) => (e.data.tokenHash ? [e.data.tokenHash] : []))
    expect(hashes).toEqual(tokens.map(hashToken))
    // Nor does the partner list show the hashes.
    expect(reads[1]!.text).not.toContain(hashToken(alice))
  })

  test('the database files hold no token, neither a partner’s nor the operator’s', () => {
    const files = ['duo.db', 'duo.db-wal'].map((f) => join(broker.dir, f)).filter(existsSync)
    expect(files.length).toBeGreaterThan(0)
    const bytes = Buffer.concat(files.map((f) => readFileSync(f)))
    expect(bytes.includes(Buffer.from(hashToken(tokens[0]!)))).toBe(true) // the search does find what is there
    for (const secret of [...tokens, broker.adminToken]) expect(bytes.includes(Buffer.from(secret))).toBe(false)
  })

  test('nothing the broker logged contains a token', () => {
    const text = logged.join('\n')
    for (const secret of [...tokens, broker.adminToken]) expect(text).not.toContain(secret)
  })

  test('secrets are compared through fixed-length digests (equal, unequal, different lengths)', () => {
    expect(sameSecret('duo_abc', 'duo_abc')).toBe(true)
    expect(sameSecret('duo_abc', 'duo_abd')).toBe(false)
    expect(sameSecret('duo_abc', 'duo_abc_longer')).toBe(false)
    expect(sameSecret('', 'x')).toBe(false)
  })
})

describe('the operator token file', () => {
  test('is generated beside the database with mode 0600, kept across restarts, and its path printed', async () => {
    const first = await startSecureBroker()
    const file = `${first.dbPath}.admin-token`
    try {
      expect(first.adminTokenFile).toBe(file)
      expect(statSync(file).mode & 0o777).toBe(0o600)
      expect(readFileSync(file, 'utf8').trim()).toBe(first.adminToken)
      expect(first.adminToken.length).toBeGreaterThanOrEqual(32)
      await first.stop()
      const second = await startBroker({ ...configFromEnv({}), host: '127.0.0.1', port: 0, dbPath: first.dbPath, sync: 'normal' })
      expect(second.adminToken).toBe(first.adminToken)
      await second.stop()

      // `bun run broker` prints where the file is (never the token itself).
      const child = Bun.spawn(['bun', 'src/broker.ts'], {
        env: { ...process.env, DUO_DB: first.dbPath, BROKER_PORT: '0', BROKER_HOST: '127.0.0.1', DUO_AUTH: 'token', DUO_ADMIN_TOKEN: '' },
        stdout: 'pipe',
        stderr: 'pipe',
      })
      const killer = setTimeout(() => child.kill('SIGKILL'), 10_000)
      const reader = child.stdout.getReader()
      let out = ''
      while (!out.includes('operator token file:')) {
        const { value, done } = await reader.read()
        if (done) break
        out += new TextDecoder().decode(value)
      }
      child.kill('SIGTERM')
      await child.exited
      clearTimeout(killer)
      expect(out).toContain(`operator token file: ${file}`)
      expect(out).not.toContain(first.adminToken)
    } finally {
      await first.close().catch(() => {})
    }
  })

  test('a file left with a looser mode is tightened to 0600 on start', async () => {
    const first = await startSecureBroker()
    const file = first.adminTokenFile!
    await first.stop()
    chmodSync(file, 0o644)
    const again = await startBroker({ ...configFromEnv({}), host: '127.0.0.1', port: 0, dbPath: first.dbPath, sync: 'normal' })
    try {
      expect(statSync(file).mode & 0o777).toBe(0o600)
      expect(again.adminToken).toBe(first.adminToken)
    } finally {
      await again.stop()
      await first.close().catch(() => {})
    }
  })

  test('DUO_ADMIN_TOKEN replaces the file; a database in memory gets a fresh token each start', async () => {
    const configured = await startSecureBroker({ adminToken: 'operator-secret-0123456789' })
    try {
      expect(configured.adminTokenFile).toBeNull()
      expect(existsSync(`${configured.dbPath}.admin-token`)).toBe(false)
      expect((await configured.call('GET', '/events', { token: 'operator-secret-0123456789' })).status).toBe(200)
    } finally {
      await configured.close()
    }
    const memory = await startBroker({ ...configFromEnv({}), host: '127.0.0.1', port: 0, dbPath: ':memory:' })
    try {
      expect(memory.adminTokenFile).toBeNull()
      expect(memory.adminToken.length).toBeGreaterThanOrEqual(32)
    } finally {
      await memory.stop()
    }
    expect(() => configFromEnv({ DUO_ADMIN_TOKEN: 'short' })).toThrow(ConfigError)
  })
})

describe('open mode', () => {
  test('is refused at start on a non-loopback host unless DUO_ALLOW_OPEN_NETWORK=1', () => {
    for (const host of ['0.0.0.0', '::', '192.168.1.20', 'duo.example.com'])
      expect(() => configFromEnv({ BROKER_HOST: host, DUO_AUTH: 'open' })).toThrow(/DUO_ALLOW_OPEN_NETWORK/)
    expect(configFromEnv({ BROKER_HOST: '0.0.0.0', DUO_AUTH: 'open', DUO_ALLOW_OPEN_NETWORK: '1' }).auth).toBe('open')
    expect(configFromEnv({ BROKER_HOST: '0.0.0.0', DUO_AUTH: 'token' }).auth).toBe('token')
    for (const host of ['127.0.0.1', 'localhost', '::1'])
      expect(configFromEnv({ BROKER_HOST: host, DUO_AUTH: 'open' }).host).toBe(host)
  })

  test('`bun run broker` says so in one line and exits non-zero', async () => {
    const child = Bun.spawn(['bun', 'src/broker.ts'], {
      env: { ...process.env, BROKER_HOST: '0.0.0.0', DUO_AUTH: 'open', DUO_ALLOW_OPEN_NETWORK: '', BROKER_PORT: '0', DUO_DB: ':memory:' },
      stdout: 'pipe',
      stderr: 'pipe',
    })
    const killer = setTimeout(() => child.kill('SIGKILL'), 10_000)
    const code = await child.exited
    clearTimeout(killer)
    const stderr = await new Response(child.stderr).text()
    expect(code).not.toBe(0)
    expect(stderr.trim().split('\n')).toHaveLength(1)
    expect(stderr).toContain('DUO_ALLOW_OPEN_NETWORK=1')
  })

  describe('on loopback, refuses what web pages send', () => {
    let broker: SecureBroker
    beforeAll(async () => {
      broker = await startSecureBroker({ auth: 'open' })
      await broker.call('POST', '/register', { body: { partnerId: 'alice' } })
      await broker.call('POST', '/register', { body: { partnerId: 'bob' } })
    })
    afterAll(() => broker.close())

    const talk = { fromId: 'alice', to: 'bob', content: 'from a web page' }

    test('a cross-site request, a foreign Origin or a rebound Host is 403 and changes nothing', async () => {
      const before = await broker.lastSeq()
      expectRefusal(await broker.call('POST', '/talk', { body: talk, headers: { origin: 'https://evil.example' } }), 403)
      expectRefusal(await broker.call('POST', '/talk', { body: talk, headers: { origin: 'null' } }), 403)
      expectRefusal(await broker.call('GET', '/listen/bob?timeout=0', { headers: { 'sec-fetch-site': 'cross-site' } }), 403)
      expectRefusal(await broker.call('GET', '/listen/bob?timeout=0', { headers: { host: `evil.example:${broker.port}` } }), 403)
      expect(await broker.lastSeq()).toBe(before)
    })

    test('a form post (the one body a page can send without a preflight) is refused', async () => {
      const before = await broker.lastSeq()
      const form = await broker.call('POST', '/talk', {
        body: 'fromId=alice&to=bob&content=x',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      })
      expectRefusal(form, 400)
      const text = await broker.call('POST', '/talk', { body: JSON.stringify(talk), headers: { 'content-type': 'text/plain' } })
      expectRefusal(text, 400)
      expect(await broker.lastSeq()).toBe(before)
    })

    test("local programs and the broker's own pages still work; a page of another loopback origin does not", async () => {
      expect((await broker.call('POST', '/talk', { body: talk })).status).toBe(200)
      const own = { origin: `http://127.0.0.1:${broker.port}`, 'sec-fetch-site': 'same-origin' }
      expect((await broker.call('POST', '/talk', { body: talk, headers: own })).status).toBe(200)
      expect((await broker.call('GET', '/health', { headers: { host: `localhost:${broker.port}` } })).status).toBe(200)
      // Any page on the machine (a dev server at localhost:5173) is still a web page, not the broker's console.
      const local = await broker.call('POST', '/talk', { body: talk, headers: { origin: 'http://localhost:5173' } })
      expectRefusal(local, 403)
      expect(local.body.reason).toBe('web_page_refused')
    })

    test('with DUO_ALLOW_OPEN_NETWORK=1 the Host is not checked (a reverse proxy may forward any), web pages still are', async () => {
      const networked = await startSecureBroker({ auth: 'open', allowOpenNetwork: true })
      try {
        expect((await networked.call('GET', '/health', { headers: { host: 'duo.example.com' } })).status).toBe(200)
        const fromPage = await networked.call('GET', '/partners', { headers: { origin: 'https://evil.example' } })
        expectRefusal(fromPage, 403)
        const crossSite = await networked.call('GET', '/partners', { headers: { 'sec-fetch-site': 'cross-site' } })
        expectRefusal(crossSite, 403)
      } finally {
        await networked.close()
      }
    })
  })
})
