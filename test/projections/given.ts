// Test helpers for the projections: a fresh in-memory store fed with given events under a clock the test moves.
import type { DuoEvent } from '../../src/events/schema.ts'
import { openStore, type Store } from '../../src/store.ts'

const open: Store[] = []
/** Closes every store the helpers opened; call it from `afterEach`. */
export async function closeStores(): Promise<void> {
  for (const store of open.splice(0)) await store.close()
}

/** A store whose clock stands still until `tick` moves it, so several events can share one millisecond. */
export function storeWithClock(start = '2026-11-25T10:00:00.000Z') {
  let now = new Date(start)
  const store = openStore({ path: ':memory:', now: () => now })
  open.push(store)
  return {
    store,
    /** Appends events in one transaction; resolves with their envelopes once committed. */
    given: (...events: DuoEvent[]) => store.log.transact(() => store.log.append(events)),
    tick: (ms = 1000) => {
      now = new Date(now.getTime() + ms)
      return now.toISOString()
    },
    at: () => now.toISOString(),
  }
}

export const registered = (partnerId: string, extra: { name?: string; tokenHash?: string } = {}): DuoEvent => ({
  type: 'PartnerRegistered',
  data: {
    partnerId,
    name: extra.name ?? partnerId,
    projectPath: `/work/${partnerId}`,
    ...(extra.tokenHash ? { tokenHash: extra.tokenHash } : {}),
  },
})
export const offline = (partnerId: string): DuoEvent => ({ type: 'PartnerWentOffline', data: { partnerId } })
export const direct = (conversationId: string, a: string, b: string): DuoEvent => ({
  type: 'ConversationCreated',
  data: { conversationId, kind: 'direct', name: null, createdBy: a, participants: [a, b] },
})
export const group = (conversationId: string, name: string, members: string[]): DuoEvent => ({
  type: 'ConversationCreated',
  data: { conversationId, kind: 'group', name, createdBy: members[0]!, participants: members },
})
export const sent = (conversationId: string, fromId: string, content = 'hi', idempotencyKey?: string): DuoEvent => ({
  type: 'MessageSent',
  data: { conversationId, fromId, content, ...(idempotencyKey ? { idempotencyKey } : {}) },
})
export const left = (conversationId: string, partnerId: string): DuoEvent => ({
  type: 'ParticipantLeft',
  data: { conversationId, partnerId },
})
export const archived = (conversationId: string): DuoEvent => ({ type: 'ConversationArchived', data: { conversationId } })
export const read = (partnerId: string, conversationId: string, seq: number): DuoEvent => ({
  type: 'ReadPositionAdvanced',
  data: { partnerId, conversationId, seq },
})
