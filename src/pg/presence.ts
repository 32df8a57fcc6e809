// Presence across brokers: each broker publishes who listens through it and reads who listens elsewhere.
import type { SQL } from 'bun'

export type SharedPresenceOptions = {
  sql: SQL
  /** This broker process, unique among the brokers sharing the database. */
  brokerId: string
  /** Partners listening through this broker right now. */
  listeningHere: () => string[]
  intervalMs?: number
  /** A broker that has not published for this long (killed, cut off) no longer counts. */
  staleMs?: number
}

/**
 * Every `intervalMs` (and soon after a change here) one statement records this broker's listeners with a
 * heartbeat and reads those of the brokers heard from within `staleMs`. Presence seen through one broker
 * is therefore at most about `intervalMs` behind a listener that came or went through another, and a
 * killed broker's listeners stop counting after `staleMs`.
 */
export function shareListeners({ sql, brokerId, listeningHere, intervalMs = 1000, staleMs = 5000 }: SharedPresenceOptions) {
  let elsewhere: ReadonlySet<string> = new Set()
  let inFlight: Promise<void> | null = null
  let stopped = false
  let failing = false
  let soon: ReturnType<typeof setTimeout> | null = null

  function tick(): Promise<void> {
    if (inFlight || stopped) return inFlight ?? Promise.resolve()
    const ids = listeningHere().sort()
    inFlight = (async () => {
      try {
        const rows = await sql`WITH me AS (
            INSERT INTO duo_brokers (broker_id, seen_at, listening) VALUES (${brokerId}, now(), ${ids}::text[])
            ON CONFLICT (broker_id) DO UPDATE SET seen_at = now(), listening = excluded.listening RETURNING 1)
          SELECT listening FROM duo_brokers, (SELECT count(*) FROM me) AS written
          WHERE broker_id <> ${brokerId} AND seen_at > now() - make_interval(secs => ${staleMs / 1000})`
        elsewhere = new Set(rows.flatMap((row: { listening: string[] }) => row.listening))
        if (failing) console.error('duo broker: shared presence is back')
        failing = false
      } catch (error) {
        if (!failing) console.error(`duo broker: shared presence not updated: ${(error as Error).message}`)
        failing = true
      } finally {
        inFlight = null
      }
    })()
    return inFlight
  }

  const timer = setInterval(() => void tick(), intervalMs)
  return {
    /** Partners listening through the other live brokers (as of the last tick). */
    elsewhere: (): ReadonlySet<string> => elsewhere,
    /** Publishes soon: this broker's listeners changed. */
    changed(): void {
      if (soon || stopped) return
      soon = setTimeout(() => {
        soon = null
        void tick()
      }, 10)
    },
    tick,
    async stop(): Promise<void> {
      clearInterval(timer)
      if (soon) clearTimeout(soon)
      await inFlight
      stopped = true
      await sql`DELETE FROM duo_brokers WHERE broker_id = ${brokerId}`.catch(() => {})
    },
  }
}
export type SharedListeners = ReturnType<typeof shareListeners>
