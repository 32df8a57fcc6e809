// Big answers paced by the socket: pages cut by bytes, JSON streamed in chunks the client pulls, one budget for all.
import type { Rejection } from '../events/decide.ts'
import { refusalBody, statusOfRejection } from './rejections.ts'

const encoder = new TextEncoder()

/** Bytes handed to a pull at once: the most a client that stops reading keeps queued in the broker. */
export const CHUNK_BYTES = 64 * 1024
/** Answers of at most this many items, and at most CHUNK_BYTES, are sent whole (see pacedJson). */
const SMALL_ANSWER_ITEMS = 16

/**
 * The bytes of answers enqueued for clients and not yet taken by their sockets, across every client.
 * A chunk is held from the pull that enqueued it until the next pull (Bun pulls again only once the
 * previous chunk was written) or the end of the answer. While the total is at or above `limitBytes`,
 * new big answers are refused with 503 `broker_busy` (see `refusal`); those already running go on.
 */
export function createSendBudget(limitBytes: number) {
  let used = 0
  return {
    limitBytes,
    used: () => used,
    hold(bytes: number): void {
      used += bytes
    },
    release(bytes: number): void {
      used -= bytes
    },
    /** The 503 for a new big answer while the budget is spent, or null. */
    refusal(): Response | null {
      if (used < limitBytes) return null
      const busy: Rejection = { reason: 'broker_busy', pendingBytes: used }
      return Response.json(refusalBody(busy), { status: statusOfRejection(busy), headers: { 'retry-after': '1' } })
    },
  }
}
export type SendBudget = ReturnType<typeof createSendBudget>

export type PacedJson = {
  /** JSON text up to and including the array's opening bracket, e.g. `{"cursor":5,"messages":[`. */
  head: string
  /** The array's items, rendered one by one as the socket asks for more (each a JSON value). */
  count: number
  render: (index: number) => string
  /** JSON text after the array, e.g. `]}`. */
  tail: string
  /** Runs once the last byte was handed to the socket of a client still connected. */
  onWritten?: () => void
}

/**
 * A JSON answer whose array is rendered in chunks of about CHUNK_BYTES, each only when Bun pulls it: a
 * client that stops reading costs the broker one chunk, never the whole answer. Items are rendered
 * lazily (read from the store by seq, say), so an answer holds only what its socket is about to take.
 */
export function pacedJson(body: PacedJson, budget: SendBudget, signal: AbortSignal): Response {
  // Most answers are one message or a few: rendered at once and sent as one body, they skip a stream's
  // pulls and chunked framing (a fan-out answers 20 listeners per message). Such a body is at most one
  // chunk, what a stalled stream would hold anyway; an answer that must know it was written keeps the stream.
  if (body.onWritten === undefined && body.count <= SMALL_ANSWER_ITEMS) {
    let text: string | null = body.head
    try {
      for (let i = 0; i < body.count && text.length <= CHUNK_BYTES; i++) text += (i > 0 ? ',' : '') + body.render(i)
    } catch {
      // The store went away (the broker stopping): the stream below meets the same error and cuts the answer.
      text = null
    }
    if (text !== null && text.length <= CHUNK_BYTES) return new Response(text + body.tail, { headers: { 'content-type': 'application/json' } })
  }
  let next = -1
  let held = 0
  let done = false
  const settle = () => {
    budget.release(held)
    held = 0
  }
  const stream = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        settle()
        if (done) {
          if (!signal.aborted) body.onWritten?.()
          controller.close()
          return
        }
        let text = next < 0 ? body.head : ''
        if (next < 0) next = 0
        try {
          while (next < body.count && text.length < CHUNK_BYTES) text += (next > 0 ? ',' : '') + body.render(next++)
        } catch (error) {
          // The store went away mid-answer (the broker stopping): cut the answer rather than send half of it as whole.
          controller.error(error)
          return
        }
        if (next >= body.count) {
          text += body.tail
          done = true
        }
        const bytes = encoder.encode(text)
        held = bytes.length
        budget.hold(held)
        controller.enqueue(bytes)
      },
      cancel: settle,
    },
    { highWaterMark: 0 },
  )
  signal.addEventListener('abort', settle, { once: true })
  return new Response(stream, { headers: { 'content-type': 'application/json' } })
}
