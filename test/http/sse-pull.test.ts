// The pull-driven SSE response against a fake source: when a pull reads the store, and when it can skip the read.
import { describe, expect, test } from 'bun:test'
import type { Envelope } from '../../src/events/schema.ts'
import type { Wake } from '../../src/http/hub.ts'
import { type Framed, sseResponse } from '../../src/http/sse.ts'

const encoder = new TextEncoder()
const decoder = new TextDecoder()
const frameOf = (seq: number): Framed => ({ seq, bytes: encoder.encode(`id: ${seq}\n\n`) })
const envelope = (seq: number) => ({ seq }) as Envelope

/** A store of frames and a hub of one waiter, counting reads; `head` is the log's last committed seq. */
function fakeSource(withHead = true) {
  const state = {
    stored: [] as Framed[],
    head: 0,
    reads: 0,
    waiting: null as ((wake: Wake | null) => void) | null,
  }
  const source = {
    read(after: number, limit: number) {
      state.reads++
      return { frames: state.stored.filter((f) => f.seq > after).slice(0, limit), truncated: false }
    },
    wait: (signal: AbortSignal) =>
      new Promise<Wake | null>((resolve) => {
        state.waiting = resolve
        signal.addEventListener('abort', () => resolve(null), { once: true })
      }),
    framesOf: (wake: Wake) => wake.events.map((e) => frameOf(e.seq)),
    ...(withHead ? { head: () => state.head } : {}),
  }
  /** Commits `seqs` (visible to this stream) and wakes the waiter with them, as the hub would. */
  const commit = (...seqs: number[]) => {
    state.stored.push(...seqs.map(frameOf))
    state.head = Math.max(state.head, ...seqs)
    const wake = state.waiting
    state.waiting = null
    wake?.({ events: seqs.map(envelope), lastSeq: state.head })
  }
  return { state, source, commit }
}

async function open(source: Parameters<typeof sseResponse>[2]) {
  const controller = new AbortController()
  const reader = sseResponse(0, controller.signal, source, 60_000, () => {}).body!.getReader()
  /** The next `n` chunks (one frame or comment each), joined. */
  const next = async (n = 1) => {
    let text = ''
    for (let i = 0; i < n; i++) text += decoder.decode((await reader.read()).value)
    return text
  }
  expect(await next()).toBe(': connected\n\n')
  return { next, close: () => controller.abort() }
}

describe('an SSE pull', () => {
  test('after a wake-up, parks again without reading the store while the log has not moved', async () => {
    const { state, source, commit } = fakeSource()
    const stream = await open(source)
    const first = stream.next()
    await Bun.sleep(0)
    expect(state.reads).toBe(1)
    commit(1)
    expect(await first).toBe('id: 1\n\n')
    const second = stream.next(2)
    await Bun.sleep(0)
    expect(state.reads).toBe(1)
    expect(state.waiting).not.toBeNull()
    commit(2, 3)
    expect(await second).toBe('id: 2\n\nid: 3\n\n')
    stream.close()
  })

  test('reads again once something was committed that did not wake it, and misses nothing', async () => {
    const { state, source, commit } = fakeSource()
    const stream = await open(source)
    const first = stream.next()
    await Bun.sleep(0)
    commit(1)
    await first
    // A commit lands between the wake-up and the next pull: the pull must read it from the store.
    state.stored.push(frameOf(2))
    state.head = 2
    expect(await stream.next()).toBe('id: 2\n\n')
    expect(state.reads).toBe(2)
    stream.close()
  })

  test('after a keep-alive, reads the store once even if the head did not move (a missed wake-up is recovered)', async () => {
    const { state, source } = fakeSource()
    const stream = await open(source)
    const first = stream.next()
    await Bun.sleep(0)
    expect(state.reads).toBe(1)
    state.waiting!(null)
    expect(await first).toBe(': keep-alive\n\n')
    const second = stream.next()
    await Bun.sleep(0)
    expect(state.reads).toBe(2)
    state.waiting!(null)
    expect(await second).toBe(': keep-alive\n\n')
    const third = stream.next()
    await Bun.sleep(0)
    expect(state.reads).toBe(3)
    stream.close()
    await third.catch(() => {})
  })

  test('a catch-up page that came back full is followed by another read', async () => {
    const { state, source } = fakeSource()
    state.stored = Array.from({ length: 300 }, (_, i) => frameOf(i + 1))
    state.head = 300
    const stream = await open(source)
    expect(await stream.next(256)).toEndWith('id: 256\n\n')
    expect(state.reads).toBe(1)
    expect(await stream.next(44)).toEndWith('id: 300\n\n')
    expect(state.reads).toBe(2)
    stream.close()
  })

  test('without a head, every pull reads', async () => {
    const { state, source, commit } = fakeSource(false)
    const stream = await open(source)
    const first = stream.next()
    await Bun.sleep(0)
    commit(1)
    await first
    const second = stream.next()
    await Bun.sleep(0)
    expect(state.reads).toBe(2)
    stream.close()
    await second.catch(() => {})
  })
})
