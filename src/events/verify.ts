// The log's own checks, one stored row at a time: seq gap-free from 1, hash chain intact, content valid.
import { chainHash, type EventRow, GENESIS_HASH, subjects } from './log.ts'
import { DuoEvent, type Envelope } from './schema.ts'

export type LogCheck = 'sequence' | 'chain' | 'schema'
export const LOG_CHECKS: LogCheck[] = ['sequence', 'chain', 'schema']

/** The first event that failed a check, and how many failed it in all. */
export type Finding = { seq: number; type: string; problem: string; count: number }

const gap = (expected: number, seq: number) =>
  seq < expected ? `seq ${seq} out of order` : seq === expected + 1 ? `seq ${expected} missing` : `seq ${expected}..${seq - 1} missing`

const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/

/** A stored row with the index columns `/events` filters on; they must agree with the data. */
export type StoredRow = EventRow & { conversation_id: string | null; partner_id: string | null }

/**
 * Checks rows fed in seq order, starting at the first event. `check` returns the envelope when the row's
 * content is valid (whatever the sequence and chain say), so a caller can fold it into projections.
 */
export function createLogVerifier() {
  const findings: Partial<Record<LogCheck, Finding>> = {}
  let expectedSeq = 1
  let prevHash = GENESIS_HASH
  let checked = 0

  const fail = (check: LogCheck, row: EventRow, problem: string) => {
    const found = findings[check]
    if (found) found.count++
    else findings[check] = { seq: row.seq, type: row.type, problem, count: 1 }
  }

  function content(row: StoredRow): Envelope | null {
    let data: unknown
    try {
      data = JSON.parse(row.data)
    } catch {
      fail('schema', row, 'data is not JSON')
      return null
    }
    const parsed = DuoEvent.safeParse({ type: row.type, data })
    if (!parsed.success) {
      const issue = parsed.error.issues[0]
      fail('schema', row, `invalid ${row.type}: ${issue ? `${issue.path.join('.') || 'event'}: ${issue.message}` : 'rejected'}`)
      return null
    }
    if (!ISO_UTC.test(row.at)) {
      fail('schema', row, `"at" is not an ISO 8601 UTC time: ${JSON.stringify(row.at)}`)
      return null
    }
    const filed = subjects(parsed.data)
    if (filed.conversation !== row.conversation_id || filed.partner !== row.partner_id) {
      fail('schema', row, `filter columns (${row.conversation_id}, ${row.partner_id}) disagree with the data`)
      return null
    }
    // The stored JSON, not zod's copy: projections must see exactly what the broker projected.
    return { seq: row.seq, type: row.type, at: row.at, data, hash: row.hash } as Envelope
  }

  return {
    check(row: StoredRow): Envelope | null {
      checked++
      if (row.seq !== expectedSeq) fail('sequence', row, gap(expectedSeq, row.seq))
      expectedSeq = row.seq + 1
      if (chainHash(prevHash, row.seq, row.type, row.at, row.data) !== row.hash)
        fail('chain', row, 'stored hash is not sha-256 of the previous hash and this event: this event, or the hash before it, was altered')
      // Go on from the stored hash, so one edit is reported once, at the event that was edited.
      prevHash = row.hash
      return content(row)
    },
    /** Number of rows checked so far. */
    checked: () => checked,
    findings: (): Partial<Record<LogCheck, Finding>> => findings,
  }
}
export type LogVerifier = ReturnType<typeof createLogVerifier>
