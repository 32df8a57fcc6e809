// Clients that ask for big answers and never read them: the broker's memory must stay bounded by bytes.
import net from 'node:net'
import { blank, type Scenario } from '../context.ts'
import { get, pool, post, registerAll, stats } from '../client.ts'

const MESSAGES = 1000
const MESSAGE_BYTES = 64 * 1024
const CLIENTS = 40
const HOLD_MS = 8000

/** A raw socket that sends one request and never reads a byte of the answer (TCP backpressure builds up). */
function stalledRequest(base: string, path: string): net.Socket {
  const { hostname, port } = new URL(base)
  const socket = net.connect(Number(port), hostname, () => {
    socket.write(`GET ${path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\n\r\n`)
  })
  // Paused before anything arrives: Bun's node:net then stops reading from the kernel.
  socket.pause()
  socket.on('error', () => {})
  return socket
}

/** Opens `paths` as stalled requests, holds them, and samples the broker's RSS and /health latency meanwhile. */
async function phase(base: string, rss: () => number, paths: string[]) {
  const before = rss()
  const sockets = paths.map((path) => stalledRequest(base, path))
  const rssSamples: number[] = []
  const health: number[] = []
  let errors = 0
  const deadline = performance.now() + HOLD_MS
  const sampler = (async () => {
    while (performance.now() < deadline) {
      rssSamples.push(rss())
      await Bun.sleep(100)
    }
  })()
  while (performance.now() < deadline) {
    const t0 = performance.now()
    const reply = await get(`${base}/health`).catch(() => ({ status: 0 }))
    health.push(performance.now() - t0)
    if (reply.status !== 200) errors++
    await Bun.sleep(50)
  }
  await sampler
  // Then each socket reads the start of its answer: proof that the broker did answer, and with what.
  const statuses = await Promise.all(
    sockets.map(
      (socket) =>
        new Promise<string>((resolve) => {
          const timer = setTimeout(() => resolve('no answer'), 5000)
          socket.once('data', (chunk: Buffer) => {
            clearTimeout(timer)
            resolve(/^HTTP\/1\.1 (\d+)/.exec(chunk.toString('latin1'))?.[1] ?? 'garbled')
          })
          socket.resume()
        }),
    ),
  )
  for (const socket of sockets) socket.destroy()
  const answered = Object.entries(Object.groupBy(statuses, (s) => s)).map(([status, list]) => `${list!.length} × ${status}`)
  return { growthMB: (Math.max(...rssSamples) - before) / 2 ** 20, health: stats(health), errors, answered: answered.join(', ') }
}

/** A fresh broker holding one conversation of MESSAGES × MESSAGE_BYTES between alice and bob. */
async function seeded(ctx: Parameters<Scenario>[0]) {
  const broker = await ctx.broker('hostile')
  await registerAll(broker.url, ['alice', 'bob'])
  const content = 'x'.repeat(MESSAGE_BYTES)
  let conversation = ''
  await pool(Array.from({ length: MESSAGES }, (_, i) => i), 8, async () => {
    const reply = await post(`${broker.url}/talk`, { fromId: 'alice', to: 'bob', content })
    if (reply.status !== 200) throw new Error(`talk: ${reply.status} ${JSON.stringify(reply.body)}`)
    conversation = reply.body.conversationId
  })
  return { broker, content, conversation: encodeURIComponent(conversation) }
}

export const hostile: Scenario = async (ctx) => {
  const out = blank('hostile')
  const kinds = (c: string) => [
    `/conversations/${c}/messages?limit=1000`,
    '/listen/bob?after=0&wait=0',
    '/listen/bob?timeout=0',
    '/listen/bob/stream?after=0',
    '/events?after=0&limit=1000',
    '/events/stream?after=0',
  ]
  const phases = [
    { name: 'history?limit=1000', paths: (c: string) => Array.from({ length: CLIENTS }, () => kinds(c)[0]!) },
    { name: 'mixed (history, long-polls, SSE, /events)', paths: (c: string) => Array.from({ length: CLIENTS }, (_, i) => kinds(c)[i % 6]!) },
  ]
  out.notes.push(
    `each phase: a fresh broker with ${MESSAGES} messages of ${MESSAGE_BYTES / 1024} KiB in one conversation, then ${CLIENTS} sockets that send one request and never read, held ${HOLD_MS / 1000} s`,
  )
  for (const { name, paths } of phases) {
    const { broker, content, conversation } = await seeded(ctx)
    try {
      const startMB = broker.rss() / 2 ** 20
      const result = await phase(broker.url, broker.rss, paths(conversation))
      out.errors += result.errors
      out.figures.push(
        { metric: `RSS growth, ${CLIENTS} non-reading ${name}`, value: result.growthMB, unit: 'MB', target: { op: '<', value: 100 } },
        { metric: `/health p99 during ${name}`, value: result.health.p99, unit: 'ms', target: { op: '<=', value: 50 } },
      )
      out.notes.push(`${name}: broker RSS ${startMB.toFixed(0)} MB before the clients; answers: ${result.answered}`)
      // The broker still answers honestly afterwards: the newest message is there, whole.
      const check = await get(`${broker.url}/conversations/${conversation}/messages?limit=1`)
      if (check.status !== 200 || check.body.messages?.[0]?.content !== content) out.lost++
    } finally {
      await broker.stop()
    }
  }
  return out
}
