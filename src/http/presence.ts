// Who counts as online, kept up to date as partners act, so /health counts them without reading every partner.
import type { Envelope } from '../events/schema.ts'

export type PresenceDeps = {
  now: () => number
  timeoutMs: number
  /** Whether a long-poll or stream of the partner is open (the hub's holds): it stays online while one is. */
  isListening: (partnerId: string) => boolean
  /** Every partner's stored status and last activity, read once at start. */
  initial: Iterable<{ id: string; status: 'online' | 'offline'; last_seen: string }>
  /** Where requests' activity is kept (shared with the brokers of a PostgreSQL log, see pg/presence.ts). */
  activity?: Map<string, number>
  /** Partners ever registered (constant time), and how many of them were retired when the broker started. */
  registered: () => number
  retiredAtStart: number
}

/**
 * A partner is online when its status is online (registered, not unregistered) and it listens or acted
 * within `timeoutMs`. `fresh` holds the online partners in order of their last activity (a touch moves
 * one to the end), so counting expires only the stale ones at its front: amortised O(1) per touch,
 * whatever the number of partners. A listener that outlives the timeout is kept at the end instead.
 */
export function createPresence({ now, timeoutMs, isListening, initial, activity = new Map(), registered, retiredAtStart }: PresenceDeps) {
  let retired = retiredAtStart
  const fresh = new Map<string, number>()
  const offline = new Set<string>()

  const rows = [...initial].map((row) => ({ ...row, at: Date.parse(row.last_seen) })).sort((a, b) => a.at - b.at)
  for (const row of rows) {
    if (row.status === 'offline') offline.add(row.id)
    else fresh.set(row.id, row.at)
  }

  /** A request acting as the partner (`activity`), or an event it caused (`fromLog`: not a request here). */
  function touch(partnerId: string, at = now(), fromLog = false): void {
    if (!fromLog && (activity.get(partnerId) ?? 0) < at) activity.set(partnerId, at)
    if (offline.has(partnerId)) return
    const previous = fresh.get(partnerId) ?? 0
    fresh.delete(partnerId)
    // An event replicated a little late may carry an older time than the last entry: the walk in onlineCount
    // then expires it up to that lag late, never early.
    fresh.set(partnerId, Math.max(at, previous))
  }

  return {
    touch,
    /**
     * Follows the log: registering makes a partner online, unregistering or retiring offline, and whatever
     * sets a partner's stored last_seen (its messages, reads, settings) is activity, through any broker.
     */
    apply(events: Envelope[]): void {
      for (const event of events) {
        const at = Date.parse(event.at)
        switch (event.type) {
          case 'PartnerRegistered':
            offline.delete(event.data.partnerId)
            touch(event.data.partnerId, at, true)
            break
          case 'PartnerRetired':
            retired++
            offline.add(event.data.partnerId)
            fresh.delete(event.data.partnerId)
            break
          case 'PartnerWentOffline':
            offline.add(event.data.partnerId)
            fresh.delete(event.data.partnerId)
            break
          case 'MessageSent':
            touch(event.data.fromId, at, true)
            break
          case 'ConversationCreated':
            touch(event.data.createdBy, at, true)
            break
          case 'ParticipantLeft':
          case 'ReadPositionAdvanced':
          case 'PartnerStatusChanged':
          case 'NotificationsSwitched':
            touch(event.data.partnerId, at, true)
            break
        }
      }
    },
    lastActive: (partnerId: string): number | undefined => activity.get(partnerId),
    /** Partners in service (retired ones left out), without reading them: a committed retirement is final. */
    partnerCount: (): number => registered() - retired,
    onlineCount(): number {
      const cutoff = now() - timeoutMs
      // Entries put back at the end carry `now`, so the walk stops at them at the latest.
      for (const [id, at] of fresh) {
        if (at >= cutoff) break
        fresh.delete(id)
        // Still listening: online for as long as it does, so it goes back to the end.
        if (isListening(id)) fresh.set(id, now())
      }
      return fresh.size
    },
  }
}
export type Presence = ReturnType<typeof createPresence>
