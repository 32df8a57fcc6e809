// The log's own checks, one stored row at a time: seq gap-free from 1, hash chain intact, content valid.
import { chainHash, type EventRow, GENESIS_HASH, subjects } from './log.ts'
import { DuoEvent } from './schema.ts'

export type LogCheck = 'sequence' | 'chain' | 'schema'
export const LOG_CHECKS: LogCheck[] = ['sequence', 'chain', 'schema']

/** The first event that failed a check, and how many failed it in all. */
export type Finding = { seq: number; type: string; problem: string; count: number }

const gap = (expected: number, seq: number) =>
  seq < expected ? `seq ${seq} out of order` : seq === expected + 1 ? `seq ${expected} missing` : `seq ${expected}..${seq - 1} missing`

// Each type's data schema, the union's own members: one lookup instead of the union's dispatch and wrapper.
const DATA_SCHEMAS = new Map(DuoEvent.options.map((option) => [option.shape.type.value as string, option.shape.data]))

const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/

/** A stored row with the index columns `/events` filters on; they must agree with the data. */
export type StoredRow = EventRow & { conversation_id: string | null; partner_id: string | null }

/** Checks rows fed in seq order, starting at the first event; `findings` holds the first failure of each check. */
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

  /** Whether the row's content is valid, whatever its sequence and chain. */
  function content(row: StoredRow): boolean {
    let data: unknown
    try {
      data = JSON.parse(row.data)
    } catch {
      fail('schema', row, 'data is not JSON')
      return false
    }
    const schema = DATA_SCHEMAS.get(row.type)
    if (!schema) {
      fail('schema', row, `invalid ${row.type}: no such event type`)
      return false
    }
    const parsed = schema.safeParse(data)
    if (!parsed.success) {
      const issue = parsed.error.issues[0]
      fail('schema', row, `invalid ${row.type}: ${issue ? `${issue.path.join('.') || 'data'}: ${issue.message}` : 'rejected'}`)
      return false
    }
    if (!ISO_UTC.test(row.at)) {
      fail('schema', row, `"at" is not an ISO 8601 UTC time: ${JSON.stringify(row.at)}`)
      return false
    }
    const filed = subjects({ type: row.type, data: parsed.data } as DuoEvent)
    if (filed.conversation !== row.conversation_id || filed.partner !== row.partner_id) {
      fail('schema', row, `filter columns (${row.conversation_id}, ${row.partner_id}) disagree with the data`)
      return false
    }
    return true
  }

  return {
    /** Checks the next row; returns whether its content is valid. */
    check(row: StoredRow): boolean {
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
