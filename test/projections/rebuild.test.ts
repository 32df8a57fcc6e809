// Views are a pure function of the log: thousands of mixed commands later, a rebuild from scratch equals them.
import { afterAll, describe, expect, test } from 'bun:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { auditFile } from '../../src/cli/audit-core.ts'
import { seededRandom } from '../../src/cli/generate.ts'
import { type Command, pairOf } from '../../src/events/decide.ts'
import { EVENT_TYPES } from '../../src/events/schema.ts'
import { openStore } from '../../src/store.ts'

const dir = mkdtempSync(join(tmpdir(), 'duo-rebuild-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** Plausible commands, some of them refused (unknown ids, left groups): refusals must leave no trace either. */
function commandMix(random: () => number, lastSeq: () => number) {
  const pick = <T>(items: T[]): T => items[Math.floor(random() * items.length)]!
  const partners = Array.from({ length: 12 }, (_, i) => (i % 4 === 3 ? `p_${i}` : `p${i}`))
  const groups: string[] = []
  const hash = (n: number) => n.toString(16).padStart(64, '0')
  let n = 0
  return (): Command => {
    n++
    const me = pick(partners)
    const r = random()
    if (n <= partners.length)
      return { kind: 'register', partnerId: partners[n - 1]!, name: `P${n}`, newTokenHash: hash(n), ...(n === 6 ? { partnerKind: 'human' } : {}) }
    // Control: members added back, renames, resumes by the human or the operator, now and then a retirement.
    if (r < 0.03 && groups.length > 0)
      return { kind: 'addMembers', partnerId: me, conversationId: pick(groups), members: [pick(partners), pick(partners)] }
    if (r < 0.04 && groups.length > 0) return { kind: 'rename', partnerId: me, conversationId: pick(groups), name: `R${n}` }
    if (r < 0.12) {
      const [low, high] = pairOf(me, pick(partners))
      const conversationId = groups.length > 0 && random() < 0.3 ? pick(groups) : `direct_${low}_${high}`
      return { kind: 'resume', conversationId, ...(random() < 0.5 ? { partnerId: partners[5]! } : {}) }
    }
    if (r < 0.122 && groups.length > 0)
      return { kind: 'pause', conversationId: pick(groups), ...(random() < 0.5 ? { partnerId: partners[5]! } : {}) }
    // Only the last partner retires: the others keep the log growing.
    if (r < 0.125) return { kind: 'retire', partnerId: random() < 0.5 ? partners[11]! : 'ghost' }
    if (r < 0.45) return { kind: 'talk', fromId: me, to: pick(partners), content: `hello ${n} ✓`, ...(random() < 0.2 ? { idempotencyKey: `k${n % 50}` } : {}) }
    if (r < 0.6 && groups.length > 0) return { kind: 'talk', fromId: me, conversationId: pick(groups), content: `group note ${n}` }
    if (r < 0.66) {
      groups.push(`group_${n}`)
      return { kind: 'createGroup', creatorId: me, name: `G${n}`, participants: [pick(partners), pick(partners)], groupId: `group_${n}` }
    }
    if (r < 0.72 && groups.length > 0) return { kind: 'leave', partnerId: me, conversationId: pick(groups) }
    if (r < 0.78) return { kind: 'ack', partnerId: me, cursor: Math.floor(random() * (lastSeq() + 1)) }
    if (r < 0.84) {
      const other = pick(partners)
      const direct = me < other ? `direct_${me}_${other}` : `direct_${other}_${me}`
      const conversationId = groups.length > 0 && random() < 0.5 ? pick(groups) : direct
      const state = random() < 0.5 ? 'pushed' : 'surfaced'
      return { kind: 'report', partnerId: me, state, marks: [{ conversationId, seq: 1 + Math.floor(random() * lastSeq()) }] }
    }
    if (r < 0.88) return { kind: 'setStatus', partnerId: me, message: random() < 0.7 ? `busy ${n}` : null }
    if (r < 0.91) return { kind: 'setNotifications', partnerId: me, enabled: random() < 0.5 }
    if (r < 0.95) return { kind: 'unregister', partnerId: me }
    if (r < 0.98) return { kind: 'register', partnerId: me, newTokenHash: hash(n) }
    return { kind: 'reissueToken', partnerId: random() < 0.9 ? me : 'ghost', newTokenHash: hash(n) }
  }
}

describe('a log written by thousands of commands', () => {
  test('rebuilds into views equal to the live ones, table by table', async () => {
    const path = join(dir, 'mixed.db')
    // A short loop guard, so that pauses (and refusals while paused) happen often.
    const store = openStore({ path, sync: 'normal', rules: { maxHops: 4 } })
    const next = commandMix(seededRandom(7), store.log.lastSeq)
    let refused = 0
    // Fifty at a time: they share commits, so rollbacks and batching are part of what is checked.
    while (store.log.lastSeq() < 5000) {
      const results = await Promise.all(Array.from({ length: 50 }, () => store.commands.execute(next())))
      refused += results.filter((r) => !r.ok).length
    }
    const types = new Set(store.log.readAfter(0, 10_000).map((e) => e.type))
    expect([...types].sort()).toEqual([...EVENT_TYPES].sort())
    expect(refused).toBeGreaterThan(0)

    // Audited while the store is still open, as beside a running broker.
    const report = await auditFile(path)
    expect(report.differences).toEqual([])
    expect(report.rebuild).toBeUndefined()
    expect(report.log).toEqual({})
    expect(report.events).toBe(store.log.lastSeq())
    expect(report.ok).toBe(true)
    await store.close()
  })
})
