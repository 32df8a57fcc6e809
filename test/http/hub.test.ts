// The hub: which waiters a committed batch wakes, and that a waiter leaves the index the moment it is done.
import { describe, expect, test } from 'bun:test'
import type { Envelope } from '../../src/events/schema.ts'
import { createHub, type Wake } from '../../src/http/hub.ts'

const DAY = 86_400_000

/** A hub over a fixed membership table, counting membership lookups. */
function hubWith(conversations: Record<string, string[]>, lastSeq = () => 100) {
  const lookups: string[] = []
  const hub = createHub({
    members: (id) => {
      lookups.push(id)
      return conversations[id] ?? []
    },
    lastSeq,
  })
  return { hub, lookups }
}

let nextSeq = 1
const message = (conversationId: string, fromId: string): Envelope =>
  ({
    seq: nextSeq++,
    type: 'MessageSent',
    at: '2026-11-25T10:30:00.000Z',
    data: { conversationId, fromId, content: 'hi' },
    hash: '0'.repeat(64),
  }) as Envelope
const offline = (partnerId: string): Envelope =>
  ({ seq: nextSeq++, type: 'PartnerWentOffline', at: '2026-11-25T10:30:00.000Z', data: { partnerId }, hash: '0'.repeat(64) }) as Envelope

/** Parks a waiter and records how it settles; `settled` is undefined while it waits. */
function park(hub: ReturnType<typeof createHub>, partnerId: string | null, conversationId?: string, timeoutMs = DAY) {
  const controller = new AbortController()
  const waiter: { settled?: Wake | null; abort: () => void; done: Promise<Wake | null> } = {
    abort: () => controller.abort(),
    done: hub.wait(partnerId, conversationId, controller.signal, timeoutMs),
  }
  void waiter.done.then((wake) => (waiter.settled = wake))
  return waiter
}
const settle = () => new Promise((resolve) => setImmediate(resolve))

describe('a hub with 1,000 waiters over 500 partners', () => {
  const partners = Array.from({ length: 500 }, (_, i) => `p${i}`)
  const groups: Record<string, string[]> = {}
  for (let g = 0; g < 50; g++) groups[`group_${g}`] = partners.slice(g * 10, g * 10 + 10)

  test('one message wakes exactly the waiters of its recipients, with one membership lookup', async () => {
    const { hub, lookups } = hubWith(groups)
    const waiters = partners.flatMap((id) => [park(hub, id), park(hub, id)])
    expect(hub.waiterCount()).toBe(1000)
    const event = message('group_7', 'p70')
    hub.dispatch([event])
    await settle()
    const woken = waiters.flatMap((w, i) => (w.settled ? [partners[Math.floor(i / 2)]] : []))
    // group_7 is p70..p79; the sender's own waiters stay parked.
    expect(woken).toEqual(['p71', 'p71', 'p72', 'p72', 'p73', 'p73', 'p74', 'p74', 'p75', 'p75', 'p76', 'p76', 'p77', 'p77', 'p78', 'p78', 'p79', 'p79'])
    expect(waiters.find((w) => w.settled)!.settled).toEqual({ events: [event], lastSeq: 100 })
    expect(hub.waiterCount()).toBe(1000 - 18)
    expect(lookups).toEqual(['group_7'])
    for (const w of waiters) w.abort()
  })

  test('a batch of messages gives each waiter only its own, in seq order, in one wake-up', async () => {
    const { hub } = hubWith(groups)
    const p15 = park(hub, 'p15')
    const p25 = park(hub, 'p25')
    const p35 = park(hub, 'p35')
    const [a, b, c] = [message('group_1', 'p10'), message('group_2', 'p20'), message('group_1', 'p11')]
    hub.dispatch([a!, b!, c!])
    await settle()
    expect(p15.settled?.events).toEqual([a!, c!])
    expect(p25.settled?.events).toEqual([b!])
    expect(p35.settled).toBeUndefined()
    p35.abort()
  })

  test('aborted waiters leave the index at once, and the rest stay', async () => {
    const { hub } = hubWith(groups)
    const waiters = partners.flatMap((id) => [park(hub, id), park(hub, id)])
    for (const w of waiters.slice(0, 600)) w.abort()
    expect(hub.waiterCount()).toBe(400)
    await settle()
    expect(waiters.slice(0, 600).every((w) => w.settled === null)).toBe(true)
    expect(waiters.slice(600).every((w) => w.settled === undefined)).toBe(true)
    // A message to partners whose waiters all left wakes nobody and finds nothing to do.
    hub.dispatch([message('group_0', 'p0')])
    await settle()
    expect(hub.waiterCount()).toBe(400)
    for (const w of waiters) w.abort()
    expect(hub.waiterCount()).toBe(0)
  })

  test('a waiter that timed out is removed and resolves with null', async () => {
    const { hub } = hubWith(groups)
    const w = park(hub, 'p1', undefined, 5)
    expect(hub.waiterCount()).toBe(1)
    expect(await w.done).toBeNull()
    expect(hub.waiterCount()).toBe(0)
  })

  test('an already aborted signal never parks', async () => {
    const { hub } = hubWith(groups)
    const controller = new AbortController()
    controller.abort()
    expect(await hub.wait('p1', undefined, controller.signal, DAY)).toBeNull()
    expect(hub.waiterCount()).toBe(0)
  })
})

describe('waiter filters', () => {
  test('a waiter on one conversation is not woken by another of its conversations', async () => {
    const { hub } = hubWith({ c1: ['a', 'b'], c2: ['a', 'c'] })
    const onlyC1 = park(hub, 'a', 'c1')
    const any = park(hub, 'a')
    hub.dispatch([message('c2', 'c')])
    await settle()
    expect(onlyC1.settled).toBeUndefined()
    expect(any.settled?.events.map((e) => e.type)).toEqual(['MessageSent'])
    hub.dispatch([message('c1', 'b')])
    await settle()
    expect(onlyC1.settled?.events).toHaveLength(1)
    expect(hub.waiterCount()).toBe(0)
  })

  test('the firehose (no partner) is woken by every event, even with no partner waiting', async () => {
    const { hub, lookups } = hubWith({})
    const operator = park(hub, null)
    const event = offline('x')
    hub.dispatch([event])
    await settle()
    expect(operator.settled).toEqual({ events: [event], lastSeq: 100 })
    expect(lookups).toEqual([])
  })

  test("a partner going offline ends its own waits with no messages, and nobody else's", async () => {
    const { hub } = hubWith({})
    const mine = park(hub, 'a')
    const theirs = park(hub, 'b')
    hub.dispatch([offline('a')])
    await settle()
    expect(mine.settled).toEqual({ events: [], lastSeq: 100 })
    expect(theirs.settled).toBeUndefined()
    theirs.abort()
  })

  test('with nobody waiting, a batch of messages costs no membership lookup', () => {
    const { hub, lookups } = hubWith({ c1: ['a', 'b'] })
    hub.dispatch([message('c1', 'a'), message('c1', 'b')])
    expect(lookups).toEqual([])
  })
})

describe('holds', () => {
  test('a partner is listening while any of its holds is kept, and releasing twice counts once', () => {
    const { hub } = hubWith({})
    const first = hub.hold('a')
    const second = hub.hold('a')
    expect(hub.isListening('a')).toBe(true)
    first()
    first()
    expect(hub.isListening('a')).toBe(true)
    second()
    expect(hub.isListening('a')).toBe(false)
    expect(hub.listeningCount()).toBe(0)
  })
})
