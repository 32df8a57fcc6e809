// Background follower: keeps an SSE stream of the partner's messages open, reconnecting with backoff.
import { MessageView } from './broker-client.ts'
import { brokerForgot, type Partner } from './partner.ts'
import { readSse } from './sse.ts'

export type Follower = { stop(): Promise<void>; readonly connected: boolean }

export type FollowerOptions = {
  /** Called for each message the stream delivers, in seq order, at most once per seq while this follower runs. */
  onMessage: (message: MessageView) => void
  minBackoffMs?: number
  maxBackoffMs?: number
  /** What this process is to the broker (asked before each connection): its session id, and whether it can push. */
  session?: () => Promise<{ kind: 'push' | 'connected'; id: string }>
}

/** Follows `/listen/:id/stream` from the partner's cursor; the stream acknowledges nothing, `listen` stays the reader of record. */
export function startFollower(partner: Partner, options: FollowerOptions): Follower {
  const minBackoff = options.minBackoffMs ?? 200
  const maxBackoff = options.maxBackoffMs ?? 3000
  const controller = new AbortController()
  let connected = false
  let lastSeen: number | undefined
  let epoch = partner.epoch
  let backoff = minBackoff
  let wake: (() => void) | undefined

  const pause = () =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, backoff)
      wake = () => {
        clearTimeout(timer)
        resolve()
      }
      backoff = Math.min(backoff * 2, maxBackoff)
    })

  async function followOnce(): Promise<void> {
    const registered = await partner.ensureRegistered()
    if (!registered.ok) return pause()
    // The partner's position was reset (the broker's log was replaced): what we saw belongs to the old log.
    if (epoch !== partner.epoch) {
      epoch = partner.epoch
      lastSeen = undefined
    }
    const from = lastSeen ?? partner.position.cursor
    const session = await options.session?.()
    if (controller.signal.aborted) return
    const opened = await partner.client.stream(partner.id, from, controller.signal, session)
    if (!opened.ok) {
      const { error } = opened
      if (error.kind === 'rejected' && error.status === 409) {
        // Past the end of the log. Only the partner's own cursor being past it is news; our lastSeen is merely stale.
        if (lastSeen === undefined) {
          // Another log at this address has a cursor of its own; only the same log being shorter is a reset.
          const switched = await partner.identifyBroker()
          if (!(switched.ok && switched.value)) partner.resetPosition(`The broker's log ends before your cursor #${from} (its database was probably reset).`)
        }
        lastSeen = undefined
        return
      }
      if (brokerForgot(error, partner.id)) partner.forgetRegistration()
      if (!controller.signal.aborted) console.error(`duo partner: message stream unavailable (${error.message}); retrying`)
      return pause()
    }
    connected = true
    backoff = minBackoff
    try {
      for await (const event of readSse(opened.value.body ?? new ReadableStream())) {
        if (event.event !== 'message') continue
        const parsed = MessageView.safeParse(JSON.parse(event.data))
        if (!parsed.success) {
          console.error(`duo partner: ignoring a malformed message event: ${event.data.slice(0, 200)}`)
          continue
        }
        if (epoch !== partner.epoch) break
        if (lastSeen !== undefined && parsed.data.seq <= lastSeen) continue
        lastSeen = parsed.data.seq
        options.onMessage(parsed.data)
      }
    } catch (error) {
      if (!controller.signal.aborted) console.error(`duo partner: message stream broke: ${(error as Error).message}`)
    } finally {
      connected = false
    }
    if (controller.signal.aborted || epoch !== partner.epoch) return
    // The broker closed the stream: most likely it stopped. Register again once it is back, to be online there.
    partner.forgetRegistration()
    return pause()
  }

  const loop = (async () => {
    while (!controller.signal.aborted) {
      try {
        await followOnce()
      } catch (error) {
        console.error(`duo partner: follower error: ${(error as Error).message}`)
        await pause()
      }
    }
  })()

  return {
    get connected() {
      return connected
    },
    async stop() {
      controller.abort()
      wake?.()
      // A registration attempt in flight is not abortable; it cannot write anything that matters any more.
      await Promise.race([loop, Bun.sleep(250)])
    },
  }
}
