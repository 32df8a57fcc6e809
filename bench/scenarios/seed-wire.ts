// The seed's wire API (legacy listen, no cursor) driven the way the original partner drives it: ask again at once.
import { blank, type Scenario } from '../context.ts'
import { fanout } from './delivery.ts'
import { post, registerAll, stats } from '../client.ts'
import { Countdown, Receipts, seedListen } from '../listeners.ts'

const ROUND_MS = 3000

/** The fan-out to 20 with the seed's listen, asked again at once (the original partner's loop). */
export const seedFanout20 = fanout('seed-fanout-20', seedListen, 5, 'seed listeners (GET /listen/:id?timeout=2, asked again at once)')

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
    const polls = ids.map((id, i) => seedListen(broker.url, id, 0, receipts[i]!, stop.signal))
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
