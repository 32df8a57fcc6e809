// The floor and talk: the same requests against a bare Bun.serve and against the broker, sequential and 32 at once.
import { blank, type Scenario } from '../context.ts'
import { get, OPERATOR, post, registerAll, stats } from '../client.ts'
import { closeSync, fdatasyncSync, openSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { spawnFloor } from '../procs.ts'

export const SENDERS = 32

export type Load = { latencies: number[]; ok: number; errors: number; seconds: number; acked: Map<string, number>; tried: Set<string> }

const body = (from: string, to: string, content: string) => ({ fromId: from, to, content })

/** Sends one talk and records its latency and outcome in `load`. */
export async function sendOne(load: Load, url: string, from: string, to: string, content: string): Promise<void> {
  load.tried.add(content)
  const t0 = performance.now()
  try {
    const reply = await post(url, body(from, to, content))
    load.latencies.push(performance.now() - t0)
    if (reply.status === 200) {
      load.ok++
      load.acked.set(content, reply.body.messageId)
    } else load.errors++
  } catch {
    load.errors++
  }
}

export const emptyLoad = (): Load => ({ latencies: [], ok: 0, errors: 0, seconds: 0, acked: new Map(), tried: new Set() })

/** One sender, one request at a time. */
async function sequential(url: string, count: number, tag: string): Promise<Load> {
  const load = emptyLoad()
  const started = performance.now()
  for (let i = 0; i < count; i++) await sendOne(load, url, 's0', 'r0', `${tag} s0 ${i}`)
  load.seconds = (performance.now() - started) / 1000
  return load
}

/**
 * `SENDERS` keep-alive loops, each its own sender and recipient, until `count` requests or `limitMs`;
 * sender `s` sends to `urlOf(s)` when given (several brokers on one log), else to `url`.
 */
export async function concurrent(url: string, count: number, limitMs: number, tag: string, urlOf?: (s: number) => string): Promise<Load> {
  const load = emptyLoad()
  const started = performance.now()
  let issued = 0
  const loop = async (s: number) => {
    while (issued < count && performance.now() - started < limitMs) await sendOne(load, urlOf?.(s) ?? url, `s${s}`, `r${s}`, `${tag} s${s} ${issued++}`)
  }
  await Promise.all(Array.from({ length: SENDERS }, (_, s) => loop(s)))
  load.seconds = (performance.now() - started) / 1000
  return load
}

/** Reads every MessageSent after `after` back from `/events`: each acknowledged message exactly once, at its seq. */
export async function checkStored(base: string, after: number, loads: Load[]): Promise<{ lost: number; duplicated: number }> {
  const seen = new Map<string, number[]>()
  for (let cursor = after; ; ) {
    const page = await get<{ events: Array<{ seq: number; data: { content: string } }>; next: number }>(
      `${base}/events?type=MessageSent&after=${cursor}&limit=1000`,
      OPERATOR,
    )
    if (page.status !== 200) throw new Error(`/events: ${page.status} ${JSON.stringify(page.body)}`)
    for (const e of page.body.events) seen.set(e.data.content, [...(seen.get(e.data.content) ?? []), e.seq])
    if (page.body.events.length === 0) break
    cursor = page.body.next
  }
  let lost = 0
  let duplicated = 0
  for (const load of loads) {
    for (const [content, seq] of load.acked) if (!seen.get(content)?.includes(seq)) lost++
    for (const content of load.tried) duplicated += Math.max(0, (seen.get(content)?.length ?? 0) - 1)
  }
  return { lost, duplicated }
}

export const rps = (load: Load) => load.ok / load.seconds

/** The disk's own floor for a durable commit: appending 4 KiB to a file and fdatasync-ing it, as a WAL commit does. */
function syncLatencies(dir: string, count: number): number[] {
  const fd = openSync(join(dir, 'fsync-probe'), 'w')
  const page = new Uint8Array(4096).fill(7)
  const times: number[] = []
  try {
    for (let i = 0; i < count; i++) {
      writeSync(fd, page)
      const t0 = performance.now()
      fdatasyncSync(fd)
      times.push(performance.now() - t0)
    }
  } finally {
    closeSync(fd)
  }
  return times
}

export const floor: Scenario = async (ctx) => {
  const out = blank('floor')
  const server = await spawnFloor()
  try {
    await concurrent(`${server.url}/talk`, 2000, 5000, 'warm')
    const seq = await sequential(`${server.url}/talk`, ctx.quick ? 1000 : 5000, 'floor')
    const cpu0 = server.cpu()
    const conc = await concurrent(`${server.url}/talk`, ctx.quick ? 10_000 : 60_000, 15_000, 'floor')
    const cpu = server.cpu() - cpu0
    ctx.floor = { sequentialRps: rps(seq), concurrentRps: rps(conc) }
    const s = stats(seq.latencies)
    const c = stats(conc.latencies)
    out.figures.push(
      { metric: 'sequential req/s', value: rps(seq), unit: 'req/s' },
      { metric: 'sequential p50', value: s.p50, unit: 'ms' },
      { metric: `concurrent ${SENDERS} req/s`, value: rps(conc), unit: 'req/s' },
      { metric: `concurrent ${SENDERS} p99`, value: c.p99, unit: 'ms' },
      { metric: 'server CPU per request', value: (cpu / conc.ok) * 1e6, unit: 'µs' },
    )
    const sync = stats(syncLatencies(ctx.tmp, ctx.quick ? 200 : 1000))
    out.figures.push(
      { metric: 'disk: 4 KiB append + fdatasync p50', value: sync.p50, unit: 'ms' },
      { metric: 'disk: 4 KiB append + fdatasync p99', value: sync.p99, unit: 'ms' },
    )
    out.errors = seq.errors + conc.errors
    out.notes.push(
      'bare Bun.serve in its own process: parses the talk body, answers JSON; same client, same machine',
      'the fdatasync figures are the least a durable commit can take here, before any broker work',
    )
  } finally {
    await server.stop()
  }
  return out
}

export const talk: Scenario = async (ctx) => {
  const out = blank('talk')
  const broker = await ctx.broker('talk')
  try {
    const ids = Array.from({ length: SENDERS }, (_, i) => [`s${i}`, `r${i}`]).flat()
    await registerAll(broker.url, ids)
    const url = `${broker.url}/talk`
    const warm = await concurrent(url, 2000, 5000, 'warm')
    const health = await get<{ last_seq: number }>(`${broker.url}/health`)
    const seq = await sequential(url, ctx.quick ? 500 : 3000, 'seq')
    const cpu0 = broker.cpu()
    const conc = await concurrent(url, ctx.quick ? 5000 : 40_000, 20_000, 'conc')
    const cpu = broker.cpu() - cpu0
    const checked = await checkStored(broker.url, health.body.last_seq, [seq, conc])
    const s = stats(seq.latencies)
    const c = stats(conc.latencies)
    const floor = ctx.floor
    out.figures.push(
      { metric: 'sequential p50', value: s.p50, unit: 'ms' },
      { metric: 'sequential p99', value: s.p99, unit: 'ms' },
      { metric: 'sequential msg/s', value: rps(seq), unit: 'msg/s', ratio: floor && rps(seq) / floor.sequentialRps },
      {
        metric: `concurrent ${SENDERS} msg/s`,
        value: rps(conc),
        unit: 'msg/s',
        ratio: floor && rps(conc) / floor.concurrentRps,
        target: floor && { op: '>=', value: floor.concurrentRps * 0.6 },
      },
      { metric: `concurrent ${SENDERS} p50`, value: c.p50, unit: 'ms' },
      { metric: `concurrent ${SENDERS} p99`, value: c.p99, unit: 'ms' },
      { metric: 'broker CPU per message', value: (cpu / conc.ok) * 1e6, unit: 'µs', target: { op: '<=', value: 45 } },
      { metric: `concurrent ${SENDERS} errors`, value: conc.errors, unit: 'count', target: { op: '<=', value: 0 } },
    )
    out.lost = checked.lost
    out.duplicated = checked.duplicated
    out.errors = seq.errors + conc.errors + warm.errors
    out.notes.push(`DUO_SYNC=${ctx.sync}; ${SENDERS} senders each to its own partner; every acknowledged message read back from /events`)
  } finally {
    await broker.stop()
  }
  return out
}

