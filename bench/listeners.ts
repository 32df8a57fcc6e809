// Listeners the scenarios drive: cursor long-poll loops over fetch, and receipt bookkeeping shared with SSE.
import { get } from './client.ts'

/** What one listener received: each seq once, with the time it arrived. Repeats are duplicates. */
export class Receipts {
  readonly at = new Map<number, number>()
  duplicated = 0
  last = 0
  constructor(private readonly onNew: (seq: number) => void = () => {}) {}
  take(seq: number): void {
    if (this.at.has(seq) || seq <= this.last) {
      this.duplicated++
      return
    }
    this.at.set(seq, performance.now())
    this.last = seq
    this.onNew(seq)
  }
}

/** Resolves once `hit` was called `expected` times, or with false after `ms`. */
export class Countdown {
  private left = 0
  private resolve: ((done: boolean) => void) | null = null
  arm(expected: number): void {
    this.left = expected
  }
  hit(): void {
    if (--this.left === 0 && this.resolve) this.resolve(true)
  }
  wait(ms: number): Promise<boolean> {
    if (this.left <= 0) return Promise.resolve(true)
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), ms)
      this.resolve = (done) => {
        clearTimeout(timer)
        this.resolve = null
        resolve(done)
      }
    })
  }
}

export type Listening = { errors: number; done: Promise<void> }
export type Listen = (base: string, partnerId: string, after: number, receipts: Receipts, stop: AbortSignal) => Listening

/** Asks `ask()` again as soon as it is answered until `stop` aborts; each answer's messages go to `receipts`. */
function listenLoop(
  receipts: Receipts,
  stop: AbortSignal,
  ask: () => { url: string; headers?: Record<string, string> },
  answered: (body: { messages: Array<{ seq: number }>; cursor?: number }) => void = () => {},
): Listening {
  const state: Listening = { errors: 0, done: Promise.resolve() }
  state.done = (async () => {
    while (!stop.aborted) {
      try {
        const { url, headers } = ask()
        const reply = await get<{ messages: Array<{ seq: number }>; cursor?: number }>(url, headers, stop)
        if (reply.status !== 200) {
          state.errors++
          await Bun.sleep(10)
          continue
        }
        for (const m of reply.body.messages) receipts.take(m.seq)
        answered(reply.body)
      } catch {
        if (!stop.aborted) state.errors++
      }
    }
  })()
  return state
}

/** A cursor long-poll loop (`GET /listen/:id?after=N&wait=S`) until `stop` aborts; errors are counted. */
export const longPoll: Listen = (base, partnerId, after, receipts, stop) => {
  let cursor = after
  return listenLoop(
    receipts,
    stop,
    () => ({ url: `${base}/listen/${partnerId}?after=${cursor}&wait=30` }),
    (body) => (cursor = body.cursor ?? cursor),
  )
}

/**
 * The original partner's listen loop (`GET /listen/:id?timeout=2`, no cursor, `Content-Type: application/json`),
 * asking again as soon as it is answered, until `stop` aborts; errors are counted.
 */
export const seedListen: Listen = (base, partnerId, _after, receipts, stop) =>
  listenLoop(receipts, stop, () => ({ url: `${base}/listen/${partnerId}?timeout=2`, headers: { 'content-type': 'application/json' } }))
