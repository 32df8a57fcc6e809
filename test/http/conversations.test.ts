// Talking and conversations over HTTP: talk, groups, listing, leaving, history paging, participants, idempotency.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { MANY_PARTNERS, type TestBroker, startTestBroker } from './helpers.ts'

type Conversation = { id: string; unread_count: number; participants: Array<{ id: string; name: string }> }

describe('talk', () => {
  let broker: TestBroker
  beforeAll(async () => {
    broker = await startTestBroker()
    await broker.register('alice', 'bob', 'carol')
  })
  afterAll(() => broker.close())

  test('a first message to a partner creates the direct conversation and answers with the seed fields', async () => {
    const reply = await broker.post('/talk', { fromId: 'alice', to: 'bob', content: 'hello bob' })
    expect(reply.status).toBe(200)
    expect(reply.body).toEqual(
      expect.objectContaining({
        success: true,
        conversationId: 'direct_alice_bob',
        messageId: expect.any(Number),
        notified: 0,
        queued: 1,
      }),
    )
    const again = await broker.talk('bob', { to: 'alice' }, 'hi alice')
    expect(again.conversationId).toBe('direct_alice_bob')
    expect(again.messageId).toBeGreaterThan(reply.body.messageId)
  })

  test('posts into a conversation by id', async () => {
    const reply = await broker.talk('alice', { conversationId: 'direct_alice_bob' }, 'by id')
    expect(reply.conversationId).toBe('direct_alice_bob')
  })

  test.each([
    // Malformed input is refused by validation before any rule runs (invalid_request); a broken rule names its own reason.
    ['no recipient', { fromId: 'alice', content: 'to whom?' }, 400, 'no_recipient'],
    ['an empty message', { fromId: 'alice', to: 'bob', content: '' }, 400, 'invalid_request'],
    ['a message to oneself', { fromId: 'alice', to: 'alice', content: 'me' }, 400, 'talk_to_self'],
    ['a missing content field', { fromId: 'alice', to: 'bob' }, 400, 'invalid_request'],
    ['a malformed recipient id', { fromId: 'alice', to: 'b/ob', content: 'x' }, 400, 'invalid_request'],
    ['an unknown sender', { fromId: 'mallory', to: 'bob', content: 'x' }, 404, 'unknown_partner'],
    ['an unknown recipient', { fromId: 'alice', to: 'nobody', content: 'x' }, 404, 'unknown_partner'],
    ['an unknown conversation', { fromId: 'alice', conversationId: 'group_nope', content: 'x' }, 404, 'unknown_conversation'],
    ['a sender outside the conversation', { fromId: 'carol', conversationId: 'direct_alice_bob', content: 'x' }, 403, 'not_a_participant'],
  ])('refuses %s and appends nothing', async (_, body, status, reason) => {
    const before = await broker.lastSeq()
    const reply = await broker.post('/talk', body)
    expect(reply.status).toBe(status)
    expect(reply.body.error).toEqual(expect.any(String))
    expect(reply.body.reason).toBe(reason)
    expect(await broker.lastSeq()).toBe(before)
  })

  test('refuses a message over 64 KiB with 413 naming the limit, and a body over 1 MiB with 413', async () => {
    const before = await broker.lastSeq()
    const tooLarge = await broker.post('/talk', { fromId: 'alice', to: 'bob', content: 'é'.repeat(33_000) })
    expect(tooLarge.status).toBe(413)
    expect(tooLarge.body.error).toContain('65536')
    const atLimit = await broker.post('/talk', { fromId: 'alice', to: 'bob', content: 'x'.repeat(65_536) })
    expect(atLimit.status).toBe(200)
    const hugeBody = await broker.post('/talk', { fromId: 'alice', to: 'bob', content: 'x'.repeat(1024 * 1024 + 10) })
    expect(hugeBody.status).toBe(413)
    expect(await broker.lastSeq()).toBe(before + 1)
  })

  test('a retry with the same Idempotency-Key header returns the original message and appends nothing', async () => {
    const first = await broker.post('/talk', { fromId: 'alice', to: 'bob', content: 'once' }, { 'idempotency-key': 'k-1' })
    expect(first.status).toBe(200)
    const before = await broker.lastSeq()
    const retry = await broker.post('/talk', { fromId: 'alice', to: 'bob', content: 'once' }, { 'idempotency-key': 'k-1' })
    expect(retry.status).toBe(200)
    expect(retry.body.messageId).toBe(first.body.messageId)
    expect(retry.body.conversationId).toBe('direct_alice_bob')
    expect(await broker.lastSeq()).toBe(before)
    const history = (await broker.get('/conversations/direct_alice_bob/messages?limit=1000')).body.messages
    expect(history.filter((m: { content: string }) => m.content === 'once')).toHaveLength(1)
  })

  test('a retry with the same idempotencyKey field returns the original message; another sender’s key is its own', async () => {
    const first = await broker.post('/talk', { fromId: 'alice', to: 'bob', content: 'field', idempotencyKey: 'k-2' })
    const before = await broker.lastSeq()
    const retry = await broker.post('/talk', { fromId: 'alice', to: 'bob', content: 'field', idempotencyKey: 'k-2' })
    expect(retry.body.messageId).toBe(first.body.messageId)
    expect(await broker.lastSeq()).toBe(before)
    const concurrent = await Promise.all(
      Array.from({ length: 5 }, () =>
        broker.post('/talk', { fromId: 'alice', to: 'bob', content: 'field', idempotencyKey: 'k-2' }),
      ),
    )
    expect(new Set(concurrent.map((r) => r.body.messageId))).toEqual(new Set([first.body.messageId]))
    const bobs = await broker.post('/talk', { fromId: 'bob', to: 'alice', content: 'mine', idempotencyKey: 'k-2' })
    expect(bobs.body.messageId).toBeGreaterThan(first.body.messageId)
  })
})

describe('direct conversations are found by their members', () => {
  let broker: TestBroker
  beforeAll(async () => {
    broker = await startTestBroker()
    await broker.register('x', 'y_z', 'x_y', 'z')
  })
  afterAll(() => broker.close())

  test('x+y_z and x_y+z get distinct ids and each message lands in its own conversation', async () => {
    const first = await broker.talk('x', { to: 'y_z' }, 'x to y_z')
    const second = await broker.talk('x_y', { to: 'z' }, 'x_y to z')
    expect(first.conversationId).toBe('direct_x_y_z')
    expect(second.conversationId).not.toBe(first.conversationId)
    expect(second.conversationId).toStartWith('direct_')

    // Later messages of each pair, in either direction, keep going to the right conversation.
    expect((await broker.talk('z', { to: 'x_y' }, 'z to x_y')).conversationId).toBe(second.conversationId)
    expect((await broker.talk('y_z', { to: 'x' }, 'y_z to x')).conversationId).toBe(first.conversationId)

    const contents = async (id: string) =>
      (await broker.get(`/conversations/${id}/messages`)).body.messages.map((m: { content: string }) => m.content)
    expect(await contents(first.conversationId)).toEqual(['x to y_z', 'y_z to x'])
    expect(await contents(second.conversationId)).toEqual(['x_y to z', 'z to x_y'])

    const members = async (id: string) =>
      (await broker.get(`/conversations/${id}/participants`)).body.participants.map((p: { id: string }) => p.id).sort()
    expect(await members(first.conversationId)).toEqual(['x', 'y_z'])
    expect(await members(second.conversationId)).toEqual(['x_y', 'z'])

    const zs = (await broker.get('/conversations/z')).body.conversations as Conversation[]
    expect(zs.map((c) => c.id)).toEqual([second.conversationId])
  })
})

describe('group conversations', () => {
  let broker: TestBroker
  let groupId: string
  beforeAll(async () => {
    broker = await startTestBroker()
    await broker.register('alice', 'bob', 'carol', 'dave')
  })
  afterAll(() => broker.close())

  test('creates a group with the seed shape', async () => {
    const reply = await broker.post('/conversations', { creatorId: 'alice', name: 'Backend', participants: ['bob', 'carol'] })
    expect(reply.status).toBe(200)
    expect(reply.body).toEqual({
      success: true,
      conversation: {
        id: expect.stringMatching(/^group_/),
        name: 'Backend',
        type: 'group',
        created_by: 'alice',
        created_at: expect.any(String),
        is_archived: false,
      },
    })
    groupId = reply.body.conversation.id
  })

  test.each([
    ['an unknown participant', { creatorId: 'alice', name: 'G', participants: ['bob', 'ghost'] }, 404],
    ['an unknown creator', { creatorId: 'ghost', name: 'G', participants: ['bob'] }, 404],
    ['no participants', { creatorId: 'alice', name: 'G', participants: [] }, 400],
    ['only the creator', { creatorId: 'alice', name: 'G', participants: ['alice'] }, 400],
    ['an empty name', { creatorId: 'alice', name: '', participants: ['bob'] }, 400],
    ['a name of 101 characters', { creatorId: 'alice', name: 'n'.repeat(101), participants: ['bob'] }, 400],
    ['participants that are not a list', { creatorId: 'alice', name: 'G', participants: 'bob,carol' }, 400],
    ['100 participants besides the creator', { creatorId: 'alice', name: 'G', participants: Array.from({ length: 100 }, (_, i) => `p${i}`) }, 400],
    ['101 listed participants', { creatorId: 'alice', name: 'G', participants: Array.from({ length: 101 }, (_, i) => `p${i}`) }, 400],
  ])('refuses a group with %s and appends nothing', async (_, body, status) => {
    const before = await broker.lastSeq()
    const reply = await broker.post('/conversations', body)
    expect(reply.status).toBe(status)
    expect(reply.body.error).toEqual(expect.any(String))
    expect(await broker.lastSeq()).toBe(before)
  })

  test('lists a partner’s conversations with unread counts and participants', async () => {
    await broker.talk('alice', { conversationId: groupId }, 'one')
    await broker.talk('bob', { conversationId: groupId }, 'two')
    await broker.talk('alice', { to: 'carol' }, 'direct')
    const reply = await broker.get('/conversations/carol')
    expect(reply.status).toBe(200)
    const conversations = reply.body.conversations as Conversation[]
    expect(conversations.map((c) => c.id).sort()).toEqual([groupId, 'direct_alice_carol'].sort())
    const group = conversations.find((c) => c.id === groupId)!
    expect(group).toEqual(
      expect.objectContaining({ name: 'Backend', type: 'group', created_by: 'alice', is_archived: false, unread_count: 2 }),
    )
    expect(group.participants.map((p) => p.id).sort()).toEqual(['alice', 'bob', 'carol'])
    expect(conversations.find((c) => c.id === 'direct_alice_carol')!.unread_count).toBe(1)
    // Its own messages are never unread for the sender.
    const bobs = (await broker.get('/conversations/bob')).body.conversations as Conversation[]
    expect(bobs.find((c) => c.id === groupId)!.unread_count).toBe(1)
  })

  test('lists nothing for a partner with no conversations; refuses an unknown or malformed partner', async () => {
    expect((await broker.get('/conversations/dave')).body).toEqual({ conversations: [] })
    // Not "..": fetch resolves "/conversations/.." to "/", which is the console's page.
    const malformed = await broker.get('/conversations/.hidden')
    expect(malformed.status).toBeGreaterThanOrEqual(400)
    expect(malformed.status).toBeLessThan(500)
  })

  test('lists participants; refuses an unknown conversation with 404', async () => {
    const reply = await broker.get(`/conversations/${groupId}/participants`)
    expect(reply.status).toBe(200)
    expect(reply.body.participants.map((p: { id: string }) => p.id).sort()).toEqual(['alice', 'bob', 'carol'])
    expect(reply.body.participants[0]).toEqual(expect.objectContaining({ name: expect.any(String), status: expect.any(String) }))
    const unknown = await broker.get('/conversations/group_nope/participants')
    expect(unknown.status).toBe(404)
    expect(unknown.body.error).toContain('group_nope')
  })

  test('pages history with limit and before, oldest first', async () => {
    const sent: number[] = []
    for (let i = 0; i < 12; i++) sent.push((await broker.talk('bob', { conversationId: groupId }, `page ${i}`)).messageId)
    const all = (await broker.get(`/conversations/${groupId}/messages`)).body
    expect(all.conversation).toEqual(expect.objectContaining({ id: groupId, type: 'group', name: 'Backend' }))
    expect(all.messages.map((m: { content: string }) => m.content)).toEqual(['one', 'two', ...sent.map((_, i) => `page ${i}`)])
    expect(all.messages[0]).toEqual({
      id: expect.any(Number),
      seq: expect.any(Number),
      conversation_id: groupId,
      from_id: 'alice',
      from_kind: 'agent',
      content: 'one',
      created_at: expect.any(String),
      // Open mode: every message shows where each recipient stands (a partner's token shows its own messages').
      recipients: [expect.objectContaining({ state: expect.any(String) }), expect.objectContaining({ state: expect.any(String) })],
    })

    const latest = (await broker.get(`/conversations/${groupId}/messages?limit=5`)).body.messages
    expect(latest.map((m: { id: number }) => m.id)).toEqual(sent.slice(-5))
    const older = (await broker.get(`/conversations/${groupId}/messages?limit=5&before=${latest[0].id}`)).body.messages
    expect(older.map((m: { id: number }) => m.id)).toEqual(sent.slice(-10, -5))
    const oldest = (await broker.get(`/conversations/${groupId}/messages?limit=5&before=${older[0].id}`)).body.messages
    expect(oldest.map((m: { content: string }) => m.content)).toEqual(['one', 'two', 'page 0', 'page 1'])
    expect((await broker.get(`/conversations/${groupId}/messages?before=1`)).body.messages).toEqual([])
  })

  test.each([
    ['limit=0', 400],
    ['limit=1001', 400],
    ['limit=abc', 400],
    ['before=-1', 400],
    ['before=999999 (beyond the end of the log)', 409],
  ])('refuses history with %s', async (query, status) => {
    const reply = await broker.get(`/conversations/${groupId}/messages?${query.split(' ')[0]}`)
    expect(reply.status).toBe(status)
    expect(reply.body.error).toEqual(expect.any(String))
  })

  test('refuses history of an unknown conversation with 404', async () => {
    const reply = await broker.get('/conversations/group_nope/messages')
    expect([reply.status, reply.body.reason, reply.body.conversationId]).toEqual([404, 'unknown_conversation', 'group_nope'])
  })

  test('refuses to leave a direct conversation (409), a group one is not in (403), an unknown one (404)', async () => {
    const before = await broker.lastSeq()
    const direct = await broker.post('/conversations/direct_alice_carol/leave', { partnerId: 'alice' })
    expect(direct.status).toBe(409)
    expect(direct.body.error).toContain('direct')
    expect(direct.body.reason).toBe('cannot_leave_direct')
    const outsider = await broker.post(`/conversations/${groupId}/leave`, { partnerId: 'dave' })
    expect([outsider.status, outsider.body.reason]).toEqual([403, 'not_a_participant'])
    const unknown = await broker.post('/conversations/group_nope/leave', { partnerId: 'alice' })
    expect([unknown.status, unknown.body.reason]).toEqual([404, 'unknown_conversation'])
    expect((await broker.post(`/conversations/${groupId}/leave`, {})).status).toBe(400)
    expect(await broker.lastSeq()).toBe(before)
  })

  test('leaving removes the member; the last one out archives the group; talking into it is then 409', async () => {
    const left = await broker.post(`/conversations/${groupId}/leave`, { partnerId: 'carol' })
    expect(left.body).toEqual({ success: true, left: true, archived: false })
    expect((await broker.post('/talk', { fromId: 'carol', conversationId: groupId, content: 'still here?' })).status).toBe(403)
    expect((await broker.get('/conversations/carol')).body.conversations.map((c: { id: string }) => c.id)).toEqual([
      'direct_alice_carol',
    ])
    expect((await broker.post(`/conversations/${groupId}/leave`, { partnerId: 'bob' })).body.archived).toBe(false)
    const last = await broker.post(`/conversations/${groupId}/leave`, { partnerId: 'alice' })
    expect(last.body).toEqual({ success: true, left: true, archived: true })
    expect((await broker.get(`/conversations/${groupId}/messages`)).body.conversation.is_archived).toBe(true)
  })

  test('talking into an archived group is refused with 409, even by a former member', async () => {
    const group = await broker.post('/conversations', { creatorId: 'alice', name: 'Solo', participants: ['bob'] })
    const id = group.body.conversation.id
    await broker.post(`/conversations/${id}/leave`, { partnerId: 'bob' })
    expect((await broker.post(`/conversations/${id}/leave`, { partnerId: 'alice' })).body.archived).toBe(true)
    const before = await broker.lastSeq()
    for (const fromId of ['alice', 'bob']) {
      const reply = await broker.post('/talk', { fromId, conversationId: id, content: 'anyone?' })
      expect(reply.status).toBe(409)
      expect(reply.body.reason).toBe('conversation_archived')
      expect(reply.body.error).toContain('archived')
    }
    expect(await broker.lastSeq()).toBe(before)
    // Its history stays readable.
    expect((await broker.get(`/conversations/${id}/messages`)).body.conversation.is_archived).toBe(true)
  })
})

describe('group size', () => {
  test('a group of exactly 100 members may list its creator among the participants', async () => {
    const broker = await startTestBroker(MANY_PARTNERS)
    try {
      const ids = Array.from({ length: 99 }, (_, i) => `m${i}`)
      await broker.register('alice', ...ids)
      const reply = await broker.post('/conversations', { creatorId: 'alice', name: 'Full', participants: ['alice', ...ids] })
      expect(reply.status).toBe(200)
      const members = await broker.get(`/conversations/${reply.body.conversation.id}/participants`)
      expect(members.body.participants).toHaveLength(100)
    } finally {
      await broker.close()
    }
  })
})
