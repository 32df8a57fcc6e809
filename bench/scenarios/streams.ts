// A thousand SSE listeners: fan-out to all of them, and what they cost the broker while idle.
import { blank, type Scenario } from '../context.ts'
import { get, OPERATOR, openSse, post, registerAll, type SseConnection, stats } from '../client.ts'
import { Countdown, Receipts } from '../listeners.ts'

const STREAMS = 1000
const GROUPS = 10
const ROUND_MS = 5000

async function openAll(
  base: string,
  paths: string[],
  headers: Record<string, string>,
  receipts: Receipts[],
): Promise<SseConnection[]> {
  const connections: SseConnection[] = []
  // Opened in waves, so the broker's accept queue never overflows.
  for (let i = 0; i < paths.length; i += 100) {
    const wave = paths.slice(i, i + 100).map((path, j) => openSse(base, path, headers, (seq) => receipts[i + j]!.take(seq)))
    await Promise.all(wave.map((c) => c.connected))
    connections.push(...wave)
  }
  return connections
}

/** Starts a round after the streams have had time to park again, and measures it. */
async function round(
  countdown: Countdown,
  expected: number,
  send: () => Promise<number[]>,
): Promise<{ t0: number; seqs: number[]; complete: boolean }> {
  await Bun.sleep(100)
  countdown.arm(expected)
  const t0 = performance.now()
  const [seqs, complete] = await Promise.all([send(), countdown.wait(ROUND_MS)])
  return { t0, seqs, complete }
}

export const fanoutSse: Scenario = async (ctx) => {
  const out = blank('fanout-sse')
  const broker = await ctx.broker('fanout-sse')
  let connections: SseConnection[] = []
  try {
    const ids = Array.from({ length: STREAMS }, (_, i) => `p${i}`)
    await registerAll(broker.url, [...ids, 'ops-speaker', 'ops-peer'])
    const size = STREAMS / GROUPS
    const groups: string[] = []
    for (let g = 0; g < GROUPS; g++) {
      const members = ids.slice(g * size, (g + 1) * size)
      const created = await post(`${broker.url}/conversations`, { creatorId: members[0], name: `g${g}`, participants: members.slice(1) })
      if (created.status !== 200) throw new Error(`create group: ${JSON.stringify(created.body)}`)
      groups.push(created.body.conversation.id)
    }
    await post(`${broker.url}/talk`, { fromId: 'ops-speaker', to: 'ops-peer', content: 'hello' })
    const start = (await get<{ last_seq: number }>(`${broker.url}/health`)).body.last_seq
    const countdown = new Countdown()
    const rounds = ctx.quick ? 10 : 40

    // 1. Partner streams: each group's first member speaks, the other 99 of the group receive.
    const receipts = ids.map(() => new Receipts(() => countdown.hit()))
    connections = await openAll(broker.url, ids.map((id) => `/listen/${id}/stream?after=${start}`), {}, receipts)
    const allReceived: number[] = []
    const each: number[] = []
    const receivers = STREAMS - GROUPS
    let cpu = broker.cpu()
    for (let r = 0; r < rounds; r++) {
      const { t0, seqs } = await round(countdown, receivers, () =>
        Promise.all(
          groups.map(async (conversationId, g) => {
            const reply = await post(`${broker.url}/talk`, { fromId: ids[g * size], conversationId, content: `sse ${r} ${g}` })
            if (reply.status !== 200) out.errors++
            return reply.body.messageId as number
          }),
        ),
      )
      let last = 0
      let got = 0
      ids.forEach((_, i) => {
        if (i % size === 0) return
        const at = receipts[i]!.at.get(seqs[Math.floor(i / size)]!)
        if (at === undefined) return out.lost++
        got++
        each.push(at - t0)
        last = Math.max(last, at - t0)
      })
      if (got === receivers) allReceived.push(last)
    }
    cpu = broker.cpu() - cpu
    for (const c of connections) c.close()
    out.duplicated += receipts.reduce((d, r) => d + r.duplicated, 0)
    const all = stats(allReceived)
    out.figures.push(
      { metric: `groups: all ${receivers} received p50`, value: all.p50, unit: 'ms' },
      { metric: `groups: all ${receivers} received p99`, value: all.p99, unit: 'ms', target: { op: '<=', value: 100 } },
      { metric: 'groups: each listener p50', value: stats(each).p50, unit: 'ms' },
      { metric: 'groups: broker CPU per round', value: (cpu / rounds) * 1000, unit: 'ms' },
    )

    // 2. The operator's stream: 1,000 clients of /events/stream, one talk, every client gets it.
    await Bun.sleep(200)
    const lastSeq = (await get<{ last_seq: number }>(`${broker.url}/health`)).body.last_seq
    const opsReceipts = ids.map(() => new Receipts(() => countdown.hit()))
    connections = await openAll(broker.url, ids.map(() => `/events/stream?after=${lastSeq}`), OPERATOR, opsReceipts)
    const opsAll: number[] = []
    cpu = broker.cpu()
    for (let r = 0; r < rounds; r++) {
      const { t0, seqs } = await round(countdown, STREAMS, async () => {
        const reply = await post(`${broker.url}/talk`, { fromId: 'ops-speaker', to: 'ops-peer', content: `ops ${r}` })
        if (reply.status !== 200) out.errors++
        return [reply.body.messageId as number]
      })
      const times = opsReceipts.map((rc) => rc.at.get(seqs[0]!))
      out.lost += times.filter((t) => t === undefined).length
      if (times.every((t) => t !== undefined)) opsAll.push(Math.max(...(times as number[])) - t0)
    }
    cpu = broker.cpu() - cpu
    out.duplicated += opsReceipts.reduce((d, r) => d + r.duplicated, 0)
    const ops = stats(opsAll)
    out.figures.push(
      { metric: `/events/stream: all ${STREAMS} received p50`, value: ops.p50, unit: 'ms' },
      { metric: `/events/stream: all ${STREAMS} received p99`, value: ops.p99, unit: 'ms', target: { op: '<=', value: 100 } },
      { metric: '/events/stream: broker CPU per round', value: (cpu / rounds) * 1000, unit: 'ms' },
    )
    out.notes.push(
      `groups cap at 100 members, so: ${STREAMS} partner streams in ${GROUPS} groups of ${size}; per round each group's first member talks (${GROUPS} talks at once) and the other ${receivers} receive`,
      `and ${STREAMS} operator /events/stream clients, one talk per round reaching all of them; ${rounds} rounds each, 100 ms apart`,
    )
  } finally {
    for (const c of connections) c.close()
    await broker.stop()
  }
  return out
}

export const idle: Scenario = async (ctx) => {
  const out = blank('idle-sse')
  const broker = await ctx.broker('idle')
  let connections: SseConnection[] = []
  try {
    const ids = Array.from({ length: STREAMS }, (_, i) => `idle${i}`)
    await registerAll(broker.url, ids)
    // Long enough for the garbage of 1,000 registrations to be collected, or "before" is inflated by it.
    await Bun.sleep(3000)
    const before = broker.rss()
    const receipts = ids.map(() => new Receipts())
    connections = await openAll(broker.url, ids.map((id) => `/listen/${id}/stream`), {}, receipts)
    await Bun.sleep(2000)
    const during = broker.rss()
    const open = connections.filter((c) => !c.closed).length
    for (const c of connections) c.close()
    connections = []
    await Bun.sleep(2000)
    const after = broker.rss()
    const health = (await get<{ listening: number }>(`${broker.url}/health`)).body
    if (open !== STREAMS) out.errors += STREAMS - open
    const MB = 1024 * 1024
    out.figures.push(
      { metric: 'broker RSS before', value: before / MB, unit: 'MB' },
      { metric: `broker RSS with ${STREAMS} streams`, value: during / MB, unit: 'MB' },
      { metric: `cost of ${STREAMS} idle streams`, value: (during - before) / MB, unit: 'MB', target: { op: '<', value: 20 } },
      { metric: 'per stream', value: (during - before) / STREAMS / 1024, unit: 'KB' },
      { metric: 'broker RSS after closing them', value: after / MB, unit: 'MB' },
      { metric: 'listening after closing', value: health.listening, unit: 'count', target: { op: '<=', value: 0 } },
    )
    out.notes.push(`${STREAMS} partners each with one open /listen/:id/stream; RSS from /proc/<pid>/status, 2 s after opening`)
  } finally {
    for (const c of connections) c.close()
    await broker.stop()
  }
  return out
}
