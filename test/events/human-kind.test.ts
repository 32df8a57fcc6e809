// Human partners: their kind is kept across registrations, and they may step into any conversation.
import { afterEach, describe, expect, test } from 'bun:test'
import { type Command, decide } from '../../src/events/decide.ts'
import type { DuoEvent } from '../../src/events/schema.ts'
import { decisionView } from '../../src/projections/index.ts'
import { openStore, type Store } from '../../src/store.ts'

const stores: Store[] = []
afterEach(async () => {
  for (const store of stores.splice(0)) await store.close()
})

async function given(...history: DuoEvent[]) {
  const store = openStore({ path: ':memory:' })
  stores.push(store)
  if (history.length > 0) await store.log.transact(() => store.log.append(history))
  const view = decisionView(store.views, store.log.lastSeq)
  return { store, when: <C extends Command>(command: C) => decide(command, view, store.rules) }
}

const agent = (partnerId: string): DuoEvent => ({ type: 'PartnerRegistered', data: { partnerId, name: partnerId, projectPath: null } })
const human = (partnerId: string): DuoEvent => ({
  type: 'PartnerRegistered',
  data: { partnerId, name: partnerId, projectPath: null, kind: 'human' },
})
const direct = (conversationId: string, a: string, b: string): DuoEvent => ({
  type: 'ConversationCreated',
  data: { conversationId, kind: 'direct', name: null, createdBy: a, participants: [a, b] },
})

describe('registering', () => {
  test('an agent registration carries no kind, so old and new agent events read alike', async () => {
    const { when } = await given()
    const result = when({ kind: 'register', partnerId: 'alice' })
    expect(result.ok && result.value.events[0]).toEqual(agent('alice'))
  })

  test('a human registration says so, and a later one without a kind keeps it', async () => {
    const { when } = await given(human('pat'))
    const again = when({ kind: 'register', partnerId: 'pat' })
    expect(again.ok && again.value.events[0]).toEqual(human('pat'))
  })

  test('the partners view keeps the kind, agents by default', async () => {
    const { store } = await given(agent('alice'), human('pat'))
    expect(store.views.partners.get('alice')?.kind).toBe('agent')
    expect(store.views.partners.get('pat')?.kind).toBe('human')
  })
})

describe('a human talking', () => {
  test('may post into a conversation it is not a member of, and the message says a person sent it', async () => {
    const { when } = await given(agent('a'), agent('b'), human('pat'), direct('direct_a_b', 'a', 'b'))
    const result = when({ kind: 'talk', fromId: 'pat', conversationId: 'direct_a_b', content: 'stop, please' })
    expect(result.ok && result.value.events).toEqual([
      { type: 'MessageSent', data: { conversationId: 'direct_a_b', fromId: 'pat', content: 'stop, please', fromKind: 'human' } },
    ])
  })

  test('an agent outside the conversation is still refused', async () => {
    const { when } = await given(agent('a'), agent('b'), agent('c'), direct('direct_a_b', 'a', 'b'))
    expect(when({ kind: 'talk', fromId: 'c', conversationId: 'direct_a_b', content: 'hi' })).toEqual({
      ok: false,
      rejection: { reason: 'not_a_participant', conversationId: 'direct_a_b' },
    })
  })

  test('a message from a human is stored and shown with from_kind human', async () => {
    const { store } = await given(
      agent('a'),
      human('pat'),
      direct('direct_a_pat', 'a', 'pat'),
      { type: 'MessageSent', data: { conversationId: 'direct_a_pat', fromId: 'pat', content: 'hello', fromKind: 'human' } },
    )
    expect(store.views.messages.visibleAfter('a', 0, 10).map((m) => [m.from_id, m.from_kind])).toEqual([['pat', 'human']])
  })
})

const group = (conversationId: string, members: string[]): DuoEvent => ({
  type: 'ConversationCreated',
  data: { conversationId, kind: 'group', name: 'Team', createdBy: members[0]!, participants: members },
})

describe("a person changing a group's members", () => {
  test('adds members without being one', async () => {
    const { when } = await given(agent('a'), agent('b'), agent('c'), human('pat'), group('g1', ['a', 'b']))
    const result = when({ kind: 'addMembers', partnerId: 'pat', conversationId: 'g1', members: ['c'] })
    expect(result.ok && result.value.events).toEqual([
      { type: 'ParticipantsAdded', data: { conversationId: 'g1', addedBy: 'pat', partnerIds: ['c'] } },
    ])
  })

  test('removes members, each recorded as a departure by the person; ids that are not members are left out', async () => {
    const { when } = await given(agent('a'), agent('b'), agent('c'), human('pat'), group('g1', ['a', 'b', 'c']))
    const result = when({ kind: 'removeMembers', partnerId: 'pat', conversationId: 'g1', members: ['b', 'c', 'nobody', 'b'] })
    expect(result).toEqual({
      ok: true,
      value: {
        removed: ['b', 'c'],
        archived: false,
        events: [
          { type: 'ParticipantLeft', data: { conversationId: 'g1', partnerId: 'b', removedBy: 'pat' } },
          { type: 'ParticipantLeft', data: { conversationId: 'g1', partnerId: 'c', removedBy: 'pat' } },
        ],
      },
    })
  })

  test('removing everyone archives the group', async () => {
    const { when } = await given(agent('a'), agent('b'), human('pat'), group('g1', ['a', 'b']))
    const result = when({ kind: 'removeMembers', partnerId: 'pat', conversationId: 'g1', members: ['a', 'b'] })
    expect(result.ok && result.value.archived).toBe(true)
    expect(result.ok && result.value.events.at(-1)).toEqual({ type: 'ConversationArchived', data: { conversationId: 'g1' } })
  })

  test('an agent cannot remove others: not_human', async () => {
    const { when } = await given(agent('a'), agent('b'), group('g1', ['a', 'b']))
    const result = when({ kind: 'removeMembers', partnerId: 'a', conversationId: 'g1', members: ['b'] })
    expect(result.ok === false && result.rejection).toMatchObject({ reason: 'not_human', partnerId: 'a' })
  })

  test('a direct conversation has no members to remove: not_a_group', async () => {
    const { when } = await given(agent('a'), agent('b'), human('pat'), direct('direct_a_b', 'a', 'b'))
    expect(when({ kind: 'removeMembers', partnerId: 'pat', conversationId: 'direct_a_b', members: ['a'] })).toEqual({
      ok: false,
      rejection: { reason: 'not_a_group', conversationId: 'direct_a_b' },
    })
  })

  test('the views forget a removed member', async () => {
    const { store } = await given(
      agent('a'),
      agent('b'),
      human('pat'),
      group('g1', ['a', 'b']),
      { type: 'ParticipantLeft', data: { conversationId: 'g1', partnerId: 'b', removedBy: 'pat' } },
    )
    expect(store.views.conversations.members('g1')).toEqual(['a'])
  })
})
