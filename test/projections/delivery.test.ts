// The delivery view's positions as a reply reads them: remembered, moved by pushes, surfacings and reads alone.
import { afterEach, describe, expect, test } from 'bun:test'
import type { DuoEvent } from '../../src/events/schema.ts'
import { closeStores, direct, read, registered, sent, storeWithClock } from './given.ts'

afterEach(closeStores)

const advanced = (state: 'pushed' | 'surfaced', seq: number): DuoEvent => ({
  type: 'DeliveryAdvanced',
  data: { partnerId: 'bob', conversationId: 'direct_alice_bob', state, seq },
})

describe("a partner's positions shown in a conversation (remembered for replies)", () => {
  test('follow pushes, surfacings and reads, of that partner in that conversation only', async () => {
    const { store, given } = storeWithClock()
    await given(registered('alice'), registered('bob'), direct('direct_alice_bob', 'alice', 'bob'), sent('direct_alice_bob', 'alice'), sent('direct_alice_bob', 'alice'))
    const shown = () => store.views.delivery.shown('bob', 'direct_alice_bob')
    expect(shown()).toEqual({ pushed: 0, surfaced: 0, read: 0 })
    expect(shown()).toBe(shown())
    const alices = store.views.delivery.shown('alice', 'direct_alice_bob')
    await given(advanced('pushed', 4))
    expect(shown()).toEqual({ pushed: 4, surfaced: 0, read: 0 })
    await given(advanced('surfaced', 5))
    expect(shown()).toEqual({ pushed: 4, surfaced: 5, read: 0 })
    await given(read('bob', 'direct_alice_bob', 5))
    expect(shown()).toEqual({ pushed: 4, surfaced: 5, read: 5 })
    expect(store.views.delivery.shown('alice', 'direct_alice_bob')).toBe(alices)
  })

  test('a push rolled back with its job leaves them as they were, and a reply then acknowledges nothing', async () => {
    const { store, given } = storeWithClock()
    await given(registered('alice'), registered('bob'), direct('direct_alice_bob', 'alice', 'bob'), sent('direct_alice_bob', 'alice'))
    expect(store.views.delivery.shown('bob', 'direct_alice_bob').pushed).toBe(0)
    const failed = store.log.transact(() => {
      store.log.append([advanced('pushed', 4)])
      expect(store.views.delivery.shown('bob', 'direct_alice_bob').pushed).toBe(4)
      throw new Error('rolled back')
    })
    await expect(failed).rejects.toThrow('rolled back')
    expect(store.views.delivery.shown('bob', 'direct_alice_bob').pushed).toBe(0)
    const reply = await store.commands.execute({ kind: 'talk', fromId: 'bob', to: 'alice', content: 'hi' })
    expect(reply.ok && reply.value.decision.events.map((e) => e.type)).toEqual(['MessageSent'])
    // Once pushed for real, the next reply acknowledges it.
    await given(advanced('pushed', 4))
    const second = await store.commands.execute({ kind: 'talk', fromId: 'bob', to: 'alice', content: 'again' })
    expect(second.ok && second.value.decision.events.map((e) => e.type)).toEqual(['ReadPositionAdvanced', 'MessageSent'])
  })
})
