// Test helper for the rules: given events in a fresh in-memory store, when a command, then its decision.
import { afterEach } from 'bun:test'
import { type Command, decide, type Rules } from '../../src/events/decide.ts'
import type { DuoEvent } from '../../src/events/schema.ts'
import { decisionView } from '../../src/projections/index.ts'
import { openStore, type Store } from '../../src/store.ts'

const stores: Store[] = []
afterEach(async () => {
  for (const store of stores.splice(0)) await store.close()
})

/** A fresh in-memory store holding `history` (closed after each test); `when` decides a command against its views. */
export async function given(history: DuoEvent[], rules: Partial<Rules> = {}) {
  const store = openStore({ path: ':memory:', rules })
  stores.push(store)
  if (history.length > 0) await store.log.transact(() => store.log.append(history))
  const view = decisionView(store.views, store.log.lastSeq)
  return { store, when: <C extends Command>(command: C) => decide(command, view, store.rules) }
}
