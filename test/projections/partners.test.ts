// The partners view: registration, presence, settings, tokens and last activity, replayed from events.
import { afterEach, describe, expect, test } from 'bun:test'
import type { DuoEvent } from '../../src/events/schema.ts'
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

describe('the partner as the rules read it (remembered between reads)', () => {
  const talk = (fromId: string, to: string) => ({ kind: 'talk' as const, fromId, to, content: 'hi' })

  test('follows registration, going offline, a new token and retirement', async () => {
    const { store, given } = storeWithClock()
    await given(registered('alice', { tokenHash: TOKEN_A }), registered('bob'))
    const rules = () => store.views.partners.forRules('alice')
    expect(rules()).toMatchObject({ status: 'online', tokenHash: TOKEN_A, retired: false, name: 'alice' })
    // Read twice: the second read is the remembered one, which the next events must replace.
    expect(rules()).toBe(rules())
    await given(offline('alice'))
    expect(rules()?.status).toBe('offline')
    await given({ type: 'PartnerTokenReissued', data: { partnerId: 'alice', tokenHash: TOKEN_B } })
    expect(rules()?.tokenHash).toBe(TOKEN_B)
    await given(registered('alice', { name: 'Alice II' }))
    expect(rules()).toMatchObject({ status: 'online', name: 'Alice II' })
    expect((await store.commands.execute(talk('bob', 'alice'))).ok).toBe(true)
    await given({ type: 'PartnerRetired', data: { partnerId: 'alice' } })
    expect(rules()?.retired).toBe(true)
    const refused = await store.commands.execute(talk('bob', 'alice'))
    expect(refused.ok ? null : refused.rejection.reason).toBe('partner_retired')
  })

  test('a partner registered in an earlier transaction is remembered by the reads of later ones', async () => {
    const { store, given } = storeWithClock()
    await given(registered('alice'))
    const first = await store.log.transact(() => store.views.partners.forRules('alice'))
    const again = await store.log.transact(() => store.views.partners.forRules('alice'))
    expect(first).toMatchObject({ name: 'alice', retired: false })
    expect(again).toBe(first)
  })

  test('a registration rolled back with its job is not remembered, even when read inside it', async () => {
    const { store, given } = storeWithClock()
    await given(registered('bob'))
    const failed = store.log.transact(() => {
      store.log.append([registered('ghost')])
      // Read inside the job, while the registration is still part of the open transaction.
      expect(store.views.partners.forRules('ghost')?.name).toBe('ghost')
      throw new Error('this job fails after registering')
    })
    await expect(failed).rejects.toThrow('this job fails')
    expect(store.views.partners.forRules('ghost')).toBeNull()
    const refused = await store.commands.execute(talk('bob', 'ghost'))
    expect(refused.ok ? null : refused.rejection.reason).toBe('unknown_partner')
  })

  test('a retirement rolled back with its job leaves the partner as it was', async () => {
    const { store, given } = storeWithClock()
    await given(registered('alice'), registered('bob'))
    expect(store.views.partners.forRules('alice')?.retired).toBe(false)
    const failed = store.log.transact(() => {
      store.log.append([{ type: 'PartnerRetired', data: { partnerId: 'alice' } }])
      expect(store.views.partners.forRules('alice')?.retired).toBe(true)
      throw new Error('rolled back')
    })
    await expect(failed).rejects.toThrow('rolled back')
    expect(store.views.partners.forRules('alice')?.retired).toBe(false)
    expect((await store.commands.execute(talk('bob', 'alice'))).ok).toBe(true)
  })
})

describe("a partner's presence columns (remembered for talk answers)", () => {
  test('follow every event that writes its status or last activity, and no other partner moves', async () => {
    const { store, given, tick } = storeWithClock()
    await given(registered('alice'), registered('bob'), direct('direct_alice_bob', 'alice', 'bob'))
    const presence = (id: string) => store.views.partners.presenceOf(id)
    const bobBefore = presence('bob')
    const steps = [
      sent('direct_alice_bob', 'alice'),
      read('alice', 'direct_alice_bob', 4),
      { type: 'PartnerStatusChanged', data: { partnerId: 'alice', message: 'busy' } },
      { type: 'NotificationsSwitched', data: { partnerId: 'alice', enabled: false } },
      { type: 'DeliveryAdvanced', data: { partnerId: 'alice', conversationId: 'direct_alice_bob', state: 'seen', seq: 4 } },
      group('group_1', 'Team', ['alice', 'bob']),
      left('group_1', 'alice'),
      offline('alice'),
      registered('alice'),
    ] as DuoEvent[]
    for (const event of steps) {
      // Read before each step: the remembered value is what the step must replace.
      const earlier = presence('alice')
      expect(presence('alice')).toBe(earlier)
      const when = tick()
      await given(event)
      expect(presence('alice')).toEqual({ status: store.views.partners.get('alice')!.status, last_seen: when })
    }
    expect(presence('alice')!.status).toBe('online')
    expect(presence('bob')).toBe(bobBefore)
    expect(presence('nobody')).toBeNull()
  })

  test('a message rolled back with its job leaves the sender as last seen before it', async () => {
    const { store, given, tick } = storeWithClock()
    await given(registered('alice'), registered('bob'), direct('direct_alice_bob', 'alice', 'bob'))
    const before = store.views.partners.presenceOf('alice')
    tick()
    const failed = store.log.transact(() => {
      store.log.append([sent('direct_alice_bob', 'alice')])
      expect(store.views.partners.presenceOf('alice')!.last_seen).not.toBe(before!.last_seen)
      throw new Error('rolled back')
    })
    await expect(failed).rejects.toThrow('rolled back')
    expect(store.views.partners.presenceOf('alice')).toEqual(before)
  })
})
