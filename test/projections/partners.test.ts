// The partners view: registration, presence, settings, tokens and last activity, replayed from events.
import { afterEach, describe, expect, test } from 'bun:test'
import { closeStores, direct, group, left, offline, read, registered, sent, storeWithClock } from './given.ts'

afterEach(closeStores)

const TOKEN_A = 'a'.repeat(64)
const TOKEN_B = 'b'.repeat(64)

describe('a registered partner', () => {
  test('is online with default settings, created and last seen at registration', async () => {
    const { store, given, at } = storeWithClock()
    await given(registered('alice', { name: 'Alice', tokenHash: TOKEN_A }))
    expect(store.views.partners.get('alice')).toEqual({
      id: 'alice',
      name: 'Alice',
      project_path: '/work/alice',
      status: 'online',
      status_message: null,
      notifications_enabled: 1,
      token_hash: TOKEN_A,
      created_at: at(),
      last_seen: at(),
      kind: 'agent',
      retired_at: null,
    })
  })

  test('goes offline, and comes back online on re-registering with its creation time and token kept', async () => {
    const { store, given, tick } = storeWithClock()
    await given(registered('alice', { tokenHash: TOKEN_A }))
    const created = store.views.partners.get('alice')!.created_at
    const wentOffline = tick()
    await given(offline('alice'))
    expect(store.views.partners.get('alice')).toMatchObject({ status: 'offline', last_seen: wentOffline })
    const back = tick()
    await given(registered('alice', { name: 'Alice again' }))
    expect(store.views.partners.get('alice')).toMatchObject({
      status: 'online',
      name: 'Alice again',
      created_at: created,
      last_seen: back,
      token_hash: TOKEN_A,
    })
  })

  test('keeps status message and notification settings, and a reissued token replaces the old one', async () => {
    const { store, given } = storeWithClock()
    await given(
      registered('alice', { tokenHash: TOKEN_A }),
      { type: 'PartnerStatusChanged', data: { partnerId: 'alice', message: 'reviewing #12' } },
      { type: 'NotificationsSwitched', data: { partnerId: 'alice', enabled: false } },
      { type: 'PartnerTokenReissued', data: { partnerId: 'alice', tokenHash: TOKEN_B } },
    )
    expect(store.views.partners.get('alice')).toMatchObject({ status_message: 'reviewing #12', notifications_enabled: 0, token_hash: TOKEN_B })
    await given(
      { type: 'PartnerStatusChanged', data: { partnerId: 'alice', message: null } },
      { type: 'NotificationsSwitched', data: { partnerId: 'alice', enabled: true } },
    )
    expect(store.views.partners.get('alice')).toMatchObject({ status_message: null, notifications_enabled: 1 })
  })

  test('is last seen at its latest activity: creating, talking, reading, leaving', async () => {
    const { store, given, tick } = storeWithClock()
    await given(registered('alice'), registered('bob'))
    const steps = [
      direct('direct_alice_bob', 'alice', 'bob'),
      sent('direct_alice_bob', 'alice'),
      read('alice', 'direct_alice_bob', 4),
      group('group_1', 'Team', ['alice', 'bob']),
      left('group_1', 'alice'),
    ]
    for (const event of steps) {
      const when = tick()
      await given(event)
      expect(store.views.partners.get('alice')!.last_seen).toBe(when)
    }
    // Bob did nothing himself since registering.
    expect(store.views.partners.get('bob')!.last_seen).toBe(store.views.partners.get('bob')!.created_at)
  })
})

describe('the partner list', () => {
  test('lists every partner once, by id, with a count', async () => {
    const { store, given } = storeWithClock()
    await given(registered('carol'), registered('alice'), registered('bob'), registered('alice'), offline('bob'))
    expect(store.views.partners.all().map((p) => [p.id, p.status])).toEqual([
      ['alice', 'online'],
      ['bob', 'offline'],
      ['carol', 'online'],
    ])
    expect(store.views.partners.count()).toBe(3)
    expect(store.views.partners.get('nobody')).toBeNull()
  })
})
