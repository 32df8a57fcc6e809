// The conversations view: direct and group conversations, membership, departures, archiving and unread counts.
import { afterEach, describe, expect, test } from 'bun:test'
import { archived, closeStores, direct, group, left, read, registered, sent, storeWithClock } from './given.ts'

afterEach(closeStores)

const people = ['alice', 'bob', 'carol'].map((id) => registered(id, { name: id.toUpperCase() }))

describe('a direct conversation', () => {
  test('is found by its two members in either order, never by its id', async () => {
    const { store, given, at } = storeWithClock()
    await given(...people, direct('direct_alice_bob', 'bob', 'alice'))
    expect(store.views.conversations.get('direct_alice_bob')).toEqual({
      id: 'direct_alice_bob',
      type: 'direct',
      name: null,
      created_by: 'bob',
      created_at: at(),
      is_archived: 0,
      last_message_seq: null,
      hops: 0,
      is_paused: 0,
      paused_by: null,
    })
    expect(store.views.conversations.directBetween('alice', 'bob')).toBe('direct_alice_bob')
    expect(store.views.conversations.directBetween('bob', 'alice')).toBe('direct_alice_bob')
    expect(store.views.conversations.directBetween('alice', 'carol')).toBeNull()
  })

  test('two pairs whose ids spell the same name keep apart', async () => {
    const { store, given } = storeWithClock()
    await given(
      ...['x', 'y_z', 'x_y', 'z'].map((id) => registered(id)),
      direct('direct_x_y_z', 'x', 'y_z'),
      direct('direct_x_y_z_2', 'x_y', 'z'),
    )
    expect(store.views.conversations.directBetween('y_z', 'x')).toBe('direct_x_y_z')
    expect(store.views.conversations.directBetween('z', 'x_y')).toBe('direct_x_y_z_2')
    expect(store.views.conversations.directBetween('x', 'z')).toBeNull()
  })

  test('remembers its latest message', async () => {
    const { store, given } = storeWithClock()
    await given(...people, direct('direct_alice_bob', 'alice', 'bob'), sent('direct_alice_bob', 'alice'), sent('direct_alice_bob', 'bob'))
    expect(store.views.conversations.get('direct_alice_bob')!.last_message_seq).toBe(6)
  })
})

describe('a group', () => {
  test('has its members, with their names', async () => {
    const { store, given } = storeWithClock()
    await given(...people, group('group_1', 'Release', ['carol', 'alice', 'bob']))
    expect(store.views.conversations.get('group_1')).toMatchObject({ type: 'group', name: 'Release', created_by: 'carol' })
    expect(store.views.conversations.members('group_1').sort()).toEqual(['alice', 'bob', 'carol'])
    expect(store.views.conversations.isMember('group_1', 'alice')).toBe(true)
    expect(store.views.conversations.membersWithNames('group_1').sort((a, b) => a.id.localeCompare(b.id))).toEqual([
      { id: 'alice', name: 'ALICE' },
      { id: 'bob', name: 'BOB' },
      { id: 'carol', name: 'CAROL' },
    ])
  })

  test('loses a member who leaves, and is archived only when the archive event comes', async () => {
    const { store, given } = storeWithClock()
    await given(...people, group('group_1', 'Release', ['alice', 'bob']), left('group_1', 'alice'))
    expect(store.views.conversations.members('group_1')).toEqual(['bob'])
    expect(store.views.conversations.isMember('group_1', 'alice')).toBe(false)
    expect(store.views.conversations.get('group_1')!.is_archived).toBe(0)
    await given(left('group_1', 'bob'), archived('group_1'))
    expect(store.views.conversations.members('group_1')).toEqual([])
    expect(store.views.conversations.get('group_1')!.is_archived).toBe(1)
  })

  test('names a member with no partner row by its id', async () => {
    const { store, given } = storeWithClock()
    await given(registered('alice'), group('group_1', 'Ghosts', ['alice', 'casper']))
    expect(store.views.conversations.membersWithNames('group_1').map((m) => m.name).sort()).toEqual(['alice', 'casper'])
  })
})

describe("a partner's conversation list", () => {
  test('holds the conversations it is in, most recently active first, with unread counts from its read positions', async () => {
    const { store, given, tick } = storeWithClock()
    await given(
      ...people, // 1-3
      direct('direct_alice_bob', 'alice', 'bob'), // 4
      group('group_1', 'Release', ['alice', 'bob', 'carol']), // 5
      direct('direct_bob_carol', 'bob', 'carol'), // 6
    )
    tick()
    await given(
      sent('group_1', 'bob'), // 7
      sent('group_1', 'carol'), // 8
      sent('group_1', 'alice'), // 9: her own, never unread for her
      sent('direct_alice_bob', 'bob'), // 10
      sent('direct_bob_carol', 'carol'), // 11: not hers
      read('alice', 'group_1', 7),
    )
    const list = store.views.conversations.forPartner('alice')
    expect(list.map((c) => [c.id, c.unread_count, c.read_seq])).toEqual([
      ['direct_alice_bob', 1, 0],
      ['group_1', 1, 7],
    ])
  })

  test('drops a conversation the partner left', async () => {
    const { store, given } = storeWithClock()
    await given(...people, group('group_1', 'Release', ['alice', 'bob']), group('group_2', 'Other', ['alice', 'carol']), left('group_1', 'alice'))
    expect(store.views.conversations.forPartner('alice').map((c) => c.id)).toEqual(['group_2'])
    expect(store.views.conversations.forPartner('bob').map((c) => c.id)).toEqual(['group_1'])
  })
})

describe('the members a talk reads (remembered between reads)', () => {
  test('follow creation, a member added, one leaving, and a rollback', async () => {
    const { store, given } = storeWithClock()
    await given(registered('alice'), registered('bob'), registered('carol'), group('group_1', 'Team', ['alice', 'bob']))
    const ids = () => [...store.views.conversations.memberIds('group_1')].sort()
    expect(ids()).toEqual(['alice', 'bob'])
    expect(store.views.conversations.memberIds('group_1')).toBe(store.views.conversations.memberIds('group_1'))
    await given({ type: 'ParticipantsAdded', data: { conversationId: 'group_1', partnerIds: ['carol'], addedBy: 'alice' } })
    expect(ids()).toEqual(['alice', 'bob', 'carol'])
    await given(left('group_1', 'bob'))
    expect(ids()).toEqual(['alice', 'carol'])
    const failed = store.log.transact(() => {
      store.log.append([left('group_1', 'carol')])
      expect(store.views.conversations.memberIds('group_1')).toEqual(['alice'])
      throw new Error('rolled back')
    })
    await expect(failed).rejects.toThrow('rolled back')
    expect(ids()).toEqual(['alice', 'carol'])
    // What a message reaches follows the same members.
    const talked = await store.commands.execute({ kind: 'talk', fromId: 'alice', conversationId: 'group_1', content: 'hi' })
    expect(talked.ok && talked.value.recipients).toEqual(['carol'])
  })
})

describe('the direct conversation a talk looks up (remembered between reads)', () => {
  test('is found once created, in either order, and a creation rolled back leaves none', async () => {
    const { store, given } = storeWithClock()
    await given(registered('alice'), registered('bob'), registered('carol'))
    const between = (a: string, b: string) => store.views.conversations.directBetween(a, b)
    expect(between('alice', 'bob')).toBeNull()
    const failed = store.log.transact(() => {
      store.log.append([direct('direct_alice_bob', 'alice', 'bob')])
      expect(between('bob', 'alice')).toBe('direct_alice_bob')
      throw new Error('rolled back')
    })
    await expect(failed).rejects.toThrow('rolled back')
    expect(between('alice', 'bob')).toBeNull()
    // The first talk creates it; the next ones find the same conversation, whoever speaks.
    const first = await store.commands.execute({ kind: 'talk', fromId: 'alice', to: 'bob', content: 'hi' })
    const reply = await store.commands.execute({ kind: 'talk', fromId: 'bob', to: 'alice', content: 'hello' })
    expect(first.ok && reply.ok && reply.value.decision.conversationId).toBe(first.ok ? first.value.decision.conversationId : 'none')
    expect(between('bob', 'alice')).toBe(first.ok ? first.value.decision.conversationId : 'none')
    expect(between('alice', 'carol')).toBeNull()
    expect(store.views.conversations.conversationsOf('alice')).toHaveLength(1)
  })
})
