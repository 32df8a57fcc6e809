// Delivery and fan-out over cursor long-polls: send → receipt for one listener, and for a group of 20.
import { blank, type Scenario } from '../context.ts'
import { get, post, registerAll, stats, untilListening } from '../client.ts'
import { Countdown, type Listen, longPoll, Receipts } from '../listeners.ts'

const ROUND_MS = 3000

export const delivery: Scenario = async (ctx) => {
  const out = blank('delivery')
  const broker = await ctx.broker('delivery')
  const stop = new AbortController()
  try {
    await registerAll(broker.url, ['sender', 'listener'])
    await post(`${broker.url}/talk`, { fromId: 'sender', to: 'listener', content: 'hello' })
    const start = (await get<{ last_seq: number }>(`${broker.url}/health`)).body.last_seq
    const countdown = new Countdown()
    const receipts = new Receipts(() => countdown.hit())
    const poll = longPoll(broker.url, 'listener', start, receipts, stop.signal)
    const rounds = ctx.quick ? 300 : 2000
    const latencies: number[] = []
    for (let i = 0; i < rounds; i++) {
      if (!(await untilListening(broker.url, 1, performance.now() + ROUND_MS))) throw new Error('the listener never parked')
      countdown.arm(1)
      const t0 = performance.now()
      const [reply, arrived] = await Promise.all([
        post(`${broker.url}/talk`, { fromId: 'sender', to: 'listener', content: `delivery ${i}` }),
        countdown.wait(ROUND_MS),
      ])
      if (reply.status !== 200) {
        out.errors++
        continue
      }
      const at = receipts.at.get(reply.body.messageId)
      if (!arrived || at === undefined) out.lost++
      else latencies.push(at - t0)
    }
    out.duplicated = receipts.duplicated
    out.errors += poll.errors
    const s = stats(latencies)
    out.figures.push(
      { metric: 'send → receipt p50', value: s.p50, unit: 'ms', target: { op: '<=', value: 1 } },
      { metric: 'send → receipt p99', value: s.p99, unit: 'ms', target: { op: '<=', value: 2 } },
      { metric: 'send → receipt max', value: s.max, unit: 'ms' },
    )
    out.notes.push(`${rounds} rounds: wait until the long-poll is parked (/health), send, time until the listener has it`)
  } finally {
    stop.abort()
    await broker.stop()
  }
  return out
}

/**
 * A group of 21: one speaker and 20 listeners (`listen`: cursor long-polls, or the seed's legacy listen);
 * each round waits until all 20 are parked, sends one talk and times it until all 20 have it.
 */
export function fanout(name: string, listen: Listen, target: number, what: string): Scenario {
  return async (ctx) => {
    const out = blank(name)
    const broker = await ctx.broker(name)
    const stop = new AbortController()
    const n = 20
    try {
      const listeners = Array.from({ length: n }, (_, i) => `member${i}`)
      await registerAll(broker.url, ['speaker', ...listeners])
      const created = await post(`${broker.url}/conversations`, { creatorId: 'speaker', name: 'fan-out', participants: listeners })
      if (created.status !== 200) throw new Error(`create group: ${JSON.stringify(created.body)}`)
      const groupId = created.body.conversation.id as string
      const start = (await get<{ last_seq: number }>(`${broker.url}/health`)).body.last_seq
      const countdown = new Countdown()
      const receipts = listeners.map(() => new Receipts(() => countdown.hit()))
      const polls = listeners.map((id, i) => listen(broker.url, id, start, receipts[i]!, stop.signal))
      const rounds = ctx.quick ? 100 : 500
      const allReceived: number[] = []
      const each: number[] = []
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
        each.push(...got)
        if (got.length === n) allReceived.push(Math.max(...got))
      }
      out.duplicated = receipts.reduce((d, r) => d + r.duplicated, 0)
      out.errors += polls.reduce((e, p) => e + p.errors, 0)
      const all = stats(allReceived)
      const one = stats(each)
      out.figures.push(
        { metric: 'all 20 received p50', value: all.p50, unit: 'ms' },
        { metric: 'all 20 received p99', value: all.p99, unit: 'ms', target: { op: '<=', value: target } },
        { metric: 'each listener p50', value: one.p50, unit: 'ms' },
        { metric: 'duplicates', value: out.duplicated, unit: 'count', target: { op: '<=', value: 0 } },
      )
      out.notes.push(`a group of 21 (one speaker, 20 ${what}); ${rounds} rounds of one talk, timed until all 20 have it`)
    } finally {
      stop.abort()
      await broker.stop()
    }
    return out
  }
}

export const fanout20 = fanout('fanout-20', longPoll, 4, 'cursor long-polls')
