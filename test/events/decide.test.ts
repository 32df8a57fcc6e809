// The pure rules: given events in a fresh store, when a command, then events or a typed refusal.
import { describe, expect, test } from 'bun:test'
import type { Command } from '../../src/events/decide.ts'
import type { DuoEvent } from '../../src/events/schema.ts'
import { given } from './given.ts'

const HASH_A = 'a'.repeat(64)
const HASH_B = 'b'.repeat(64)

const registered = (partnerId: string, tokenHash?: string): DuoEvent => ({
  type: 'PartnerRegistered',
  data: { partnerId, name: partnerId, projectPath: null, ...(tokenHash ? { tokenHash } : {}) },
})
const offline = (partnerId: string): DuoEvent => ({ type: 'PartnerWentOffline', data: { partnerId } })
const direct = (conversationId: string, a: string, b: string): DuoEvent => ({
  type: 'ConversationCreated',
  data: { conversationId, kind: 'direct', name: null, createdBy: a, participants: [a, b] },
})
const group = (conversationId: string, members: string[]): DuoEvent => ({
  type: 'ConversationCreated',
  data: { conversationId, kind: 'group', name: 'Team', createdBy: members[0]!, participants: members },
})
const sent = (conversationId: string, fromId: string, content = 'hi', idempotencyKey?: string): DuoEvent => ({
  type: 'MessageSent',
  data: { conversationId, fromId, content, ...(idempotencyKey ? { idempotencyKey } : {}) },
})
const left = (conversationId: string, partnerId: string): DuoEvent => ({ type: 'ParticipantLeft', data: { conversationId, partnerId } })
const archived = (conversationId: string): DuoEvent => ({ type: 'ConversationArchived', data: { conversationId } })
const read = (partnerId: string, conversationId: string, seq: number): DuoEvent => ({
  type: 'ReadPositionAdvanced',
  data: { partnerId, conversationId, seq },
})

const talk = (fromId: string, target: { to?: string; conversationId?: string }, content = 'hello', idempotencyKey?: string): Extract<Command, { kind: 'talk' }> => ({
  kind: 'talk',
  fromId,
  ...target,
  content,
  ...(idempotencyKey ? { idempotencyKey } : {}),
})

describe('register', () => {
  test('a new partner is registered under its id as name, and gets the offered token', async () => {
    const { when } = await given([])
    expect(when({ kind: 'register', partnerId: 'alice', newTokenHash: HASH_A })).toEqual({
      ok: true,
      value: {
        tokenIssued: true,
        events: [{ type: 'PartnerRegistered', data: { partnerId: 'alice', name: 'alice', projectPath: null, tokenHash: HASH_A } }],
      },
    })
  })

  test('keeps name and project path when given', async () => {
    const { when } = await given([])
    const result = when({ kind: 'register', partnerId: 'alice', name: 'Alice', projectPath: '/p' })
    expect(result).toEqual({
      ok: true,
      value: {
        tokenIssued: false,
        events: [{ type: 'PartnerRegistered', data: { partnerId: 'alice', name: 'Alice', projectPath: '/p' } }],
      },
    })
  })

  test('re-registering keeps the token the partner already has', async () => {
    const { when } = await given([registered('alice', HASH_A), offline('alice')])
    expect(when({ kind: 'register', partnerId: 'alice', newTokenHash: HASH_B })).toEqual({
      ok: true,
      value: {
        tokenIssued: false,
        events: [{ type: 'PartnerRegistered', data: { partnerId: 'alice', name: 'alice', projectPath: null } }],
      },
    })
  })

  test('issues a token to a partner that registered without one', async () => {
    const { when } = await given([registered('alice')])
    const result = when({ kind: 'register', partnerId: 'alice', newTokenHash: HASH_B })
    expect(result.ok && result.value.tokenIssued).toBe(true)
    expect(result.ok && result.value.events[0]).toMatchObject({ data: { tokenHash: HASH_B } })
  })
})

describe('register: ids unique without regard to case or look-alike letters', () => {
  test('refuses a new id equal to an existing one but for case, naming the existing one', async () => {
    const { when } = await given([registered('alice')])
    for (const partnerId of ['ALICE', 'Alice'])
      expect(when({ kind: 'register', partnerId })).toEqual({
        ok: false,
        rejection: { reason: 'partner_id_taken', partnerId, existing: 'alice', lookalike: false },
      })
  })

  test('refuses a look-alike (I and 1 for l, 0 for o), and keeps ids that only share letters apart', async () => {
    const { when } = await given([registered('alice'), registered('bob'), registered('mail')])
    for (const [partnerId, existing] of [['aIice', 'alice'], ['a1ice', 'alice'], ['b0b', 'bob']] as const)
      expect(when({ kind: 'register', partnerId })).toEqual({
        ok: false,
        rejection: { reason: 'partner_id_taken', partnerId, existing, lookalike: true },
      })
    for (const partnerId of ['mall', 'alice2', 'bobby', 'ilice']) expect(when({ kind: 'register', partnerId })).toMatchObject({ ok: true })
  })

  test('an old log holding both Alice and alice still lets each register again', async () => {
    const { when } = await given([registered('Alice'), registered('alice')])
    for (const partnerId of ['Alice', 'alice']) expect(when({ kind: 'register', partnerId })).toMatchObject({ ok: true })
  })
})

describe('register in token mode (the presented token checked by the rules too)', () => {
  test('re-registers with the token the id holds', async () => {
    const { when } = await given([registered('alice', HASH_A)])
    expect(when({ kind: 'register', partnerId: 'alice', presentedTokenHash: HASH_A, newTokenHash: HASH_B })).toMatchObject({
      ok: true,
      value: { tokenIssued: false },
    })
  })

  test('refuses an id that holds a token when none is presented', async () => {
    const { when } = await given([registered('alice', HASH_A)])
    expect(when({ kind: 'register', partnerId: 'alice', presentedTokenHash: null, newTokenHash: HASH_B })).toEqual({
      ok: false,
      rejection: { reason: 'token_required', partnerId: 'alice' },
    })
  })

  test("refuses another partner's token", async () => {
    const { when } = await given([registered('alice', HASH_A)])
    expect(when({ kind: 'register', partnerId: 'alice', presentedTokenHash: HASH_B, newTokenHash: HASH_B })).toEqual({
      ok: false,
      rejection: { reason: 'acting_for_another', partnerId: 'alice' },
    })
  })

  test('a new id needs no token to present', async () => {
    const { when } = await given([])
    expect(when({ kind: 'register', partnerId: 'alice', presentedTokenHash: null, newTokenHash: HASH_A })).toMatchObject({
      ok: true,
      value: { tokenIssued: true },
    })
  })
})

describe('unregister', () => {
  test('takes an online partner offline', async () => {
    const { when } = await given([registered('alice')])
    expect(when({ kind: 'unregister', partnerId: 'alice' })).toEqual({
      ok: true,
      value: { events: [{ type: 'PartnerWentOffline', data: { partnerId: 'alice' } }] },
    })
  })

  test('appends nothing for a partner already offline', async () => {
    const { when } = await given([registered('alice'), offline('alice')])
    expect(when({ kind: 'unregister', partnerId: 'alice' })).toEqual({ ok: true, value: { events: [] } })
  })

  test('refuses an unknown partner', async () => {
    const { when } = await given([])
    expect(when({ kind: 'unregister', partnerId: 'ghost' })).toEqual({
      ok: false,
      rejection: { reason: 'unknown_partner', partnerId: 'ghost' },
    })
  })
})

describe('reissueToken', () => {
  test('records the new token hash', async () => {
    const { when } = await given([registered('alice', HASH_A)])
    expect(when({ kind: 'reissueToken', partnerId: 'alice', newTokenHash: HASH_B })).toEqual({
      ok: true,
      value: { tokenIssued: true, events: [{ type: 'PartnerTokenReissued', data: { partnerId: 'alice', tokenHash: HASH_B } }] },
    })
  })

  test('refuses an unknown partner', async () => {
    const { when } = await given([])
    expect(when({ kind: 'reissueToken', partnerId: 'ghost', newTokenHash: HASH_B })).toEqual({
      ok: false,
      rejection: { reason: 'unknown_partner', partnerId: 'ghost' },
    })
  })
})

describe('talk to a partner', () => {
  test('creates the direct conversation, named by the sorted pair, and sends into it', async () => {
    const { when } = await given([registered('bob'), registered('alice')])
    expect(when(talk('bob', { to: 'alice' }))).toEqual({
      ok: true,
      value: {
        conversationId: 'direct_alice_bob',
        events: [
          {
            type: 'ConversationCreated',
            data: { conversationId: 'direct_alice_bob', kind: 'direct', name: null, createdBy: 'bob', participants: ['bob', 'alice'] },
          },
          { type: 'MessageSent', data: { conversationId: 'direct_alice_bob', fromId: 'bob', content: 'hello' } },
        ],
      },
    })
  })

  test('reuses the direct conversation whoever opened it', async () => {
    const { when } = await given([registered('alice'), registered('bob'), direct('direct_alice_bob', 'alice', 'bob')])
    expect(when(talk('bob', { to: 'alice' }, 'back'))).toEqual({
      ok: true,
      value: {
        conversationId: 'direct_alice_bob',
        events: [{ type: 'MessageSent', data: { conversationId: 'direct_alice_bob', fromId: 'bob', content: 'back' } }],
      },
    })
  })

  test('refuses an unknown recipient', async () => {
    const { when } = await given([registered('alice')])
    expect(when(talk('alice', { to: 'ghost' }))).toEqual({ ok: false, rejection: { reason: 'unknown_partner', partnerId: 'ghost' } })
  })

  test('refuses an unknown sender', async () => {
    const { when } = await given([registered('alice')])
    expect(when(talk('ghost', { to: 'alice' }))).toEqual({ ok: false, rejection: { reason: 'unknown_partner', partnerId: 'ghost' } })
  })

  test('refuses talking to oneself', async () => {
    const { when } = await given([registered('alice')])
    expect(when(talk('alice', { to: 'alice' }))).toEqual({ ok: false, rejection: { reason: 'talk_to_self' } })
  })

  test('refuses a message with neither recipient nor conversation', async () => {
    const { when } = await given([registered('alice')])
    expect(when(talk('alice', {}))).toEqual({ ok: false, rejection: { reason: 'no_recipient' } })
  })

  test('refuses an empty message', async () => {
    const { when } = await given([registered('alice'), registered('bob')])
    expect(when(talk('alice', { to: 'bob' }, ''))).toMatchObject({ ok: false, rejection: { reason: 'invalid_request' } })
  })
})

describe('direct conversation ids', () => {
  test('x+y_z and x_y+z share a name but get distinct conversations, each found again by its members', async () => {
    const { store, when } = await given(['x', 'y_z', 'x_y', 'z'].map((id) => registered(id)))
    const first = await store.commands.execute(talk('x', { to: 'y_z' }))
    const second = await store.commands.execute(talk('z', { to: 'x_y' }))
    expect(first.ok && first.value.decision.conversationId).toBe('direct_x_y_z')
    expect(second.ok && second.value.decision.conversationId).toBe('direct_x_y_z_2')
    expect(when(talk('y_z', { to: 'x' }))).toMatchObject({ ok: true, value: { conversationId: 'direct_x_y_z' } })
    expect(when(talk('x_y', { to: 'z' }))).toMatchObject({ ok: true, value: { conversationId: 'direct_x_y_z_2' } })
    expect(store.views.conversations.members('direct_x_y_z_2').sort()).toEqual(['x_y', 'z'])
  })
})

describe('talk into a conversation', () => {
  const team = [registered('alice'), registered('bob'), registered('carol'), group('group_1', ['alice', 'bob'])]

  test('sends into a conversation the sender is a member of', async () => {
    const { when } = await given(team)
    expect(when(talk('bob', { conversationId: 'group_1' }))).toEqual({
      ok: true,
      value: {
        conversationId: 'group_1',
        events: [{ type: 'MessageSent', data: { conversationId: 'group_1', fromId: 'bob', content: 'hello' } }],
      },
    })
  })

  test('refuses an unknown conversation', async () => {
    const { when } = await given(team)
    expect(when(talk('alice', { conversationId: 'group_9' }))).toEqual({
      ok: false,
      rejection: { reason: 'unknown_conversation', conversationId: 'group_9' },
    })
  })

  test('refuses a partner who is not a participant', async () => {
    const { when } = await given(team)
    expect(when(talk('carol', { conversationId: 'group_1' }))).toEqual({
      ok: false,
      rejection: { reason: 'not_a_participant', conversationId: 'group_1' },
    })
  })

  test('refuses a message from a partner who left', async () => {
    const { when } = await given([...team, left('group_1', 'bob')])
    expect(when(talk('bob', { conversationId: 'group_1' }))).toEqual({
      ok: false,
      rejection: { reason: 'not_a_participant', conversationId: 'group_1' },
    })
  })

  test('refuses an archived conversation, even to a member', async () => {
    const { when } = await given([...team, archived('group_1')])
    expect(when(talk('alice', { conversationId: 'group_1' }))).toEqual({
      ok: false,
      rejection: { reason: 'conversation_archived', conversationId: 'group_1' },
    })
  })

  test('says archived, not "not a participant", once everyone has left', async () => {
    const { when } = await given([...team, left('group_1', 'alice'), left('group_1', 'bob'), archived('group_1')])
    expect(when(talk('alice', { conversationId: 'group_1' }))).toEqual({
      ok: false,
      rejection: { reason: 'conversation_archived', conversationId: 'group_1' },
    })
  })
})

describe('idempotent talk', () => {
  const history = [registered('alice'), registered('bob'), direct('direct_alice_bob', 'alice', 'bob'), sent('direct_alice_bob', 'alice', 'once', 'k1')]

  test('a retry with the same key from the same sender appends nothing and names the first message', async () => {
    const { when } = await given(history)
    expect(when(talk('alice', { to: 'bob' }, 'once', 'k1'))).toEqual({
      ok: true,
      value: { events: [], conversationId: 'direct_alice_bob', duplicateOf: 4 },
    })
  })

  test('the same key from another sender is a new message', async () => {
    const { when } = await given(history)
    expect(when(talk('bob', { to: 'alice' }, 'mine', 'k1'))).toMatchObject({
      ok: true,
      value: { events: [{ type: 'MessageSent', data: { fromId: 'bob', idempotencyKey: 'k1' } }] },
    })
  })
})

describe('message size', () => {
  const pair = [registered('alice'), registered('bob')]

  test('accepts a message of exactly the limit in bytes', async () => {
    const { when } = await given(pair, { maxMessageBytes: 10 })
    expect(when(talk('alice', { to: 'bob' }, 'a'.repeat(10))).ok).toBe(true)
  })

  test('refuses one byte more', async () => {
    const { when } = await given(pair, { maxMessageBytes: 10 })
    expect(when(talk('alice', { to: 'bob' }, 'a'.repeat(11)))).toEqual({
      ok: false,
      rejection: { reason: 'message_too_large', limit: 10 },
    })
  })

  test('counts UTF-8 bytes, not characters', async () => {
    const { when } = await given(pair, { maxMessageBytes: 10 })
    expect(when(talk('alice', { to: 'bob' }, 'é'.repeat(5))).ok).toBe(true) // 10 bytes
    expect(when(talk('alice', { to: 'bob' }, 'é'.repeat(6)))).toMatchObject({ ok: false, rejection: { reason: 'message_too_large' } })
    expect(when(talk('alice', { to: 'bob' }, '😀😀😀'))).toMatchObject({ ok: false, rejection: { reason: 'message_too_large' } }) // 12 bytes, 6 UTF-16 units
  })

  test('the default limit is 64 KiB', async () => {
    const { when } = await given(pair)
    expect(when(talk('alice', { to: 'bob' }, 'x'.repeat(64 * 1024))).ok).toBe(true)
    expect(when(talk('alice', { to: 'bob' }, 'x'.repeat(64 * 1024 + 1)))).toEqual({
      ok: false,
      rejection: { reason: 'message_too_large', limit: 64 * 1024 },
    })
  })
})

describe('createGroup', () => {
  const people = ['alice', 'bob', 'carol'].map((id) => registered(id))
  const create = (creatorId: string, participants: string[]): Command => ({
    kind: 'createGroup',
    creatorId,
    name: 'Release',
    participants,
    groupId: 'group_r1',
  })

  test('creates the group with the creator first and each member once', async () => {
    const { when } = await given(people)
    expect(when(create('alice', ['bob', 'alice', 'carol', 'bob']))).toEqual({
      ok: true,
      value: {
        conversationId: 'group_r1',
        events: [
          {
            type: 'ConversationCreated',
            data: { conversationId: 'group_r1', kind: 'group', name: 'Release', createdBy: 'alice', participants: ['alice', 'bob', 'carol'] },
          },
        ],
      },
    })
  })

  test('refuses an unknown member', async () => {
    const { when } = await given(people)
    expect(when(create('alice', ['bob', 'ghost']))).toEqual({ ok: false, rejection: { reason: 'unknown_partner', partnerId: 'ghost' } })
  })

  test('refuses an unknown creator', async () => {
    const { when } = await given(people)
    expect(when(create('ghost', ['bob']))).toEqual({ ok: false, rejection: { reason: 'unknown_partner', partnerId: 'ghost' } })
  })

  test('refuses more members than the limit, the creator included', async () => {
    const { when } = await given(people, { maxGroupMembers: 2 })
    expect(when(create('alice', ['bob']))).toMatchObject({ ok: true })
    expect(when(create('alice', ['bob', 'carol']))).toEqual({ ok: false, rejection: { reason: 'group_too_large', limit: 2 } })
  })

  test('refuses a group of the creator alone', async () => {
    const { when } = await given(people)
    expect(when(create('alice', ['alice']))).toMatchObject({ ok: false, rejection: { reason: 'invalid_request' } })
  })
})

describe('leave', () => {
  const team = [registered('alice'), registered('bob'), group('group_1', ['alice', 'bob']), direct('direct_alice_bob', 'alice', 'bob')]

  test('a member leaves a group that others remain in', async () => {
    const { when } = await given(team)
    expect(when({ kind: 'leave', partnerId: 'alice', conversationId: 'group_1' })).toEqual({
      ok: true,
      value: { archived: false, events: [{ type: 'ParticipantLeft', data: { conversationId: 'group_1', partnerId: 'alice' } }] },
    })
  })

  test('the last member leaving archives the group', async () => {
    const { when } = await given([...team, left('group_1', 'alice')])
    expect(when({ kind: 'leave', partnerId: 'bob', conversationId: 'group_1' })).toEqual({
      ok: true,
      value: {
        archived: true,
        events: [
          { type: 'ParticipantLeft', data: { conversationId: 'group_1', partnerId: 'bob' } },
          { type: 'ConversationArchived', data: { conversationId: 'group_1' } },
        ],
      },
    })
  })

  test('refuses leaving a direct conversation', async () => {
    const { when } = await given(team)
    expect(when({ kind: 'leave', partnerId: 'alice', conversationId: 'direct_alice_bob' })).toEqual({
      ok: false,
      rejection: { reason: 'cannot_leave_direct', conversationId: 'direct_alice_bob' },
    })
  })

  test('refuses a partner who already left', async () => {
    const { when } = await given([...team, left('group_1', 'alice')])
    expect(when({ kind: 'leave', partnerId: 'alice', conversationId: 'group_1' })).toEqual({
      ok: false,
      rejection: { reason: 'not_a_participant', conversationId: 'group_1' },
    })
  })

  test('refuses an unknown conversation', async () => {
    const { when } = await given(team)
    expect(when({ kind: 'leave', partnerId: 'alice', conversationId: 'group_x' })).toEqual({
      ok: false,
      rejection: { reason: 'unknown_conversation', conversationId: 'group_x' },
    })
  })
})

describe('settings', () => {
  test('setStatus records the message, and null clears it', async () => {
    const { when } = await given([registered('alice')])
    expect(when({ kind: 'setStatus', partnerId: 'alice', message: 'reviewing' })).toEqual({
      ok: true,
      value: { events: [{ type: 'PartnerStatusChanged', data: { partnerId: 'alice', message: 'reviewing' } }] },
    })
    expect(when({ kind: 'setStatus', partnerId: 'alice', message: null })).toEqual({
      ok: true,
      value: { events: [{ type: 'PartnerStatusChanged', data: { partnerId: 'alice', message: null } }] },
    })
  })

  test('setNotifications records the switch', async () => {
    const { when } = await given([registered('alice')])
    expect(when({ kind: 'setNotifications', partnerId: 'alice', enabled: false })).toEqual({
      ok: true,
      value: { events: [{ type: 'NotificationsSwitched', data: { partnerId: 'alice', enabled: false } }] },
    })
  })

  test('both refuse an unknown partner', async () => {
    const { when } = await given([])
    const refusal = { ok: false, rejection: { reason: 'unknown_partner', partnerId: 'ghost' } } as const
    expect(when({ kind: 'setStatus', partnerId: 'ghost', message: 'x' })).toEqual(refusal)
    expect(when({ kind: 'setNotifications', partnerId: 'ghost', enabled: true })).toEqual(refusal)
  })
})

describe('ack', () => {
  // seq: 1 alice, 2 bob, 3 carol, 4 direct, 5 group, 6 msg(direct), 7 msg(group), 8 msg(direct), 9 msg(group, by alice)
  const history = [
    registered('alice'),
    registered('bob'),
    registered('carol'),
    direct('direct_alice_bob', 'alice', 'bob'),
    group('group_1', ['alice', 'bob', 'carol']),
    sent('direct_alice_bob', 'bob'),
    sent('group_1', 'carol'),
    sent('direct_alice_bob', 'bob'),
    sent('group_1', 'alice'),
  ]

  test('advances each conversation to its newest message at or below the cursor', async () => {
    const { when } = await given(history)
    const result = when({ kind: 'ack', partnerId: 'alice', cursor: 7 })
    if (!result.ok) throw new Error(`refused: ${result.rejection.reason}`)
    // One event per conversation; their order among themselves carries no meaning.
    const byConversation = [...result.value.events].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)))
    expect(byConversation).toEqual([
      { type: 'ReadPositionAdvanced', data: { partnerId: 'alice', conversationId: 'direct_alice_bob', seq: 6 } },
      { type: 'ReadPositionAdvanced', data: { partnerId: 'alice', conversationId: 'group_1', seq: 7 } },
    ])
  })

  test('only advances: positions already there give no events', async () => {
    const { when } = await given([...history, read('alice', 'direct_alice_bob', 8), read('alice', 'group_1', 9)])
    expect(when({ kind: 'ack', partnerId: 'alice', cursor: 9 })).toEqual({ ok: true, value: { events: [] } })
    expect(when({ kind: 'ack', partnerId: 'alice', cursor: 6 })).toEqual({ ok: true, value: { events: [] } })
  })

  test('limited to one conversation when named', async () => {
    const { when } = await given(history)
    expect(when({ kind: 'ack', partnerId: 'alice', cursor: 9, conversationId: 'group_1' })).toEqual({
      ok: true,
      value: { events: [{ type: 'ReadPositionAdvanced', data: { partnerId: 'alice', conversationId: 'group_1', seq: 9 } }] },
    })
  })

  test('refuses a cursor beyond the end of the log', async () => {
    const { when } = await given(history)
    expect(when({ kind: 'ack', partnerId: 'alice', cursor: 10 })).toEqual({
      ok: false,
      rejection: { reason: 'cursor_ahead', cursor: 10, lastSeq: 9 },
    })
  })

  test('refuses an unknown partner, an unknown conversation, and one the partner is not in', async () => {
    const { when } = await given(history)
    expect(when({ kind: 'ack', partnerId: 'ghost', cursor: 1 })).toEqual({
      ok: false,
      rejection: { reason: 'unknown_partner', partnerId: 'ghost' },
    })
    expect(when({ kind: 'ack', partnerId: 'alice', cursor: 1, conversationId: 'group_x' })).toEqual({
      ok: false,
      rejection: { reason: 'unknown_conversation', conversationId: 'group_x' },
    })
    expect(when({ kind: 'ack', partnerId: 'carol', cursor: 1, conversationId: 'direct_alice_bob' })).toEqual({
      ok: false,
      rejection: { reason: 'not_a_participant', conversationId: 'direct_alice_bob' },
    })
  })
})
