// Delivery state per recipient (queued → pushed → surfaced → read) as positions, receipts, and what talk answers.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { auditFile } from '../../src/cli/audit-core.ts'
import { MANY_PARTNERS } from './helpers.ts'
import { expectRefusal, type SecureBroker, startSecureBroker } from './secure-harness.ts'

let broker: SecureBroker
const tokens = new Map<string, string>()

beforeAll(async () => {
  // A group of 100 needs 100 registrations from one address: more than the default rate allows a minute.
  broker = await startSecureBroker(MANY_PARTNERS)
})
afterAll(async () => {
  await broker.close()
})

let n = 0
const unique = (base: string) => `${base}${++n}`
async function register(...ids: string[]) {
  for (const id of ids) tokens.set(id, await broker.register(id))
}
const as = (id: string) => tokens.get(id)!
const admin = () => broker.adminToken

async function talk(fromId: string, target: { to?: string; conversationId?: string }, content: string) {
  const answer = await broker.call('POST', '/talk', { body: { fromId, ...target, content }, token: as(fromId) })
  if (answer.status !== 200) throw new Error(`talk: ${answer.text}`)
  return answer.body as {
    seq: number
    conversationId: string
    recipients: Array<{ partnerId: string; reachability: string }>
    acknowledged: Array<{ conversationId: string; seq: number }>
  }
}
const report = (id: string, state: string, marks: Array<{ conversationId: string; seq: number }>) =>
  broker.call('POST', `/listen/${id}/report`, { body: { state, marks }, token: as(id) })
const receipts = (seq: number, token = admin()) => broker.call('GET', `/messages/${seq}/receipts`, { token })
const eventsAfter = async (after: number) =>
  (await broker.call('GET', `/events?after=${after}&limit=1000`, { token: admin() })).body.events as Array<{ type: string }>

describe('a message into a group of 100', () => {
  test('costs one event; every recipient is queued; one report covers many messages with one event', async () => {
    const ids = Array.from({ length: 100 }, (_, i) => `m${i}x${n}`)
    n++
    await register(...ids)
    const [creator, ...others] = ids
    const created = await broker.call('POST', '/conversations', { body: { creatorId: creator, name: 'All hands', participants: others }, token: as(creator!) })
    const groupId = created.body.conversation.id as string

    const before = await broker.lastSeq()
    const sent = await talk(creator!, { conversationId: groupId }, 'standup in 5')
    const appended = await eventsAfter(before)
    expect(appended.map((e) => e.type)).toEqual(['MessageSent'])
    expect(sent.recipients).toHaveLength(99)
    // Registered a moment ago over plain HTTP, with nothing parked: active, so at best connected.
    expect(sent.recipients[0]).toEqual({ partnerId: expect.any(String), reachability: 'connected' })

    const receipt = (await receipts(sent.seq)).body
    expect(receipt).toMatchObject({ seq: sent.seq, conversationId: groupId, from: creator })
    expect(receipt.recipients).toHaveLength(99)
    expect(new Set(receipt.recipients.map((r: { state: string }) => r.state))).toEqual(new Set(['queued']))

    // Ten more messages, then one recipient reports them all pushed: one event for the lot.
    let last = sent.seq
    for (let i = 0; i < 10; i++) last = (await talk(creator!, { conversationId: groupId }, `note ${i}`)).seq
    const beforeReport = await broker.lastSeq()
    const reported = await report(others[0]!, 'pushed', [{ conversationId: groupId, seq: last }])
    expect(reported.body).toEqual({ success: true, advanced: [{ conversationId: groupId, state: 'pushed', seq: last }] })
    expect((await eventsAfter(beforeReport)).map((e) => e.type)).toEqual(['DeliveryAdvanced'])
    const mine = (await receipts(sent.seq)).body.recipients.find((r: { partnerId: string }) => r.partnerId === others[0])
    expect(mine).toEqual({ partnerId: others[0], state: 'pushed', at: expect.any(String) })
  })
})

describe('states move only forward', () => {
  test('queued → pushed → surfaced → read, with the time each was reached; a report behind the position adds nothing', async () => {
    const [a, b] = [unique('alice'), unique('bob')]
    await register(a, b)
    const first = await talk(a, { to: b }, 'first')
    const c = first.conversationId
    const at = async () => (await receipts(first.seq)).body.recipients[0]

    expect(await at()).toEqual({ partnerId: b, state: 'queued', at: expect.any(String) })
    await report(b, 'pushed', [{ conversationId: c, seq: first.seq }])
    const pushed = await at()
    expect(pushed.state).toBe('pushed')
    await report(b, 'surfaced', [{ conversationId: c, seq: first.seq }])
    expect((await at()).state).toBe('surfaced')

    // Nothing moves back, and a repeated report is not an event.
    const seqBefore = await broker.lastSeq()
    expect((await report(b, 'pushed', [{ conversationId: c, seq: first.seq }])).body.advanced).toEqual([])
    expect(await broker.lastSeq()).toBe(seqBefore)

    await broker.call('POST', `/listen/${b}/ack`, { body: { cursor: first.seq }, token: as(b) })
    const read = await at()
    expect(read.state).toBe('read')
    expect(Date.parse(read.at)).toBeGreaterThanOrEqual(Date.parse(pushed.at))
    // Read covers every state: a later surfaced report for it adds nothing.
    expect((await report(b, 'surfaced', [{ conversationId: c, seq: first.seq }])).body.advanced).toEqual([])
  })

  test('a report names only conversations the partner is in, and no seq past the log', async () => {
    const [a, b, c] = [unique('alice'), unique('bob'), unique('carol')]
    await register(a, b, c)
    const sent = await talk(a, { to: b }, 'private')
    const refused = await report(c, 'pushed', [{ conversationId: sent.conversationId, seq: sent.seq }])
    expectRefusal(refused, 403)
    expect(refused.body.reason).toBe('not_a_participant')
    const ahead = await report(b, 'pushed', [{ conversationId: sent.conversationId, seq: sent.seq + 10_000 }])
    expectRefusal(ahead, 409)
    expect(ahead.body.reason).toBe('cursor_ahead')
    const bad = await report(b, 'read', [{ conversationId: sent.conversationId, seq: sent.seq }])
    expectRefusal(bad, 400)
    const other = await broker.call('POST', `/listen/${b}/report`, { body: { state: 'pushed', marks: [{ conversationId: sent.conversationId, seq: sent.seq }] }, token: as(c) })
    expectRefusal(other, 403)
    expect(other.body.reason).toBe('acting_for_another')
  })
})

describe('receipts', () => {
  test('any member or the operator may read them; others, and callers without a token, may not', async () => {
    const [a, b, c] = [unique('alice'), unique('bob'), unique('carol')]
    await register(a, b, c)
    const sent = await talk(a, { to: b }, 'for bob')
    expect((await receipts(sent.seq, as(a))).status).toBe(200)
    expect((await receipts(sent.seq, as(b))).status).toBe(200)
    const outsider = await receipts(sent.seq, as(c))
    expectRefusal(outsider, 403)
    expect(outsider.body.reason).toBe('not_a_participant')
    const anonymous = await broker.call('GET', `/messages/${sent.seq}/receipts`)
    expectRefusal(anonymous, 401)
    const missing = await receipts(999_999)
    expectRefusal(missing, 404)
    expect(missing.body.reason).toBe('unknown_message')
    // Without a token, nobody learns whether a seq exists.
    expect((await broker.call('GET', '/messages/999999/receipts')).status).toBe(401)
  })
})

describe('replying', () => {
  test('acknowledges what the session was shown there, and history shows the sender where each recipient stands', async () => {
    const [a, b] = [unique('alice'), unique('bob')]
    await register(a, b)
    const question = await talk(a, { to: b }, 'question?')
    await report(b, 'pushed', [{ conversationId: question.conversationId, seq: question.seq }])
    const answer = await talk(b, { conversationId: question.conversationId }, 'answer!')
    expect(answer.acknowledged).toEqual([{ conversationId: question.conversationId, seq: question.seq }])
    expect((await receipts(question.seq)).body.recipients[0].state).toBe('read')
    // Nothing unread for bob any more in that conversation.
    const list = await broker.call('GET', `/conversations/${b}`, { token: as(b) })
    expect(list.body.conversations.find((c: { id: string }) => c.id === question.conversationId).unread_count).toBe(0)

    const history = await broker.call('GET', `/conversations/${question.conversationId}/messages`, { token: as(a) })
    const [mine, theirs] = history.body.messages
    expect(mine.recipients).toEqual([{ partnerId: b, state: 'read' }])
    expect(theirs.recipients).toBeUndefined()
  })
})

describe('audit', () => {
  test('rebuilds the delivery views from the log and finds them equal', async () => {
    const report = await auditFile(broker.dbPath)
    expect(report.differences).toEqual([])
    expect(report.ok).toBe(true)
  })
})

describe('a log from before delivery state', () => {
  test('gets its read marks from the log when the delivery views are first created, so audit passes', async () => {
    const { mkdtempSync, rmSync } = await import('node:fs')
    const { tmpdir } = await import('node:os')
    const { join } = await import('node:path')
    const { Database } = await import('bun:sqlite')
    const { openStore } = await import('../../src/store.ts')
    const dir = mkdtempSync(join(tmpdir(), 'duo-upgrade-'))
    const path = join(dir, 'old.db')
    try {
      const store = openStore({ path, sync: 'normal' })
      for (const partnerId of ['old-a', 'old-b']) await store.commands.execute({ kind: 'register', partnerId })
      for (let i = 0; i < 3; i++) {
        const sent = await store.commands.execute({ kind: 'talk', fromId: 'old-a', to: 'old-b', content: `before ${i}` })
        if (!sent.ok) throw new Error(JSON.stringify(sent))
        await store.commands.execute({ kind: 'ack', partnerId: 'old-b', cursor: store.log.lastSeq() })
      }
      await store.close()
      // As a database written before this version: no delivery views, and no record of their schema.
      const raw = new Database(path)
      raw.run('DROP TABLE delivery_positions')
      raw.run('DROP TABLE delivery_marks')
      raw.run("DELETE FROM duo_schema WHERE part = 'delivery'")
      raw.close()

      const upgraded = openStore({ path, sync: 'normal' })
      const marks = upgraded.db.query<{ n: number }, []>("SELECT count(*) AS n FROM delivery_marks WHERE state = 'read'").get()!.n
      await upgraded.close()
      expect(marks).toBe(3)
      const report = await auditFile(path)
      expect(report.differences).toEqual([])
      expect(report.ok).toBe(true)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
