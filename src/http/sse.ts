// Server-Sent Events over a pull-driven stream: the log is read only as fast as the client drains it.
import type { Envelope } from '../events/schema.ts'
import { messageOf } from '../projections/messages.ts'
import type { Wake } from './hub.ts'
import type { SendBudget } from './paced.ts'

const encoder = new TextEncoder()
export const comment = (text: string): Uint8Array => encoder.encode(`: ${text}\n\n`)

/** One SSE frame. `data` is one line of JSON, so no further escaping is needed. */
export const frame = (id: number, event: string, data: string): string => `id: ${id}\nevent: ${event}\ndata: ${data}\n\n`

// Frames are built once per event and shared by every listener it fans out to.
const eventFrames = new WeakMap<Envelope, Uint8Array>()
const messageFrames = new WeakMap<Envelope, Uint8Array>()

export function eventFrame(event: Envelope): Uint8Array {
  let bytes = eventFrames.get(event)
  if (!bytes) eventFrames.set(event, (bytes = encoder.encode(frame(event.seq, event.type, JSON.stringify(event)))))
  return bytes
}

export function messageFrame(event: Envelope): Uint8Array {
  let bytes = messageFrames.get(event)
  if (!bytes) {
    const message = messageOf(event as Extract<Envelope, { type: 'MessageSent' }>)
    messageFrames.set(event, (bytes = encoder.encode(frame(event.seq, 'message', JSON.stringify(message)))))
  }
  return bytes
}

export type Framed = { seq: number; bytes: Uint8Array }

/** A catch-up page: frames in seq order, and whether the byte cap cut it (more may follow even if short). */
export type FramedPage = { frames: Framed[]; truncated: boolean }

export type SseSource = {
  /** Catch-up: frames after `after` from the store, at most `limit` and about `maxBytes` (at least one). */
  read(after: number, limit: number, maxBytes: number): FramedPage
  /** Parks until the next commit this stream can see (registering synchronously), or null on timeout/abort. */
  wait(signal: AbortSignal, timeoutMs: number): Promise<Wake | null>
  /** Frames of the woken events this stream shows. */
  framesOf(wake: Wake): Framed[]
  /** The log's last committed seq: when it has not moved since a pull found nothing more, the next pull skips the read. */
  head?: () => number
}

const PAGE = 256
/** Bytes of catch-up (or of one wake-up) enqueued per pull: what a stream whose client stopped reading holds. */
export const SSE_PULL_BYTES = 256 * 1024

/** The frames of `frames` that fit in `maxBytes` (at least one), in order. */
function prefixByBytes(frames: Framed[], maxBytes: number): Framed[] {
  let total = 0
  for (let i = 0; i < frames.length; i++) {
    total += frames[i]!.bytes.length
    if (total > maxBytes && i > 0) return frames.slice(0, i)
  }
  return frames
}

/**
 * A `text/event-stream` response that replays from `after` and then stays live. Each pull delivers
 * one page of catch-up or one wake-up, at most about SSE_PULL_BYTES; when the client stops reading,
 * Bun stops pulling, so a slow consumer costs one pull's bytes (counted in `budget`), never a queue. Replay and live cannot leave
 * a gap: a pull reads the store and registers its waiter in the same synchronous step.
 */
export function sseResponse(
  after: number,
  signal: AbortSignal,
  source: SseSource,
  keepAliveMs: number,
  onClose: () => void,
  budget?: SendBudget,
): Response {
  let cursor = after
  // Bytes enqueued by the last pull, counted in the send budget until the next pull shows they were taken.
  let held = 0
  const settle = () => {
    budget?.release(held)
    held = 0
  }
  const send = (controller: ReadableStreamDefaultController<Uint8Array>, frames: Framed[]) => {
    for (const f of frames) {
      controller.enqueue(f.bytes)
      held += f.bytes.length
    }
    budget?.hold(held)
    cursor = frames[frames.length - 1]!.seq
    lastWrite = Date.now()
  }
  // The head up to which this stream has seen everything it can see: a read that came back short, or a wake-up
  // (the hub hands a waiter every event of the batch it can see). A thousand streams woken by one commit then
  // park again without a thousand empty reads.
  let seenUpTo = -1
  // Keep-alives are timed from the last byte sent, so a wake with nothing to show cannot stretch the silence.
  let lastWrite = Date.now()
  let closed = false
  const close = () => {
    settle()
    if (closed) return
    closed = true
    onClose()
  }
  const stream = new ReadableStream<Uint8Array>(
    {
      start(controller) {
        controller.enqueue(comment('connected'))
      },
      async pull(controller) {
        settle()
        while (!signal.aborted) {
          const head = source.head?.()
          if (head === undefined || head !== seenUpTo) {
            const page = source.read(cursor, PAGE, SSE_PULL_BYTES)
            seenUpTo = head !== undefined && page.frames.length < PAGE && !page.truncated ? head : -1
            if (page.frames.length > 0) {
              send(controller, page.frames)
              return
            }
          }
          const quiet = keepAliveMs - (Date.now() - lastWrite)
          const wake = quiet > 0 ? await source.wait(signal, quiet) : null
          if (signal.aborted) break
          if (wake === null) {
            controller.enqueue(comment('keep-alive'))
            lastWrite = Date.now()
            // Read the store again on the next pull: a missed wake-up costs at most one keep-alive interval.
            seenUpTo = -1
            return
          }
          const fresh = source.framesOf(wake).filter((f) => f.seq > cursor)
          const fits = prefixByBytes(fresh, SSE_PULL_BYTES)
          // A wake-up too big for one pull sends its first part; the next pull reads the rest from the store.
          if (source.head) seenUpTo = fits.length === fresh.length ? wake.lastSeq : -1
          if (fits.length > 0) {
            send(controller, fits)
            return
          }
        }
        close()
        try {
          controller.close()
        } catch {
          // already closed by the runtime after the client went away
        }
      },
      cancel: close,
    },
    { highWaterMark: 0 },
  )
  signal.addEventListener('abort', close, { once: true })
  return new Response(stream, {
    headers: {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    },
  })
}

/** A frame for a message read back from the store (catch-up), same bytes as `messageFrame`. */
export const storedMessageFrame = (message: { seq: number }): Framed => ({
  seq: message.seq,
  bytes: encoder.encode(frame(message.seq, 'message', JSON.stringify(message))),
})
