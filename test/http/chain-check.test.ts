// The console's chain check: verifies as the log grows, in bounded slices, and names the first event that breaks it.
import { afterEach, describe, expect, test } from 'bun:test'
import { createChainCheck } from '../../src/http/chain-check.ts'
import type { Envelope } from '../../src/events/schema.ts'
import { openStore, type Store } from '../../src/store.ts'

const stores: Store[] = []
afterEach(async () => {
  for (const store of stores.splice(0)) await store.close()
})

async function logOf(n: number) {
  const store = openStore({ path: ':memory:' })
  stores.push(store)
  await store.log.transact(() =>
    store.log.append(
      Array.from({ length: n }, (_, i) => ({ type: 'PartnerRegistered' as const, data: { partnerId: `p${i}`, name: `p${i}`, projectPath: null } })),
    ),
  )
  return store
}

describe('chain check', () => {
  test('verifies the stored log through its last seq, then only what was appended since', async () => {
    const store = await logOf(50)
    let reads = 0
    const check = createChainCheck((after, limit) => {
      reads++
      return store.log.readAfter(after, limit)
    }, store.log.lastSeq)
    expect(check()).toEqual({ last_seq: 50, verified_through: 50, problem: null })
    await store.log.transact(() => store.log.append([{ type: 'PartnerWentOffline', data: { partnerId: 'p1' } }]))
    reads = 0
    expect(check()).toEqual({ last_seq: 51, verified_through: 51, problem: null })
    expect(reads).toBe(1)
  })

  test('stops at an event whose hash does not match, and says which', async () => {
    const store = await logOf(10)
    const tampered = (after: number, limit: number): Envelope[] =>
      store.log.readAfter(after, limit).map((e) => (e.seq === 7 ? ({ ...e, data: { ...e.data, name: 'forged' } } as Envelope) : e))
    const status = createChainCheck(tampered, store.log.lastSeq)()
    expect(status.verified_through).toBe(6)
    expect(status.problem).toContain('event 7 does not match its hash')
  })

  test('a gap in the sequence is a problem too', async () => {
    const store = await logOf(5)
    const gappy = (after: number, limit: number) => store.log.readAfter(after, limit).filter((e) => e.seq !== 3)
    expect(createChainCheck(gappy, store.log.lastSeq)()).toEqual({ last_seq: 5, verified_through: 2, problem: 'seq 3 missing' })
  })
})
