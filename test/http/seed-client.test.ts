// Duo in DUO_AUTH=open mode driven exactly the way the original mcp-claude-duo partner drives its broker.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { type TestBroker, eventually, startTestBroker, stillPending } from './helpers.ts'

/**
 * The original partner's `brokerFetch`: every request, GETs included, carries `Content-Type: application/json`,
 * and the answer is read with `response.json()` whatever its status.
 */
function seedPartner(broker: TestBroker, id: string, name: string, projectPath: string) {
  const brokerFetch = async (path: string, options: { method?: string; body?: string } = {}) => {
    const response = await fetch(`${broker.url}${path}`, {
      ...options,
      headers: { 'Content-Type': 'application/json' },
    })
    return (await response.json()) as any
  }
  const post = (path: string, body: unknown) => brokerFetch(path, { method: 'POST', body: JSON.stringify(body) })
  return {
    id,
    register: () => post('/register', { partnerId: id, name, projectPath }),
    talk: (args: { to?: string; conversation?: string; message: string }) =>
      post('/talk', { fromId: id, to: args.to, conversationId: args.conversation, content: args.message }),
    listen: (args: { conversation?: string; timeout?: number } = {}) => {
      const minutes = Math.max(2, Math.min(60, args.timeout || 30))
      let url = `/listen/${id}?timeout=${minutes}`
      if (args.conversation) url += `&conversationId=${encodeURIComponent(args.conversation)}`
      return brokerFetch(url)
    },
    listConversations: () => brokerFetch(`/conversations/${id}`),
    createConversation: (args: { name: string; participants: string }) =>
      post('/conversations', {
        creatorId: id,
        name: args.name,
        participants: args.participants.split(',').map((s) => s.trim()),
      }),
    leave: (conversation: string) => post(`/conversations/${conversation}/leave`, { partnerId: id }),
    history: (conversation: string, limit?: number) =>
      brokerFetch(`/conversations/${conversation}/messages?limit=${limit || 50}`),
    listPartners: () => brokerFetch('/partners'),
    setStatus: (message?: string) => post(`/partners/${id}/status`, { message }),
    notifications: (enabled: boolean) => post(`/partners/${id}/notifications`, { enabled }),
    unregister: () => post('/unregister', { partnerId: id }),
    health: () => brokerFetch('/health'),
  }
}

describe('the original mcp-claude-duo partner against an open broker', () => {
  let broker: TestBroker
  let a: ReturnType<typeof seedPartner>
  let b: ReturnType<typeof seedPartner>
  let c: ReturnType<typeof seedPartner>
  let groupId: string

  beforeAll(async () => {
    broker = await startTestBroker({ auth: 'open' })
    a = seedPartner(broker, 'project_a', 'Project A', '/home/dev/project-a')
    b = seedPartner(broker, 'project_b', 'Project B', '/home/dev/project-b')
    c = seedPartner(broker, 'project_c', 'Claude', '/home/dev/project-c')
  })
  afterAll(() => broker.close())

  test('register answers with the partner record it reads', async () => {
    for (const p of [a, b, c]) {
      const result = await p.register()
      expect(result.error).toBeUndefined()
      expect(result.success).toBe(true)
      expect(result.partner).toEqual({
        id: p.id,
        name: expect.any(String),
        kind: 'agent',
        project_path: expect.stringMatching(/^\/home\/dev\//),
        status: 'online',
        status_message: null,
        notifications_enabled: true,
        created_at: expect.any(String),
        last_seen: expect.any(String),
        isListening: false,
        // Duo's additions, which the original partner ignores: registered a moment ago over HTTP, no session.
        reachability: 'connected',
        sessions: 0,
      })
    }
  })

  test('talk to a partner answers with conversationId, notified and queued', async () => {
    const response = await a.talk({ to: 'project_b', message: 'Hey, can you help with the auth module?' })
    expect(response.error).toBeUndefined()
    expect(response).toEqual(
      expect.objectContaining({
        success: true,
        conversationId: 'direct_project_a_project_b',
        messageId: expect.any(Number),
        notified: 0,
        queued: 1,
      }),
    )
  })

  test('listen returns unread messages at once, with the fields it groups and prints', async () => {
    const response = await b.listen()
    expect(response.error).toBeUndefined()
    expect(response.hasMessages).toBe(true)
    expect(response.messages).toEqual([
      expect.objectContaining({
        id: expect.any(Number),
        conversation_id: 'direct_project_a_project_b',
        from_id: 'project_a',
        content: 'Hey, can you help with the auth module?',
      }),
    ])
    expect(Number.isNaN(new Date(response.messages[0].created_at).getTime())).toBe(false)
  })

  test('a waiting listen is answered by the next message, and isListening shows meanwhile', async () => {
    const waiting = b.listen({ timeout: 10 })
    expect(
      await eventually(async () => (await a.listPartners()).partners.find((p: { id: string }) => p.id === 'project_b').isListening),
    ).toBe(true)
    await broker.untilParked(1)
    expect(await stillPending(waiting, 0)).toBe(true)
    const sent = await a.talk({ to: 'project_b', message: 'Sure, what do you need?' })
    expect(sent.notified).toBe(1)
    const response = await waiting
    expect(response.messages.map((m: { content: string }) => m.content)).toEqual(['Sure, what do you need?'])
  })

  test('list_conversations reads id, name, type, unread_count and participant names', async () => {
    await a.talk({ to: 'project_b', message: 'unread one' })
    const { conversations } = await b.listConversations()
    expect(conversations).toHaveLength(1)
    const conv = conversations[0]
    expect(conv).toEqual(
      expect.objectContaining({ id: 'direct_project_a_project_b', type: 'direct', name: null, unread_count: 1 }),
    )
    expect(conv.participants.map((p: { name: string }) => p.name).sort()).toEqual(['Project A', 'Project B'])
  })

  test('create_conversation with comma-separated participants returns the group id', async () => {
    const response = await a.createConversation({ name: 'Backend Team', participants: 'project_b, project_c' })
    expect(response.error).toBeUndefined()
    expect(response.conversation).toEqual({
      id: expect.stringMatching(/^group_/),
      name: 'Backend Team',
      type: 'group',
      created_by: 'project_a',
      created_at: expect.any(String),
      is_archived: false,
    })
    groupId = response.conversation.id
  })

  test('talk into a conversation and listen filtered to it', async () => {
    await b.listen() // read what is pending
    await a.talk({ to: 'project_b', message: 'direct, not in the group' })
    const sent = await a.talk({ conversation: groupId, message: 'Sprint planning in 5 min' })
    expect(sent.conversationId).toBe(groupId)
    expect(sent.queued).toBe(2)
    const filtered = await b.listen({ conversation: groupId })
    expect(filtered.messages.map((m: { conversation_id: string; content: string }) => [m.conversation_id, m.content])).toEqual([
      [groupId, 'Sprint planning in 5 min'],
    ])
    const rest = await b.listen()
    expect(rest.messages.map((m: { content: string }) => m.content)).toEqual(['direct, not in the group'])
  })

  test('history reads conversation name and id, and messages oldest first', async () => {
    await c.talk({ conversation: groupId, message: 'On my way' })
    const response = await b.history(groupId)
    expect(response.error).toBeUndefined()
    expect(response.conversation).toEqual(expect.objectContaining({ id: groupId, name: 'Backend Team' }))
    expect(response.messages.map((m: { from_id: string; content: string }) => `${m.from_id}: ${m.content}`)).toEqual([
      'project_a: Sprint planning in 5 min',
      'project_c: On my way',
    ])
    expect((await b.history(groupId, 1)).messages.map((m: { content: string }) => m.content)).toEqual(['On my way'])
  })

  test('list_partners reads id, name, status, isListening and status_message', async () => {
    expect(await b.setStatus('reviewing auth')).toEqual({ success: true })
    const { partners } = await a.listPartners()
    expect(partners.map((p: { id: string }) => p.id).sort()).toEqual(['project_a', 'project_b', 'project_c'])
    const pb = partners.find((p: { id: string }) => p.id === 'project_b')
    expect(pb).toEqual(
      expect.objectContaining({ name: 'Project B', status: 'online', isListening: false, status_message: 'reviewing auth' }),
    )
    expect(await b.setStatus()).toEqual({ success: true })
    expect((await a.listPartners()).partners.find((p: { id: string }) => p.id === 'project_b').status_message).toBeNull()
  })

  test('notifications answer success', async () => {
    expect(await b.notifications(false)).toEqual({ success: true })
    expect(await b.notifications(true)).toEqual({ success: true })
  })

  test('leave answers success, left and archived; errors come back as {error}', async () => {
    expect(await c.leave(groupId)).toEqual({ success: true, left: true, archived: false })
    const again = await c.leave(groupId)
    expect(again.error).toEqual(expect.any(String))
    const direct = await a.leave('direct_project_a_project_b')
    expect(direct.error).toEqual(expect.any(String))
  })

  test('health answers status ok with counts', async () => {
    const health = await a.health()
    expect(health).toEqual(expect.objectContaining({ status: 'ok', partners: 3, online: 3, listening: 0 }))
  })

  test('unregister (also what its Stop hook sends) answers success and sets the partner offline', async () => {
    // `offline` and `sessions` are Duo's additions: no other session of the partner is live, so it went offline.
    expect(await c.unregister()).toEqual({ success: true, offline: true, sessions: 0 })
    const { partners } = await a.listPartners()
    expect(partners.find((p: { id: string }) => p.id === 'project_c').status).toBe('offline')
    // Registering again brings it back online, with its conversations.
    expect((await c.register()).partner.status).toBe('online')
    expect((await c.listConversations()).conversations.map((x: { id: string }) => x.id)).toEqual([])
  })
})
