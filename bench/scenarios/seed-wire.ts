// The seed's wire API (legacy listen, no cursor) driven the way the original partner drives it: ask again at once.
import { blank, type Scenario } from '../context.ts'
import { post, registerAll, stats, untilListening } from '../client.ts'
import { Countdown, Receipts, seedListen } from '../listeners.ts'

const ROUND_MS = 3000

/** A group of 21: one speaker, 20 seed listeners; each round one talk, timed until all 20 have it. */
export const seedFanout20: Scenario = async (ctx) => {
  const out = blank('seed-fanout-20')
  const broker = await ctx.broker('seed-fanout20')
  const stop = new AbortController()
  const n = 20
  try {
    const listeners = Array.from({ length: n }, (_, i) => `member${i}`)
    await registerAll(broker.url, ['speaker', ...listeners])
    const created = await post(`${broker.url}/conversations`, { creatorId: 'speaker', name: 'fan-out', participants: listeners })
    if (created.status !== 200) throw new Error(`create group: ${JSON.stringify(created.body)}`)
    const groupId = created.body.conversation.id as string
    const countdown = new Countdown()
    const receipts = listeners.map(() => new Receipts(() => countdown.hit()))
    const polls = listeners.map((id, i) => seedListen(broker.url, id, receipts[i]!, stop.signal))
    const rounds = ctx.quick ? 100 : 500
    const allReceived: number[] = []
    for (let i = 0; i < rounds; i++) {
      if (!(await untilListening(broker.url, n, performance.now() + ROUND_MS))) throw new Error('the listeners never parked')
      countdown.arm(n)
      const t0 = performance.now()
      const [reply] = await Promise.all([
        post(`${broker.url}/talk`, { fromId: 'speaker', conversationId: groupId, content: `fan-out ${i}` }),
        countdown.wait(ROUND_MS),
      ])
      if (reply.status !== 200) {
        out.errors++
        continue
      }
      const times = receipts.map((r) => r.at.get(reply.body.messageId))
      out.lost += times.filter((t) => t === undefined).length
      const got = times.filter((t): t is number => t !== undefined).map((t) => t - t0)
      if (got.length === n) allReceived.push(Math.max(...got))
    }
    out.duplicated = receipts.reduce((d, r) => d + r.duplicated, 0)
    out.errors += polls.reduce((e, p) => e + p.errors, 0)
    const all = stats(allReceived)
    out.figures.push(
      { metric: 'all 20 received p50', value: all.p50, unit: 'ms' },
      { metric: 'all 20 received p99', value: all.p99, unit: 'ms', target: { op: '<=', value: 5 } },
      { metric: 'duplicates', value: out.duplicated, unit: 'count', target: { op: '<=', value: 0 } },
    )
    out.notes.push(`20 seed listeners (GET /listen/:id?timeout=2, asked again at once); ${rounds} rounds of one talk, timed until all 20 have it`)
  } finally {
    stop.abort()
    await broker.stop()
  }
  return out
}

/** Two seed partners answering each other: each turn one talk, timed until the other has it. */
export const seedPingPong: Scenario = async (ctx) => {
  const out = blank('seed-back-and-forth')
  const broker = await ctx.broker('seed-pingpong')
  const stop = new AbortController()
  try {
    const ids = ['ping', 'pong'] as const
    await registerAll(broker.url, [...ids])
    const countdown = new Countdown()
    const receipts = ids.map(() => new Receipts(() => countdown.hit()))
    const polls = ids.map((id, i) => seedListen(broker.url, id, receipts[i]!, stop.signal))
    const rounds = ctx.quick ? 100 : 400
    const latencies: number[] = []
    for (let i = 0; i < rounds; i++) {
      const from = i % 2
      const to = 1 - from
      // No wait for the other side to park: it re-listens at once, as the original partner does.
      countdown.arm(1)
      const t0 = performance.now()
      const [reply] = await Promise.all([
        post(`${broker.url}/talk`, { fromId: ids[from], to: ids[to], content: `turn ${i}` }),
        countdown.wait(ROUND_MS),
      ])
      if (reply.status !== 200) {
        out.errors++
        continue
      }
      const at = receipts[to]!.at.get(reply.body.messageId)
      if (at === undefined) out.lost++
      else latencies.push(at - t0)
    }
    out.duplicated = receipts.reduce((d, r) => d + r.duplicated, 0)
    out.errors += polls.reduce((e, p) => e + p.errors, 0)
    const s = stats(latencies)
    out.figures.push(
      { metric: 'send → other side p50', value: s.p50, unit: 'ms' },
      { metric: 'send → other side p99', value: s.p99, unit: 'ms' },
      { metric: 'duplicates', value: out.duplicated, unit: 'count', target: { op: '<=', value: 0 } },
    )
    out.notes.push(`two seed listeners answering each other; ${rounds} turns, each sent as soon as the previous one arrived`)
  } finally {
    stop.abort()
    await broker.stop()
  }
  return out
}
