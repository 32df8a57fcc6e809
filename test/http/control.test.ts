// Conversation control through the real broker: the loop guard, rate limits, membership, retirement, stale partners.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { NO_RATE_LIMITS } from '../../src/http/rate-limits.ts'
import { eventually, startTestBroker, type TestBroker } from './helpers.ts'

const brokers: TestBroker[] = []
afterAll(async () => {
  for (const broker of brokers) await broker.close()
})
async function broker(...args: Parameters<typeof startTestBroker>): Promise<TestBroker> {
  const started = await startTestBroker(...args)
  brokers.push(started)
  return started
}
const bearer = (token: string) => ({ authorization: `Bearer ${token}` })
const eventTypes = async (b: TestBroker, after = 0) =>
  (await b.get(`/events?after=${after}&limit=1000`, bearer(b.adminToken))).body.events.map((e: { type: string }) => e.type)

describe('the loop guard (DUO_MAX_HOPS=4)', () => {
  let b: TestBroker
  beforeAll(async () => {
    b = await broker({ maxHops: 4 })
    await b.register('alice', 'bob')
    await b.post('/register', { partnerId: 'hugo', kind: 'human' })
  })

  test('pauses at exactly the 4th agent message, refuses the 5th with a text for a model, and shows the pause', async () => {
    for (let i = 0; i < 3; i++) await b.talk(i % 2 ? 'bob' : 'alice', { to: i % 2 ? 'alice' : 'bob' }, `m${i}`)
    const listed = async () => (await b.get('/conversations/alice')).body.conversations[0]
    expect(await listed()).toMatchObject({ id: 'direct_alice_bob', is_paused: false, hops: 3 })
    const before = await b.lastSeq()
    const fourth = await b.post('/talk', { fromId: 'bob', to: 'alice', content: 'm3' })
    expect(fourth.status).toBe(200)
    expect(await eventTypes(b, before)).toEqual(['MessageSent', 'ConversationPaused'])
    expect(fourth.body.seq).toBe(before + 1)
    expect(await listed()).toMatchObject({ is_paused: true, hops: 4 })

    const last = await b.lastSeq()
    const fifth = await b.post('/talk', { fromId: 'alice', conversationId: 'direct_alice_bob', content: 'm4' })
    expect(fifth.status).toBe(409)
    expect(fifth.body).toMatchObject({ reason: 'conversation_paused', conversationId: 'direct_alice_bob' })
    expect(fifth.body.error).toContain('wait for your human')
    expect(await b.lastSeq()).toBe(last)
  })

  test('resumes by a human message, which reaches the agents, and the count starts over', async () => {
    const before = await b.lastSeq()
    await b.talk('hugo', { conversationId: 'direct_alice_bob' }, 'Stop thanking each other.')
    expect(await eventTypes(b, before)).toEqual(['ConversationResumed', 'MessageSent'])
    expect((await b.get('/conversations/alice')).body.conversations[0]).toMatchObject({ is_paused: false, hops: 0 })
    expect((await b.post('/talk', { fromId: 'alice', to: 'bob', content: 'ok' })).status).toBe(200)
  })

  test('resumes by POST /conversations/:id/resume with the operator token; an agent or no token is refused', async () => {
    for (let i = 0; i < 3; i++) await b.talk('bob', { to: 'alice' }, `again ${i}`)
    expect((await b.post('/talk', { fromId: 'bob', to: 'alice', content: 'refused' })).body.reason).toBe('conversation_paused')

    const before = await b.lastSeq()
    const byAgent = await b.post('/conversations/direct_alice_bob/resume', { partnerId: 'alice' })
    expect(byAgent.status).toBe(403)
    expect(byAgent.body.reason).toBe('not_human')
    const anonymous = await b.post('/conversations/direct_alice_bob/resume', {})
    expect(anonymous.status).toBe(401)
    expect(anonymous.body.reason).toBe('operator_token_required')
    expect(await b.lastSeq()).toBe(before)

    const resumed = await b.post('/conversations/direct_alice_bob/resume', {}, bearer(b.adminToken))
    expect(resumed.status).toBe(200)
    expect(resumed.body).toMatchObject({ success: true, resumed: true, conversation: { id: 'direct_alice_bob', is_paused: false } })
    expect(await eventTypes(b, before)).toEqual(['ConversationResumed'])
    expect((await b.post('/talk', { fromId: 'bob', to: 'alice', content: 'back' })).status).toBe(200)
  })

  test('a human partner resumes by the endpoint too', async () => {
    for (let i = 0; i < 3; i++) await b.talk('alice', { to: 'bob' }, `more ${i}`)
    const resumed = await b.post('/conversations/direct_alice_bob/resume', { partnerId: 'hugo' })
    expect(resumed.body).toMatchObject({ success: true, resumed: true })
  })

  test('a person pauses a conversation by POST /conversations/:id/pause; agents are told who paused it', async () => {
    await b.post('/conversations/direct_alice_bob/resume', {}, bearer(b.adminToken))
    const byAgent = await b.post('/conversations/direct_alice_bob/pause', { partnerId: 'bob' })
    expect(byAgent.status).toBe(403)
    expect(byAgent.body.reason).toBe('not_human')
    const before = await b.lastSeq()
    const paused = await b.post('/conversations/direct_alice_bob/pause', { partnerId: 'hugo' })
    expect(paused.body).toMatchObject({ success: true, paused: true, conversation: { is_paused: true } })
    expect(await eventTypes(b, before)).toEqual(['ConversationPaused'])
    const refused = await b.post('/talk', { fromId: 'alice', to: 'bob', content: 'hm?' })
    expect(refused.status).toBe(409)
    expect(refused.body).toMatchObject({ reason: 'conversation_paused', paused_by: 'human' })
    expect(refused.body.error).toContain('paused by a human participant')
    expect((await b.post('/conversations/direct_alice_bob/pause', {}, bearer(b.adminToken))).body.paused).toBe(false)
    expect((await b.post('/conversations/direct_alice_bob/resume', { partnerId: 'hugo' })).body.resumed).toBe(true)
  })

  test('refuses to resume an unknown conversation', async () => {
    const reply = await b.post('/conversations/group_nope/resume', {}, bearer(b.adminToken))
    expect(reply.status).toBe(404)
    expect(reply.body.reason).toBe('unknown_conversation')
  })
})

describe('rate limits', () => {
  test('a burst of talk past the limit gets 429 with Retry-After and reason rate_limited, and stores nothing', async () => {
    const b = await broker({ rateLimits: { ...NO_RATE_LIMITS, talk: 5 } })
    await b.register('alice', 'bob')
    const replies = await Promise.all(Array.from({ length: 8 }, (_, i) => b.post('/talk', { fromId: 'alice', to: 'bob', content: `m${i}` })))
    expect(replies.map((r) => r.status).sort()).toEqual([200, 200, 200, 200, 200, 429, 429, 429])
    const refused = replies.find((r) => r.status === 429)!
    expect(refused.body).toMatchObject({ reason: 'rate_limited', retry_after_s: 12 })
    expect(refused.body.error).toContain('DUO_RATE_TALK_PER_MIN')
    expect(refused.headers.get('retry-after')).toBe('12')
    expect((await b.get('/conversations/direct_alice_bob/messages')).body.messages).toHaveLength(5)
    // Another sender has its own bucket.
    expect((await b.post('/talk', { fromId: 'bob', to: 'alice', content: 'hi' })).status).toBe(200)
  })

  test('a registration flood is refused per address while other clients are served at once', async () => {
    const b = await broker({ maxHops: 0, rateLimits: { ...NO_RATE_LIMITS, register: 20 } })
    await b.register('alice', 'bob')
    const before = await b.lastSeq()
    let flooding = true
    const health: number[] = []
    const probe = (async () => {
      while (flooding) {
        const started = performance.now()
        expect((await b.get('/health')).status).toBe(200)
        health.push(performance.now() - started)
      }
    })()
    const flood = await Promise.all(
      Array.from({ length: 10 }, async (_, worker) => {
        const statuses: number[] = []
        for (let i = 0; i < 100; i++) statuses.push((await b.post('/register', { partnerId: `bot${worker}_${i}` })).status)
        return statuses
      }),
    )
    const talk = await b.post('/talk', { fromId: 'alice', to: 'bob', content: 'still here' })
    flooding = false
    await probe
    const statuses = flood.flat()
    expect(statuses.filter((s) => s === 200)).toHaveLength(18) // the bucket held 20; alice and bob took 2
    expect(statuses.filter((s) => s === 429)).toHaveLength(1000 - 18)
    expect(talk.status).toBe(200)
    // Refusals cost no event: 18 registrations and one message (with its direct conversation).
    expect((await b.lastSeq()) - before).toBe(18 + 2)
    // Generous on a shared 2-core machine: the point is that nobody waits behind the flood.
    const worst = Math.max(...health)
    if (process.env.DUO_TEST_VERBOSE) console.error(`/health during the flood: ${health.length} probes, worst ${worst.toFixed(1)} ms`)
    expect(health.length).toBeGreaterThan(0)
    expect(worst).toBeLessThan(1000)
    // Re-registering a known id is not a new partner: never limited.
    expect((await b.post('/register', { partnerId: 'alice' })).status).toBe(200)
  })

  test('group creation and member additions are limited per sender', async () => {
    const b = await broker({ rateLimits: { ...NO_RATE_LIMITS, groups: 2, members: 3 } })
    await b.register('alice', 'bob', 'carol', 'dave', 'erin')
    const create = () => b.post('/conversations', { creatorId: 'alice', name: 'G', participants: ['bob'] })
    expect((await create()).status).toBe(200)
    const second = await create()
    expect((await create()).body.reason).toBe('rate_limited')
    const group = second.body.conversation.id
    expect((await b.post(`/conversations/${group}/members`, { partnerId: 'alice', members: ['carol', 'dave'] })).status).toBe(200)
    const more = await b.post(`/conversations/${group}/members`, { partnerId: 'alice', members: ['erin', 'carol'] })
    expect(more.status).toBe(429)
    expect(more.body.error).toContain('DUO_RATE_MEMBERS_PER_MIN')
    expect(Number(more.headers.get('retry-after'))).toBeGreaterThan(0)
  })
})

describe('membership', () => {
  let b: TestBroker
  let group: string
  beforeAll(async () => {
    b = await broker({ maxGroupsPerPartner: 2 })
    await b.register('alice', 'bob', 'carol', 'dave')
    group = (await b.post('/conversations', { creatorId: 'alice', name: 'Team', participants: ['bob'] })).body.conversation.id
  })

  test('a member adds partners, who then read and write there', async () => {
    const reply = await b.post(`/conversations/${group}/members`, { partnerId: 'bob', members: ['carol', 'alice'] })
    expect(reply.status).toBe(200)
    expect(reply.body).toMatchObject({ success: true, added: ['carol'], conversation: { id: group, name: 'Team' } })
    const participants = (await b.get(`/conversations/${group}/participants`)).body.participants.map((p: { id: string }) => p.id)
    expect(participants.sort()).toEqual(['alice', 'bob', 'carol'])
    expect((await b.post('/talk', { fromId: 'carol', conversationId: group, content: 'hello team' })).status).toBe(200)
  })

  test('a partner who left is added back', async () => {
    expect((await b.post(`/conversations/${group}/leave`, { partnerId: 'carol' })).body.left).toBe(true)
    expect((await b.post('/talk', { fromId: 'carol', conversationId: group, content: 'x' })).body.reason).toBe('not_a_participant')
    expect((await b.post(`/conversations/${group}/members`, { partnerId: 'alice', members: ['carol'] })).body.added).toEqual(['carol'])
    expect((await b.post('/talk', { fromId: 'carol', conversationId: group, content: 'back' })).status).toBe(200)
  })

  test('a member renames the group, seen in every listing', async () => {
    const reply = await b.post(`/conversations/${group}/rename`, { partnerId: 'carol', name: 'Core team' })
    expect(reply.body).toMatchObject({ success: true, conversation: { name: 'Core team' } })
    expect((await b.get('/conversations/bob')).body.conversations.find((c: { id: string }) => c.id === group).name).toBe('Core team')
  })

  test('refusals: not a member, a direct conversation, a bad name, too many groups; none changes the log', async () => {
    await b.talk('alice', { to: 'dave' }, 'hi')
    const before = await b.lastSeq()
    const cases: Array<[string, unknown, number, string]> = [
      [`/conversations/${group}/members`, { partnerId: 'dave', members: ['dave'] }, 403, 'not_a_participant'],
      ['/conversations/direct_alice_dave/members', { partnerId: 'alice', members: ['bob'] }, 409, 'not_a_group'],
      ['/conversations/direct_alice_dave/rename', { partnerId: 'alice', name: 'Us' }, 409, 'not_a_group'],
      [`/conversations/${group}/members`, { partnerId: 'alice', members: ['ghost'] }, 404, 'unknown_partner'],
      [`/conversations/${group}/rename`, { partnerId: 'alice', name: '' }, 400, ''],
      [`/conversations/${group}/members`, { partnerId: 'alice', members: [] }, 400, ''],
    ]
    for (const [path, body, status, reason] of cases) {
      const reply = await b.post(path, body)
      expect([path, reply.status]).toEqual([path, status])
      if (reason) expect(reply.body.reason).toBe(reason)
      expect(typeof reply.body.error).toBe('string')
    }
    // DUO_MAX_GROUPS_PER_PARTNER=2: bob is in this group; one more, then no more.
    expect((await b.post('/conversations', { creatorId: 'dave', name: 'Two', participants: ['bob'] })).status).toBe(200)
    const mid = await b.lastSeq()
    const third = await b.post('/conversations', { creatorId: 'dave', name: 'Three', participants: ['bob'] })
    expect(third.status).toBe(409)
    expect(third.body).toMatchObject({ reason: 'too_many_groups', partnerId: 'bob', limit: 2 })
    expect(third.body.error).toContain('DUO_MAX_GROUPS_PER_PARTNER')
    expect(await b.lastSeq()).toBe(mid)
    expect(mid - before).toBe(1)
  })
})

describe('retiring a partner (token mode)', () => {
  let b: TestBroker
  const tokens: Record<string, string> = {}
  beforeAll(async () => {
    b = await broker({ auth: 'token' })
    for (const id of ['alice', 'bob', 'carol']) tokens[id] = (await b.post('/register', { partnerId: id })).body.token
    await b.post('/talk', { fromId: 'bob', to: 'alice', content: 'my last words' }, bearer(tokens.bob!))
    await b.post('/conversations', { creatorId: 'bob', name: 'G', participants: ['carol'] }, bearer(tokens.bob!))
  })

  test('is the operator’s: a partner token is refused and nothing changes', async () => {
    const before = await b.lastSeq()
    const reply = await b.call('DELETE', '/partners/bob', undefined, bearer(tokens.alice!))
    expect(reply.status).toBe(403)
    expect(reply.body.reason).toBe('operator_only')
    expect(await b.lastSeq()).toBe(before)
  })

  test('takes it out of listings and groups; its token stops working; its messages stay', async () => {
    const reply = await b.call('DELETE', '/partners/bob', undefined, bearer(b.adminToken))
    expect(reply.status).toBe(200)
    expect(reply.body).toEqual({ success: true, partnerId: 'bob', retired: true })

    const ids = (await b.get('/partners?all=true', bearer(tokens.alice!))).body.partners.map((p: { id: string }) => p.id)
    expect(ids).toEqual(['alice', 'carol'])
    const groups = (await b.get('/conversations/carol', bearer(tokens.carol!))).body.conversations
    expect(groups[0].participants.map((p: { id: string }) => p.id)).toEqual(['carol'])

    const asBob = await b.post('/talk', { fromId: 'bob', to: 'alice', content: 'still here?' }, bearer(tokens.bob!))
    expect(asBob.status).toBe(410)
    expect(asBob.body).toMatchObject({ reason: 'partner_retired', partnerId: 'bob' })
    const toBob = await b.post('/talk', { fromId: 'alice', to: 'bob', content: 'hello?' }, bearer(tokens.alice!))
    expect(toBob.status).toBe(410)
    expect(toBob.body.reason).toBe('partner_retired')
    const intoDirect = await b.post('/talk', { fromId: 'alice', conversationId: 'direct_alice_bob', content: 'x' }, bearer(tokens.alice!))
    expect(intoDirect.body.reason).toBe('conversation_archived')

    const history = (await b.get('/conversations/direct_alice_bob/messages', bearer(tokens.alice!))).body.messages
    expect(history.map((m: { from_id: string; content: string }) => [m.from_id, m.content])).toEqual([['bob', 'my last words']])
  })

  test('a parked long-poll of the partner retired meanwhile ends at once with 410', async () => {
    const wait = b.get('/listen/carol?after=0&wait=60', bearer(tokens.carol!))
    expect(await eventually(async () => (await b.get('/health')).body.listening >= 1, 5000)).toBe(true)
    const started = performance.now()
    expect((await b.call('DELETE', '/partners/carol', undefined, bearer(b.adminToken))).status).toBe(200)
    const answer = await wait
    expect(answer.status).toBe(410)
    expect(answer.body).toMatchObject({ reason: 'partner_retired', partnerId: 'carol' })
    expect(performance.now() - started).toBeLessThan(30_000)
  })

  test('its id cannot be registered again, with or without its token, and a second retirement is refused', async () => {
    expect((await b.post('/register', { partnerId: 'bob' }, bearer(tokens.bob!))).body.reason).toBe('partner_retired')
    expect((await b.post('/register', { partnerId: 'bob' })).status).toBeGreaterThanOrEqual(400)
    const again = await b.call('DELETE', '/partners/bob', undefined, bearer(b.adminToken))
    expect(again.status).toBe(410)
    const ghost = await b.call('DELETE', '/partners/ghost', undefined, bearer(b.adminToken))
    expect(ghost.status).toBe(404)
    expect(ghost.body.reason).toBe('unknown_partner')
  })
})

describe('stale partners (DUO_STALE_DAYS=30)', () => {
  test('are left out of /partners unless ?all=true, and stay reachable by id', async () => {
    let now = new Date('2026-11-01T10:00:00.000Z')
    const b = await broker({ staleDays: 30 }, () => now)
    await b.register('old')
    now = new Date('2026-12-05T10:00:00.000Z')
    await b.register('fresh')
    const ids = async (query = '') => (await b.get(`/partners${query}`)).body.partners.map((p: { id: string }) => p.id)
    expect(await ids()).toEqual(['fresh'])
    expect(await ids('?all=true')).toEqual(['fresh', 'old'])
    expect((await b.post('/talk', { fromId: 'fresh', to: 'old', content: 'still there?' })).status).toBe(200)
    // Talking is being seen: the sender is listed, the recipient is not until it acts.
    expect(await ids()).toEqual(['fresh'])
    const bad = await b.get('/partners?all=maybe')
    expect(bad.status).toBe(400)
  })
})
