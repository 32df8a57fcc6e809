// The seed's legacy listen (no `after`) hands out each message once per partner, yet again when its answer was cut.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { rmSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import { clientOf, LOAD_ENV, type Message, tempDir } from './helpers.ts'

const ROOT = join(import.meta.dir, '..', '..')

type Broker = ReturnType<typeof clientOf> & { url: string; port: number; stop(): Promise<void> }

/**
 * The real broker process (durability `full`): the race this guards against needs the client in another
 * process, as the original partner is, answering and asking again while the broker's commit is queued.
 */
async function spawnBroker(): Promise<Broker> {
  const dir = tempDir('duo-legacy-')
  const proc = Bun.spawn(['bun', 'src/broker.ts'], {
    cwd: ROOT,
    // Pages of up to 64 MiB: the cut-answer test needs one answer larger than loopback's socket buffers.
    env: { ...process.env, BROKER_PORT: '0', BROKER_HOST: '127.0.0.1', DUO_DB: join(dir, 'duo.db'), DUO_AUTH: 'open', DUO_SYNC: 'full', DUO_PAGE_KB: '65536', ...LOAD_ENV },
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'inherit',
  })
  let out = ''
  const decoder = new TextDecoder()
  const url = await (async () => {
    for await (const chunk of proc.stdout) {
      out += decoder.decode(chunk, { stream: true })
      const match = /listening on (http:\/\/\S+)/.exec(out)
      if (match) return match[1]!
    }
    throw new Error(`the broker did not start: ${out}`)
  })()
  return {
    ...clientOf(url),
    url,
    port: Number(new URL(url).port),
    async stop() {
      proc.kill('SIGTERM')
      await proc.exited
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** Resolves when `ready()` holds after some `notify()`, or fails after `ms` with `what`. */
function condition() {
  const waiters = new Set<() => void>()
  return {
    notify: () => {
      for (const w of waiters) w()
    },
    async until(ready: () => boolean, ms: number, what: () => string): Promise<void> {
      if (ready()) return
      await new Promise<void>((resolve, reject) => {
        const check = () => {
          if (!ready()) return
          cleanup()
          resolve()
        }
        const timer = setTimeout(() => {
          cleanup()
          reject(new Error(`not within ${ms} ms: ${what()}`))
        }, ms)
        const cleanup = () => {
          clearTimeout(timer)
          waiters.delete(check)
        }
        waiters.add(check)
      })
    },
  }
}

/**
 * The original partner's listen loop: `GET /listen/:id?timeout=2` with `Content-Type: application/json`,
 * read with `response.json()`, asked again as soon as it is answered.
 */
function seedListenLoop(broker: Broker, id: string, stop: AbortSignal, onMessages: (messages: Message[]) => void) {
  return (async () => {
    while (!stop.aborted) {
      try {
        const response = await fetch(`${broker.url}/listen/${id}?timeout=2`, {
          headers: { 'Content-Type': 'application/json' },
          signal: stop,
        })
        const body = (await response.json()) as { hasMessages: boolean; messages: Message[] }
        if (body.hasMessages) onMessages(body.messages)
      } catch (error) {
        if (!stop.aborted) throw error
      }
    }
  })()
}

describe('legacy listen, exactly once per partner', () => {
  let broker: Broker
  beforeAll(async () => {
    broker = await spawnBroker()
  })
  afterAll(() => broker.stop())

  test('fan-out to 20 seed partners re-listening at once: 40 rounds, every message to each exactly once', async () => {
    const members = Array.from({ length: 20 }, (_, i) => `fan${i}`)
    await broker.register('speaker', ...members)
    const group = await broker.post('/conversations', { creatorId: 'speaker', name: 'fan-out', participants: members })
    expect(group.status).toBe(200)
    const groupId = group.body.conversation.id as string

    const received = new Map(members.map((id) => [id, [] as number[]]))
    const arrived = condition()
    const stop = new AbortController()
    const loops = members.map((id) =>
      seedListenLoop(broker, id, stop.signal, (messages) => {
        received.get(id)!.push(...messages.map((m) => m.seq))
        arrived.notify()
      }),
    )
    const sent: number[] = []
    try {
      for (let round = 0; round < 40; round++) {
        const reply = await broker.talk('speaker', { conversationId: groupId }, `round ${round}`)
        sent.push(reply.messageId)
        // The next message goes out as soon as every listener has this one: they are re-listening right then.
        await arrived.until(
          () => members.every((id) => received.get(id)!.includes(reply.messageId)),
          10_000,
          () => `round ${round}: ${members.filter((id) => !received.get(id)!.includes(reply.messageId)).join(', ')} still waiting`,
        )
      }
    } finally {
      stop.abort()
      await Promise.all(loops)
    }
    const duplicates = [...received.values()].reduce((n, seqs) => n + seqs.length - new Set(seqs).size, 0)
    expect(duplicates).toBe(0)
    for (const id of members) expect(received.get(id)).toEqual(sent)
  })

  test('back and forth with immediate re-listen: 100 replies, none seen twice', async () => {
    await broker.register('ping', 'pong')
    const got = { ping: [] as number[], pong: [] as number[] }
    const arrived = condition()
    const stop = new AbortController()
    const loops = (['ping', 'pong'] as const).map((id) =>
      seedListenLoop(broker, id, stop.signal, (messages) => {
        got[id].push(...messages.map((m) => m.seq))
        arrived.notify()
      }),
    )
    try {
      for (let i = 0; i < 100; i++) {
        const [from, to] = i % 2 === 0 ? (['ping', 'pong'] as const) : (['pong', 'ping'] as const)
        const reply = await broker.talk(from, { to }, `turn ${i}`)
        await arrived.until(() => got[to].includes(reply.messageId), 10_000, () => `turn ${i}: ${to} never got ${reply.messageId}`)
      }
    } finally {
      stop.abort()
      await Promise.all(loops)
    }
    expect(got.ping.length).toBe(50)
    expect(got.pong.length).toBe(50)
    expect(new Set(got.ping).size + new Set(got.pong).size).toBe(100)
  })

  test('an answer cut before it reached the client is delivered again by the next listen', async () => {
    await broker.register('writer', 'reader')
    // More than loopback's socket buffers hold, so the broker is still writing when the client hangs up.
    const big = 'x'.repeat(60_000)
    for (let i = 0; i < 400; i++) await broker.talk('writer', { to: 'reader' }, `${i} ${big}`)

    const socket = connect(broker.port, '127.0.0.1')
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
    const firstBytes = new Promise<string>((resolve) => socket.once('data', (chunk) => resolve(chunk.toString('latin1'))))
    socket.write(`GET /listen/reader?timeout=2 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\r\n`)
    expect((await firstBytes).startsWith('HTTP/1.1 200')).toBe(true)
    socket.pause()
    socket.destroy()

    const again = await broker.get('/listen/reader?timeout=0')
    expect(again.status).toBe(200)
    expect(again.body.messages.length).toBe(400)
    expect(again.body.messages[0].content).toBe(`0 ${big}`)
    // That answer was read to its end: it is recorded as read, and nothing is handed out a third time.
    const third = await broker.get('/listen/reader?timeout=0')
    expect(third.body).toEqual({ hasMessages: false, messages: [] })
  })
})
