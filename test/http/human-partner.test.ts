// Human partners over HTTP: only the operator makes one, the operator speaks as it, and agents see who spoke.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { renderMessages } from '../../src/partner/untrusted.ts'
import { type SecureBroker, startSecureBroker } from './secure-harness.ts'

let broker: SecureBroker
let alice: string
let bob: string
beforeAll(async () => {
  broker = await startSecureBroker()
  alice = await broker.register('alice')
  bob = await broker.register('bob')
  await broker.call('POST', '/talk', { token: alice, body: { fromId: 'alice', to: 'bob', content: 'hi bob' } })
})
afterAll(() => broker.close())

describe('registering a human partner in token mode', () => {
  test('without a token is refused with operator_token_required', async () => {
    const answer = await broker.call('POST', '/register', { body: { partnerId: 'pat', kind: 'human' } })
    expect(answer.status).toBe(401)
    expect(answer.body.reason).toBe('operator_token_required')
  })

  test("with an agent's token is refused with operator_only", async () => {
    const answer = await broker.call('POST', '/register', { token: alice, body: { partnerId: 'pat', kind: 'human' } })
    expect(answer.status).toBe(403)
    expect(answer.body.reason).toBe('operator_only')
  })

  test('with the operator token is made, shown as human, and gets its own token', async () => {
    const answer = await broker.call('POST', '/register', {
      token: broker.adminToken,
      body: { partnerId: 'pat', name: 'Pat', kind: 'human' },
    })
    expect(answer.status).toBe(200)
    expect(answer.body.partner.kind).toBe('human')
    expect(typeof answer.body.token).toBe('string')
    const listed = await broker.call('GET', '/partners', { token: bob })
    expect(listed.body.partners.map((p: any) => [p.id, p.kind])).toEqual([
      ['alice', 'agent'],
      ['bob', 'agent'],
      ['pat', 'human'],
    ])
  })
})

describe('the operator speaking as a human', () => {
  test('registers the human again without holding its token', async () => {
    const again = await broker.call('POST', '/register', { token: broker.adminToken, body: { partnerId: 'pat', name: 'Pat' } })
    expect(again.status).toBe(200)
    expect(again.body.partner.kind).toBe('human')
    expect(again.body.token).toBeUndefined()
  })

  test("steps into the agents' conversation, and the agent's listen shows a person spoke", async () => {
    const after = await broker.lastSeq()
    const sent = await broker.call('POST', '/talk', {
      token: broker.adminToken,
      body: { fromId: 'pat', conversationId: 'direct_alice_bob', content: 'please stop here' },
    })
    expect(sent.status).toBe(200)
    const heard = await broker.call('GET', `/listen/bob?after=${after}&wait=5`, { token: bob })
    expect(heard.body.messages.map((m: any) => [m.from_id, m.from_kind, m.content])).toEqual([['pat', 'human', 'please stop here']])
    expect(renderMessages(heard.body.messages)).toContain('from pat (a human, not an agent)')
  })

  test('cannot speak as an agent', async () => {
    const answer = await broker.call('POST', '/talk', {
      token: broker.adminToken,
      body: { fromId: 'alice', to: 'bob', content: 'forged' },
    })
    expect(answer.status).toBe(403)
    expect(answer.body.reason).toBe('acting_for_another')
  })

  test('an agent cannot post into a conversation it is not in, a human can', async () => {
    const carol = await broker.register('carol')
    const refused = await broker.call('POST', '/talk', {
      token: carol,
      body: { fromId: 'carol', conversationId: 'direct_alice_bob', content: 'let me in' },
    })
    expect(refused.status).toBe(403)
    expect(refused.body.reason).toBe('not_a_participant')
  })
})

describe('DELETE /conversations/:id/members', () => {
  test('the operator, as a person, takes a member out; an agent is refused with not_human; the log is unchanged by refusals', async () => {
    const group = await broker.call('POST', '/conversations', {
      token: alice,
      body: { creatorId: 'alice', name: 'Pair', participants: ['bob'] },
    })
    const id = group.body.conversation.id
    const before = await broker.lastSeq()
    const byAgent = await broker.call('DELETE', `/conversations/${id}/members`, { token: alice, body: { partnerId: 'alice', members: ['bob'] } })
    expect(byAgent.status).toBe(403)
    expect(byAgent.body.reason).toBe('not_human')
    expect(byAgent.body.error).toContain('only a human participant or the operator can remove members')
    const empty = await broker.call('DELETE', `/conversations/${id}/members`, { token: broker.adminToken, body: { partnerId: 'pat', members: [] } })
    expect(empty.status).toBe(400)
    expect(await broker.lastSeq()).toBe(before)
    const removed = await broker.call('DELETE', `/conversations/${id}/members`, {
      token: broker.adminToken,
      body: { partnerId: 'pat', members: ['bob'] },
    })
    expect(removed.status).toBe(200)
    expect(removed.body).toMatchObject({ success: true, removed: ['bob'], archived: false, conversation: { id } })
    const members = await broker.call('GET', `/conversations/${id}/participants`, { token: alice })
    expect(members.body.participants.map((p: any) => p.id)).toEqual(['alice'])
  })
})
