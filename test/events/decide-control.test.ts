// The rules of conversation control: loop guard, membership changes and retirement, given events, when a command.
import { describe, expect, test } from 'bun:test'
import type { Command, Rejection, Result, Rules } from '../../src/events/decide.ts'
import type { DuoEvent } from '../../src/events/schema.ts'
import { archived, direct, group, left, registered, sent } from '../projections/given.ts'
import { given } from './given.ts'

const human = (partnerId: string): DuoEvent => ({
  type: 'PartnerRegistered',
  data: { partnerId, name: partnerId, projectPath: null, kind: 'human' },
})
const retired = (partnerId: string): DuoEvent => ({ type: 'PartnerRetired', data: { partnerId } })
const paused = (conversationId: string, hops: number): DuoEvent => ({ type: 'ConversationPaused', data: { conversationId, hops } })
const resumed = (conversationId: string, partnerId?: string): DuoEvent => ({
  type: 'ConversationResumed',
  data: { conversationId, ...(partnerId ? { partnerId } : {}) },
})
const added = (conversationId: string, addedBy: string, partnerIds: string[]): DuoEvent => ({
  type: 'ParticipantsAdded',
  data: { conversationId, addedBy, partnerIds },
})
const talk = (fromId: string, target: { to?: string; conversationId?: string }, content = 'hello'): Command => ({
  kind: 'talk',
  fromId,
  ...target,
  content,
})
const message = (conversationId: string, fromId: string, content = 'hello'): DuoEvent => ({
  type: 'MessageSent',
  data: { conversationId, fromId, content },
})
const refused = (rejection: Rejection): Result<never> => ({ ok: false, rejection })
const agents = [registered('alice'), registered('bob'), registered('carol')]
const chat = (n: number) => Array.from({ length: n }, (_, i) => sent('direct_alice_bob', i % 2 ? 'bob' : 'alice', `m${i}`))

describe('the loop guard', () => {
  test('below the limit an agent message is sent as usual', async () => {
    const { when } = await given([...agents, direct('direct_alice_bob', 'alice', 'bob'), ...chat(2)], { maxHops: 4 })
    expect(when(talk('alice', { conversationId: 'direct_alice_bob' }))).toEqual({
      ok: true,
      value: { conversationId: 'direct_alice_bob', events: [message('direct_alice_bob', 'alice')] },
    })
  })

  test('the agent message that reaches the limit is sent, and pauses the conversation with it', async () => {
    const { when } = await given([...agents, direct('direct_alice_bob', 'alice', 'bob'), ...chat(3)], { maxHops: 4 })
    expect(when(talk('bob', { to: 'alice' }))).toEqual({
      ok: true,
      value: {
        conversationId: 'direct_alice_bob',
        events: [message('direct_alice_bob', 'bob'), paused('direct_alice_bob', 4)],
      },
    })
  })

  test('a limit of 1 pauses a direct conversation with its first message', async () => {
    const { when } = await given(agents, { maxHops: 1 })
    const result = when(talk('alice', { to: 'bob' }))
    expect(result.ok && result.value.events.map((e) => e.type)).toEqual(['ConversationCreated', 'MessageSent', 'ConversationPaused'])
  })

  test('refuses an agent message in a paused conversation', async () => {
    const { when } = await given([...agents, direct('direct_alice_bob', 'alice', 'bob'), ...chat(4), paused('direct_alice_bob', 4)], {
      maxHops: 4,
    })
    const refusal = refused({ reason: 'conversation_paused', conversationId: 'direct_alice_bob', hops: 4 })
    expect(when(talk('alice', { conversationId: 'direct_alice_bob' }))).toEqual(refusal)
    expect(when(talk('bob', { to: 'alice' }))).toEqual(refusal)
  })

  test('a human message resumes a paused conversation, then is sent', async () => {
    const { when } = await given(
      [...agents, human('hugo'), group('group_1', 'Team', ['alice', 'bob', 'hugo']), paused('group_1', 4)],
      { maxHops: 4 },
    )
    expect(when(talk('hugo', { conversationId: 'group_1' }, 'enough, you two'))).toEqual({
      ok: true,
      value: {
        conversationId: 'group_1',
        events: [
          resumed('group_1', 'hugo'),
          { type: 'MessageSent', data: { conversationId: 'group_1', fromId: 'hugo', content: 'enough, you two', fromKind: 'human' } },
        ],
      },
    })
  })

  test('a human message starts the count over', async () => {
    const history = [...agents, human('hugo'), group('group_1', 'Team', ['alice', 'bob', 'hugo'])]
    const agentTalk = Array.from({ length: 3 }, (_, i) => sent('group_1', i % 2 ? 'bob' : 'alice'))
    const humanSaid: DuoEvent = { type: 'MessageSent', data: { conversationId: 'group_1', fromId: 'hugo', content: 'go on', fromKind: 'human' } }
    const { store, when } = await given([...history, ...agentTalk, humanSaid, ...agentTalk], { maxHops: 4 })
    expect(store.views.conversations.get('group_1')!.hops).toBe(3)
    expect(when(talk('alice', { conversationId: 'group_1' }))).toMatchObject({ ok: true, value: { events: [{ type: 'MessageSent' }, { type: 'ConversationPaused' }] } })
  })

  test('a resume starts the count over', async () => {
    const { store, when } = await given(
      [...agents, direct('direct_alice_bob', 'alice', 'bob'), ...chat(4), paused('direct_alice_bob', 4), resumed('direct_alice_bob'), ...chat(3)],
      { maxHops: 5 },
    )
    expect(store.views.conversations.get('direct_alice_bob')).toMatchObject({ hops: 3, is_paused: 0 })
    expect(when(talk('alice', { to: 'bob' }))).toEqual({
      ok: true,
      value: { conversationId: 'direct_alice_bob', events: [message('direct_alice_bob', 'alice')] },
    })
  })

  test('with DUO_MAX_HOPS=0 the guard never pauses', async () => {
    const { when } = await given([...agents, direct('direct_alice_bob', 'alice', 'bob'), ...chat(500)], { maxHops: 0 })
    expect(when(talk('alice', { to: 'bob' }))).toEqual({
      ok: true,
      value: { conversationId: 'direct_alice_bob', events: [message('direct_alice_bob', 'alice')] },
    })
  })

  test('with DUO_MAX_HOPS=0 a paused conversation stays paused until a resume', async () => {
    const { when } = await given([...agents, direct('direct_alice_bob', 'alice', 'bob'), ...chat(2), paused('direct_alice_bob', 2)], {
      maxHops: 0,
    })
    expect(when(talk('alice', { to: 'bob' }))).toEqual(refused({ reason: 'conversation_paused', conversationId: 'direct_alice_bob', hops: 2 }))
  })
})

describe('resume', () => {
  const pausedChat = [...agents, human('hugo'), group('group_1', 'Team', ['alice', 'hugo', 'bob']), ...chat(0), paused('group_1', 50)]

  test('by the operator records who resumed: nobody named', async () => {
    const { when } = await given(pausedChat)
    expect(when({ kind: 'resume', conversationId: 'group_1' })).toEqual({
      ok: true,
      value: { resumed: true, events: [resumed('group_1')] },
    })
  })

  test('by a human participant names the human', async () => {
    const { when } = await given(pausedChat)
    expect(when({ kind: 'resume', conversationId: 'group_1', partnerId: 'hugo' })).toEqual({
      ok: true,
      value: { resumed: true, events: [resumed('group_1', 'hugo')] },
    })
  })

  test('refuses an agent participant', async () => {
    const { when } = await given(pausedChat)
    expect(when({ kind: 'resume', conversationId: 'group_1', partnerId: 'alice' })).toEqual({
      ok: false,
      rejection: { reason: 'not_human', partnerId: 'alice' },
    })
  })

  test('a human who is not a member may resume too: people oversee every conversation', async () => {
    const { when } = await given([...pausedChat, human('hanna')])
    expect(when({ kind: 'resume', conversationId: 'group_1', partnerId: 'hanna' })).toEqual({
      ok: true,
      value: { resumed: true, events: [resumed('group_1', 'hanna')] },
    })
  })

  test('refuses an unknown conversation', async () => {
    const { when } = await given(pausedChat)
    expect(when({ kind: 'resume', conversationId: 'group_none' })).toEqual({
      ok: false,
      rejection: { reason: 'unknown_conversation', conversationId: 'group_none' },
    })
  })

  test('of a conversation with messages but no pause starts the count over', async () => {
    const { when } = await given([...agents, direct('direct_alice_bob', 'alice', 'bob'), ...chat(3)])
    expect(when({ kind: 'resume', conversationId: 'direct_alice_bob' })).toEqual({
      ok: true,
      value: { resumed: false, events: [resumed('direct_alice_bob')] },
    })
  })

  test('of a conversation with nothing to count appends nothing', async () => {
    const { when } = await given([...agents, direct('direct_alice_bob', 'alice', 'bob')])
    expect(when({ kind: 'resume', conversationId: 'direct_alice_bob' })).toEqual({ ok: true, value: { resumed: false, events: [] } })
  })
})

describe('pause', () => {
  const chatting = [...agents, human('hugo'), direct('direct_alice_bob', 'alice', 'bob'), ...chat(3)]

  test('by the operator pauses at the current count, and says so', async () => {
    const { when } = await given(chatting)
    expect(when({ kind: 'pause', conversationId: 'direct_alice_bob' })).toEqual({
      ok: true,
      value: {
        paused: true,
        events: [{ type: 'ConversationPaused', data: { conversationId: 'direct_alice_bob', hops: 3, pausedBy: 'operator' } }],
      },
    })
  })

  test('by a human, member or not, names the human; agents are then refused with who paused', async () => {
    const { when } = await given(chatting)
    const pause = when({ kind: 'pause', conversationId: 'direct_alice_bob', partnerId: 'hugo' })
    expect(pause).toEqual({
      ok: true,
      value: {
        paused: true,
        events: [{ type: 'ConversationPaused', data: { conversationId: 'direct_alice_bob', hops: 3, pausedBy: 'human', partnerId: 'hugo' } }],
      },
    })
    const after = await given([...chatting, ...(pause.ok ? pause.value.events : [])], { maxHops: 0 })
    expect(after.when(talk('bob', { to: 'alice' }))).toEqual(
      refused({ reason: 'conversation_paused', conversationId: 'direct_alice_bob', hops: 3, pausedBy: 'human' }),
    )
  })

  test('of a paused conversation appends nothing', async () => {
    const { when } = await given([...chatting, paused('direct_alice_bob', 3)])
    expect(when({ kind: 'pause', conversationId: 'direct_alice_bob' })).toEqual({ ok: true, value: { paused: false, events: [] } })
  })

  test('refuses an agent, an unknown conversation and an archived one', async () => {
    const { when } = await given([...chatting, group('group_1', 'Team', ['alice', 'bob']), left('group_1', 'alice'), left('group_1', 'bob'), archived('group_1')])
    expect(when({ kind: 'pause', conversationId: 'direct_alice_bob', partnerId: 'alice' })).toEqual(
      refused({ reason: 'not_human', partnerId: 'alice', action: 'pause a conversation' }),
    )
    expect(when({ kind: 'pause', conversationId: 'group_x' })).toEqual(refused({ reason: 'unknown_conversation', conversationId: 'group_x' }))
    expect(when({ kind: 'pause', conversationId: 'group_1' })).toEqual(refused({ reason: 'conversation_archived', conversationId: 'group_1' }))
  })
})

describe('addMembers', () => {
  const team = [...agents, registered('dave'), group('group_1', 'Team', ['alice', 'bob'])]

  test('a member adds partners; those already in are left out', async () => {
    const { when } = await given(team)
    expect(when({ kind: 'addMembers', partnerId: 'bob', conversationId: 'group_1', members: ['carol', 'alice', 'dave', 'carol'] })).toEqual({
      ok: true,
      value: { added: ['carol', 'dave'], events: [added('group_1', 'bob', ['carol', 'dave'])] },
    })
  })

  test('a partner who left may be added back', async () => {
    const { when } = await given([...team, left('group_1', 'alice')])
    expect(when({ kind: 'addMembers', partnerId: 'bob', conversationId: 'group_1', members: ['alice'] })).toEqual({
      ok: true,
      value: { added: ['alice'], events: [added('group_1', 'bob', ['alice'])] },
    })
  })

  test('adding only current members appends nothing', async () => {
    const { when } = await given(team)
    expect(when({ kind: 'addMembers', partnerId: 'bob', conversationId: 'group_1', members: ['alice'] })).toEqual({
      ok: true,
      value: { added: [], events: [] },
    })
  })

  const refusals: Array<[string, DuoEvent[], Command, Rejection, Partial<Rules>?]> = [
    ['a partner who is not a member', [], { kind: 'addMembers', partnerId: 'carol', conversationId: 'group_1', members: ['dave'] }, { reason: 'not_a_participant', conversationId: 'group_1' }],
    ['a member who left', [left('group_1', 'bob')], { kind: 'addMembers', partnerId: 'bob', conversationId: 'group_1', members: ['dave'] }, { reason: 'not_a_participant', conversationId: 'group_1' }],
    ['an unknown partner to add', [], { kind: 'addMembers', partnerId: 'bob', conversationId: 'group_1', members: ['ghost'] }, { reason: 'unknown_partner', partnerId: 'ghost' }],
    ['a retired partner to add', [retired('dave')], { kind: 'addMembers', partnerId: 'bob', conversationId: 'group_1', members: ['dave'] }, { reason: 'partner_retired', partnerId: 'dave' }],
    ['an unknown conversation', [], { kind: 'addMembers', partnerId: 'bob', conversationId: 'group_x', members: ['dave'] }, { reason: 'unknown_conversation', conversationId: 'group_x' }],
    ['a direct conversation', [direct('direct_alice_bob', 'alice', 'bob')], { kind: 'addMembers', partnerId: 'bob', conversationId: 'direct_alice_bob', members: ['dave'] }, { reason: 'not_a_group', conversationId: 'direct_alice_bob' }],
    ['an archived group', [left('group_1', 'alice'), left('group_1', 'bob'), archived('group_1')], { kind: 'addMembers', partnerId: 'bob', conversationId: 'group_1', members: ['dave'] }, { reason: 'conversation_archived', conversationId: 'group_1' }],
    ['a group that would grow past its limit', [], { kind: 'addMembers', partnerId: 'bob', conversationId: 'group_1', members: ['carol', 'dave'] }, { reason: 'group_too_large', limit: 3 }, { maxGroupMembers: 3 }],
    ['a partner already in as many groups as allowed', [group('group_2', 'Other', ['dave', 'carol'])], { kind: 'addMembers', partnerId: 'bob', conversationId: 'group_1', members: ['dave'] }, { reason: 'too_many_groups', partnerId: 'dave', limit: 1 }, { maxGroupsPerPartner: 1 }],
  ]
  for (const [what, extra, command, rejection, rules] of refusals)
    test(`refuses ${what}`, async () => {
      const { when } = await given([...team, ...extra], rules)
      expect(when(command)).toEqual(refused(rejection))
    })
})

describe('createGroup and the bound on groups per partner', () => {
  test('refuses a member already in as many groups as allowed', async () => {
    const { when } = await given([...agents, group('group_1', 'A', ['alice', 'carol']), group('group_2', 'B', ['bob', 'carol'])], {
      maxGroupsPerPartner: 2,
    })
    expect(when({ kind: 'createGroup', creatorId: 'alice', name: 'C', participants: ['bob', 'carol'], groupId: 'group_3' })).toEqual({
      ok: false,
      rejection: { reason: 'too_many_groups', partnerId: 'carol', limit: 2 },
    })
  })

  test('a group left no longer counts', async () => {
    const { when } = await given([...agents, group('group_1', 'A', ['alice', 'carol']), left('group_1', 'carol')], { maxGroupsPerPartner: 1 })
    expect(when({ kind: 'createGroup', creatorId: 'bob', name: 'C', participants: ['carol'], groupId: 'group_3' })).toMatchObject({ ok: true })
  })

  test('direct conversations do not count', async () => {
    const { when } = await given([...agents, direct('direct_alice_carol', 'alice', 'carol')], { maxGroupsPerPartner: 1 })
    expect(when({ kind: 'createGroup', creatorId: 'bob', name: 'C', participants: ['carol'], groupId: 'group_3' })).toMatchObject({ ok: true })
  })

  test('refuses a retired member', async () => {
    const { when } = await given([...agents, retired('carol')])
    expect(when({ kind: 'createGroup', creatorId: 'bob', name: 'C', participants: ['carol'], groupId: 'group_3' })).toEqual({
      ok: false,
      rejection: { reason: 'partner_retired', partnerId: 'carol' },
    })
  })
})

describe('rename', () => {
  const team = [...agents, group('group_1', 'Team', ['alice', 'bob'])]

  test('a member renames the group', async () => {
    const { when } = await given(team)
    expect(when({ kind: 'rename', partnerId: 'alice', conversationId: 'group_1', name: 'Core team' })).toEqual({
      ok: true,
      value: { events: [{ type: 'ConversationRenamed', data: { conversationId: 'group_1', name: 'Core team', renamedBy: 'alice' } }] },
    })
  })

  test('the same name appends nothing', async () => {
    const { when } = await given(team)
    expect(when({ kind: 'rename', partnerId: 'alice', conversationId: 'group_1', name: 'Team' })).toEqual({ ok: true, value: { events: [] } })
  })

  test('refuses a partner who is not a member', async () => {
    const { when } = await given(team)
    expect(when({ kind: 'rename', partnerId: 'carol', conversationId: 'group_1', name: 'Mine' })).toEqual({
      ok: false,
      rejection: { reason: 'not_a_participant', conversationId: 'group_1' },
    })
  })

  test('refuses a direct conversation', async () => {
    const { when } = await given([...team, direct('direct_alice_bob', 'alice', 'bob')])
    expect(when({ kind: 'rename', partnerId: 'alice', conversationId: 'direct_alice_bob', name: 'Us' })).toEqual({
      ok: false,
      rejection: { reason: 'not_a_group', conversationId: 'direct_alice_bob' },
    })
  })
})

describe('retire', () => {
  test('retires the partner, takes it out of its groups, archives what it leaves empty and its direct conversations', async () => {
    const { when } = await given([
      ...agents,
      group('group_1', 'Team', ['alice', 'bob']),
      group('group_2', 'Solo', ['carol', 'bob']),
      left('group_2', 'carol'),
      direct('direct_bob_carol', 'bob', 'carol'),
    ])
    expect(when({ kind: 'retire', partnerId: 'bob' })).toEqual({
      ok: true,
      value: {
        events: [
          { type: 'PartnerRetired', data: { partnerId: 'bob' } },
          { type: 'ConversationArchived', data: { conversationId: 'direct_bob_carol' } },
          { type: 'ParticipantLeft', data: { conversationId: 'group_1', partnerId: 'bob' } },
          { type: 'ParticipantLeft', data: { conversationId: 'group_2', partnerId: 'bob' } },
          { type: 'ConversationArchived', data: { conversationId: 'group_2' } },
        ],
      },
    })
  })

  test('refuses an unknown partner, and one already retired', async () => {
    const { when } = await given([...agents, retired('bob')])
    expect(when({ kind: 'retire', partnerId: 'ghost' })).toEqual({ ok: false, rejection: { reason: 'unknown_partner', partnerId: 'ghost' } })
    expect(when({ kind: 'retire', partnerId: 'bob' })).toEqual({ ok: false, rejection: { reason: 'partner_retired', partnerId: 'bob' } })
  })

  describe('a retired partner', () => {
    const history = [...agents, direct('direct_alice_bob', 'alice', 'bob'), ...chat(2), retired('bob'), archived('direct_alice_bob')]
    const refusal = refused({ reason: 'partner_retired', partnerId: 'bob' })
    const acts: Array<[string, Command]> = [
      ['talk', talk('bob', { to: 'carol' })],
      ['register again', { kind: 'register', partnerId: 'bob' }],
      ['set its status', { kind: 'setStatus', partnerId: 'bob', message: 'back' }],
      ['switch notifications', { kind: 'setNotifications', partnerId: 'bob', enabled: false }],
      ['acknowledge', { kind: 'ack', partnerId: 'bob', cursor: 1 }],
      ['unregister', { kind: 'unregister', partnerId: 'bob' }],
      ['get a new token', { kind: 'reissueToken', partnerId: 'bob', newTokenHash: 'b'.repeat(64) }],
      ['create a group', { kind: 'createGroup', creatorId: 'bob', name: 'G', participants: ['carol'], groupId: 'group_9' }],
    ]
    for (const [what, command] of acts)
      test(`cannot ${what}`, async () => {
        const { when } = await given(history)
        expect(when(command)).toEqual(refusal)
      })

    test('cannot be messaged', async () => {
      const { when } = await given(history)
      expect(when(talk('carol', { to: 'bob' }))).toEqual(refusal)
      expect(when(talk('alice', { to: 'bob' }))).toEqual(refusal)
    })

    test('leaves its direct conversations archived, with its messages kept', async () => {
      const { store, when } = await given(history)
      expect(when(talk('alice', { conversationId: 'direct_alice_bob' }))).toEqual({
        ok: false,
        rejection: { reason: 'conversation_archived', conversationId: 'direct_alice_bob' },
      })
      expect(store.views.messages.history('direct_alice_bob', 10).map((m) => m.from_id)).toEqual(['alice', 'bob'])
    })
  })
})

describe('register with a kind', () => {
  test('records a human; an agent is recorded without a kind', async () => {
    const { when } = await given([])
    expect(when({ kind: 'register', partnerId: 'hugo', partnerKind: 'human' })).toEqual({
      ok: true,
      value: { tokenIssued: false, events: [{ type: 'PartnerRegistered', data: { partnerId: 'hugo', name: 'hugo', projectPath: null, kind: 'human' } }] },
    })
    expect(when({ kind: 'register', partnerId: 'alice', partnerKind: 'agent' })).toEqual({
      ok: true,
      value: { tokenIssued: false, events: [{ type: 'PartnerRegistered', data: { partnerId: 'alice', name: 'alice', projectPath: null } }] },
    })
  })
})
