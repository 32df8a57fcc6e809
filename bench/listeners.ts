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

/** A cursor long-poll loop (`GET /listen/:id?after=N&wait=S`) until `stop` aborts; errors are counted. */
export function longPoll(base: string, partnerId: string, after: number, receipts: Receipts, stop: AbortSignal) {
  const state = { errors: 0, cursor: after, done: Promise.resolve() }
  state.done = (async () => {
    while (!stop.aborted) {
      try {
        const reply = await get<{ messages: Array<{ seq: number }>; cursor: number }>(
          `${base}/listen/${partnerId}?after=${state.cursor}&wait=30`,
          {},
          stop,
        )
        if (reply.status !== 200) {
          state.errors++
          await Bun.sleep(10)
          continue
        }
        for (const m of reply.body.messages) receipts.take(m.seq)
        state.cursor = reply.body.cursor
      } catch {
        if (!stop.aborted) state.errors++
      }
    }
  })()
  return state
}

/**
 * The original partner's listen loop (`GET /listen/:id?timeout=2`, no cursor, `Content-Type: application/json`),
 * asking again as soon as it is answered, until `stop` aborts; errors are counted.
 */
export function seedListen(base: string, partnerId: string, receipts: Receipts, stop: AbortSignal) {
  const state = { errors: 0, done: Promise.resolve() }
  state.done = (async () => {
    while (!stop.aborted) {
      try {
        const reply = await get<{ hasMessages: boolean; messages: Array<{ seq: number }> }>(
          `${base}/listen/${partnerId}?timeout=2`,
          { 'content-type': 'application/json' },
          stop,
        )
        if (reply.status !== 200) {
          state.errors++
          await Bun.sleep(10)
          continue
        }
        for (const m of reply.body.messages) receipts.take(m.seq)
      } catch {
        if (!stop.aborted) state.errors++
      }
    }
  })()
  return state
}
