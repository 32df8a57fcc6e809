// PostgreSQL (`bun run bench -- --postgres`): talk through one and three brokers on one shared log, cross-broker
// delivery, a late broker's start-up replay; the same talk and delivery on SQLite beside them.
import { SQL } from 'bun'
import { blank, type Scenario } from '../context.ts'
import { get, post, registerAll, stats, untilListening } from '../client.ts'
import { Countdown, longPoll, Receipts } from '../listeners.ts'
import { type Child, spawnBroker } from '../procs.ts'
import type { Figure } from '../report.ts'
import { checkStored, concurrent, rps, SENDERS } from './talk.ts'

/** The server the benchmark creates its scratch databases on (each dropped afterwards). */
const SERVER = process.env.DUO_BENCH_PG ?? 'postgres://postgres@127.0.0.1:5432'
const ROUND_MS = 3000

async function scratchDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `duo_bench_${process.pid}_${Math.random().toString(36).slice(2, 8)}`
  const admin = new SQL(`${SERVER}/postgres`)
  await admin.unsafe(`CREATE DATABASE ${name}`)
  return {
    url: `${SERVER}/${name}`,
    async drop() {
      await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      await admin.close()
    },
  }
}

/** 32 concurrent talkers, sender s through `brokers[s % n]`; every acknowledged message read back from the log. */
async function talkLoad(brokers: Child[], count: number, label: string, out: ReturnType<typeof blank>): Promise<Figure[]> {
  const ids = Array.from({ length: SENDERS }, (_, i) => [`s${i}`, `r${i}`]).flat()
  await registerAll(brokers[0]!.url, ids)
  const urlOf = (s: number) => `${brokers[s % brokers.length]!.url}/talk`
  const warm = await concurrent(urlOf(0), 1000, 5000, `${label} warm`, urlOf)
  const after = (await get<{ last_seq: number }>(`${brokers[0]!.url}/health`)).body.last_seq
  const load = await concurrent(urlOf(0), count, 15_000, label, urlOf)
  const checked = await checkStored(brokers[0]!.url, after, [load])
  out.lost += checked.lost
  out.duplicated += checked.duplicated
  out.errors += warm.errors + load.errors
  const s = stats(load.latencies)
  return [
    { metric: `${label}: ${SENDERS} concurrent msg/s`, value: rps(load), unit: 'msg/s' },
    { metric: `${label}: talk p50`, value: s.p50, unit: 'ms' },
    { metric: `${label}: talk p99`, value: s.p99, unit: 'ms' },
  ]
}

/** Send through `from`, long-poll on `to`: time from the send until the listener has the message. */
async function deliveryRounds(from: Child, to: Child, rounds: number, out: ReturnType<typeof blank>): Promise<number[]> {
  await registerAll(from.url, ['sender', 'listener'])
  await post(`${from.url}/talk`, { fromId: 'sender', to: 'listener', content: 'hello' })
  const start = (await get<{ last_seq: number }>(`${from.url}/health`)).body.last_seq
  const stop = new AbortController()
  const countdown = new Countdown()
  const receipts = new Receipts(() => countdown.hit())
  const poll = longPoll(to.url, 'listener', start, receipts, stop.signal)
  const latencies: number[] = []
  try {
    for (let i = 0; i < rounds; i++) {
      if (!(await untilListening(to.url, 1, performance.now() + ROUND_MS))) throw new Error('the listener never parked')
      countdown.arm(1)
      const t0 = performance.now()
      const [reply, arrived] = await Promise.all([
        post(`${from.url}/talk`, { fromId: 'sender', to: 'listener', content: `delivery ${i}` }),
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
  } finally {
    stop.abort()
  }
  out.duplicated += receipts.duplicated
  out.errors += poll.errors
  return latencies
}

export const postgres: Scenario = async (ctx) => {
  const out = blank('postgres')
  const count = ctx.quick ? 3000 : 20_000
  const rounds = ctx.quick ? 200 : 1000

  // SQLite beside it: the same loads on one broker with the default file.
  const sqlite = await ctx.broker('postgres-sqlite')
  try {
    out.figures.push(...(await talkLoad([sqlite], count, 'SQLite, 1 broker', out)))
    const d = stats(await deliveryRounds(sqlite, sqlite, rounds, out))
    out.figures.push(
      { metric: 'SQLite: send → receipt p50', value: d.p50, unit: 'ms' },
      { metric: 'SQLite: send → receipt p99', value: d.p99, unit: 'ms' },
    )
  } finally {
    await sqlite.stop()
  }

  const one = await scratchDatabase()
  try {
    const broker = await spawnBroker({ db: one.url })
    try {
      out.figures.push(...(await talkLoad([broker], count, 'PostgreSQL, 1 broker', out)))
    } finally {
      await broker.stop()
    }
  } finally {
    await one.drop()
  }

  const three = await scratchDatabase()
  try {
    const brokers = await Promise.all([0, 1, 2].map(() => spawnBroker({ db: three.url })))
    try {
      out.figures.push(...(await talkLoad(brokers, count, 'PostgreSQL, 3 brokers', out)))
      const d = stats(await deliveryRounds(brokers[0]!, brokers[1]!, rounds, out))
      out.figures.push(
        { metric: 'PostgreSQL: cross-broker send → receipt p50', value: d.p50, unit: 'ms' },
        { metric: 'PostgreSQL: cross-broker send → receipt p99', value: d.p99, unit: 'ms', target: { op: '<=', value: 10 } },
      )
      // A broker that joins late replays the whole log into its replica before it listens.
      const events = (await get<{ last_seq: number }>(`${brokers[0]!.url}/health`)).body.last_seq
      const late = await spawnBroker({ db: three.url })
      out.figures.push({ metric: `late broker start with ${events.toLocaleString('en-US')} events`, value: late.startMs, unit: 'ms' })
      out.figures.push({ metric: 'late broker RSS', value: late.rss() / 2 ** 20, unit: 'MB' })
      await late.stop()
    } finally {
      await Promise.all(brokers.map((b) => b.stop()))
    }
  } finally {
    await three.drop()
  }
  out.notes.push(
    `PostgreSQL at ${SERVER.replace(/:[^:@/]*@/, ':***@')} on this machine; ${SENDERS} senders, each to its own partner, sender s through broker s mod n`,
    'cross-broker delivery: send through broker 1, cursor long-poll on broker 2, timed until the listener has it',
    'every acknowledged message is read back from /events (lost, duplicated); DUO_SYNC applies to the SQLite broker only',
  )
  return out
}
