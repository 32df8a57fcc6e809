// Presence across brokers: each broker publishes who listens and who was active through it, and reads the others'.
import type { SQL } from 'bun'

export type SharedPresenceOptions = {
  sql: SQL
  /** This broker process, unique among the brokers sharing the database. */
  brokerId: string
  /** Partners listening through this broker right now. */
  listeningHere: () => string[]
  /** When partners last made a request through this broker (ms); only entries newer than `activeWithinMs` are published. */
  activeHere?: () => ReadonlyMap<string, number>
  activeWithinMs?: number
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
export function shareListeners({
  sql,
  brokerId,
  listeningHere,
  activeHere = () => new Map(),
  activeWithinMs = 300_000,
  intervalMs = 1000,
  staleMs = 5000,
}: SharedPresenceOptions) {
  let elsewhere: ReadonlySet<string> = new Set()
  let activeElsewhere: ReadonlyMap<string, number> = new Map()
  let inFlight: Promise<void> | null = null
  let stopped = false
  let failing = false
  let soon: ReturnType<typeof setTimeout> | null = null

  function tick(): Promise<void> {
    if (inFlight || stopped) return inFlight ?? Promise.resolve()
    const ids = listeningHere().sort()
    const since = Date.now() - activeWithinMs
    const active: Record<string, number> = {}
    for (const [id, at] of activeHere()) if (at >= since) active[id] = at
    inFlight = (async () => {
      try {
        const rows = await sql`WITH me AS (
            INSERT INTO duo_brokers (broker_id, seen_at, listening, active)
            VALUES (${brokerId}, now(), ${ids}::text[], ${active}::jsonb)
            ON CONFLICT (broker_id) DO UPDATE SET seen_at = now(), listening = excluded.listening, active = excluded.active
            RETURNING 1)
          SELECT listening, active::text AS active FROM duo_brokers, (SELECT count(*) FROM me) AS written
          WHERE broker_id <> ${brokerId} AND seen_at > now() - make_interval(secs => ${staleMs / 1000})`
        elsewhere = new Set(rows.flatMap((row: { listening: string[] }) => row.listening))
        const latest = new Map<string, number>()
        for (const row of rows as Array<{ active: string }>)
          for (const [id, at] of Object.entries(JSON.parse(row.active) as Record<string, number>))
            if (at > (latest.get(id) ?? 0)) latest.set(id, at)
        activeElsewhere = latest
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
    /** When the partner last made a request through another live broker (ms), as of the last tick. */
    activeElsewhere: (partnerId: string): number | undefined => activeElsewhere.get(partnerId),
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
