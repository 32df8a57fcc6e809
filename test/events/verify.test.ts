// The log's own checks on stored rows: sequence, hash chain, schema and filter columns.
import { describe, expect, test } from 'bun:test'
import { chainHash, GENESIS_HASH } from '../../src/events/log.ts'
import { createLogVerifier, type StoredRow } from '../../src/events/verify.ts'

const AT = '2026-11-25T10:30:00.123Z'
type Plain = { type: string; data: string; at?: string; conversation_id?: string | null; partner_id?: string | null }

const registered = (partnerId: string): Plain => ({
  type: 'PartnerRegistered',
  data: JSON.stringify({ partnerId, name: partnerId, projectPath: null }),
  partner_id: partnerId,
})
const status = (partnerId: string, message: string): Plain => ({
  type: 'PartnerStatusChanged',
  data: JSON.stringify({ partnerId, message }),
  partner_id: partnerId,
})

/** Rows as the log would store them: seqs from 1 and a correct chain, unless edited afterwards. */
function chained(events: Plain[], seqs = events.map((_, i) => i + 1)): StoredRow[] {
  let prev = GENESIS_HASH
  return events.map((e, i) => {
    const seq = seqs[i]!
    const at = e.at ?? AT
    const hash = chainHash(prev, seq, e.type, at, e.data)
    prev = hash
    return { seq, type: e.type, at, data: e.data, hash, conversation_id: e.conversation_id ?? null, partner_id: e.partner_id ?? null }
  })
}

function verify(rows: StoredRow[]) {
  const verifier = createLogVerifier()
  const valid = rows.map((row) => verifier.check(row))
  return { findings: verifier.findings(), checked: verifier.checked(), valid }
}

const history = () => [registered('a'), registered('b'), status('a', 'one'), status('b', 'two'), status('a', 'three')]

describe('a clean log', () => {
  test('passes every check and yields each event', () => {
    expect(verify(chained(history()))).toEqual({ findings: {}, checked: 5, valid: [true, true, true, true, true] })
  })
})

describe('a tampered log', () => {
  test('an edited event breaks the chain at that event, and only there', () => {
    const rows = chained(history())
    rows[2] = { ...rows[2]!, data: JSON.stringify({ partnerId: 'a', message: 'forged' }) }
    expect(verify(rows).findings).toEqual({ chain: { seq: 3, type: 'PartnerStatusChanged', problem: expect.stringContaining('altered'), count: 1 } })
  })

  test('an edit whose hash was recomputed shows at the next event', () => {
    const rows = chained(history())
    const forged = JSON.stringify({ partnerId: 'a', message: 'forged' })
    rows[2] = { ...rows[2]!, data: forged, hash: chainHash(rows[1]!.hash, 3, rows[2]!.type, AT, forged) }
    expect(verify(rows).findings.chain).toMatchObject({ seq: 4, count: 1 })
  })

  test('a missing event is a gap in seq, named by the seqs that are missing', () => {
    const rows = chained(history())
    rows.splice(1, 2)
    const { findings } = verify(rows)
    expect(findings.sequence).toMatchObject({ seq: 4, problem: 'seq 2..3 missing', count: 1 })
    expect(findings.chain).toMatchObject({ seq: 4 })
  })

  test('a log that does not start at 1 is a gap too', () => {
    const rows = chained(history().slice(0, 2), [2, 3])
    expect(verify(rows).findings.sequence).toMatchObject({ seq: 2, problem: 'seq 1 missing' })
  })

  test('an event that breaks its schema is named, even with an intact chain', () => {
    const events = history()
    events[3] = { type: 'PartnerStatusChanged', data: JSON.stringify({ partnerId: 'b' }), partner_id: 'b' }
    const { findings, valid } = verify(chained(events))
    expect(findings).toEqual({ schema: { seq: 4, type: 'PartnerStatusChanged', problem: expect.stringContaining('message'), count: 1 } })
    expect(valid).toEqual([true, true, true, false, true])
  })

  test('an unknown type, data that is not JSON, a bad time and wrong filter columns are schema failures', () => {
    const cases: Array<[Plain, RegExp]> = [
      [{ type: 'PartnerTeleported', data: '{}' }, /invalid PartnerTeleported/],
      [{ type: 'PartnerStatusChanged', data: '{"partnerId":', partner_id: 'a' }, /not JSON/],
      [{ ...status('a', 'x'), at: '25/11/2026' }, /ISO 8601/],
      [{ ...status('a', 'x'), partner_id: 'b' }, /filter columns/],
    ]
    for (const [event, problem] of cases) {
      const { findings } = verify(chained([registered('a'), event]))
      expect(findings.schema?.seq).toBe(2)
      expect(findings.schema?.problem).toMatch(problem)
    }
  })

  test('counts every failing event but keeps the first', () => {
    const events = history()
    events[1] = { type: 'PartnerRegistered', data: '{}' }
    events[4] = { type: 'PartnerRegistered', data: '{}' }
    expect(verify(chained(events)).findings.schema).toMatchObject({ seq: 2, count: 2 })
  })
})
