// The console's "chain verified through seq N": the hash chain checked as the log grows, a bounded slice per call.
import { chainHash, GENESIS_HASH } from '../events/log.ts'
import type { Envelope } from '../events/schema.ts'

/** Events checked per call at most: a long log is verified over several calls instead of stalling one. */
const SLICE = 20_000
const PAGE = 1000

export type ChainStatus = { last_seq: number; verified_through: number; problem: string | null }

/**
 * Re-derives each event's hash from the one before it (what `audit` does for the chain), remembering how far
 * it got, so each call costs only the events appended since. Envelopes keep the stored data's key order
 * (they are parsed without a schema), so `JSON.stringify(data)` is the stored text. Stops at the first break.
 */
export function createChainCheck(read: (after: number, limit: number) => Envelope[], lastSeq: () => number) {
  let through = 0
  let hash = GENESIS_HASH
  let problem: string | null = null
  return (): ChainStatus => {
    const head = lastSeq()
    let budget = SLICE
    while (problem === null && through < head && budget > 0) {
      const events = read(through, Math.min(PAGE, budget))
      if (events.length === 0) break
      for (const e of events) {
        if (e.seq !== through + 1) {
          problem = `seq ${through + 1} missing`
          break
        }
        if (chainHash(hash, e.seq, e.type, e.at, JSON.stringify(e.data)) !== e.hash) {
          problem = `event ${e.seq} does not match its hash (run \`bun run audit\`)`
          break
        }
        through = e.seq
        hash = e.hash
      }
      budget -= events.length
    }
    return { last_seq: head, verified_through: through, problem }
  }
}
