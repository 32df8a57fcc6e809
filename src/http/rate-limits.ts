// Rate limits: token buckets in memory, per sender and per source address. Not state: nothing here is audited.
import type { Rejection } from '../events/decide.ts'

/** Requests allowed per minute for each limit (0: no limit). A bucket holds a minute's worth: the burst. */
export type RateLimits = {
  /** Messages per sender. */
  talk: number
  /** Messages per source address, whoever the senders. */
  talkPerAddress: number
  /** Registrations of new ids per source address. */
  register: number
  /** Groups created per sender. */
  groups: number
  /** Members added to groups per sender (one per partner added). */
  members: number
}

export const RATE_LIMIT_DEFAULTS: RateLimits = { talk: 600, talkPerAddress: 6000, register: 60, groups: 30, members: 300 }
export const NO_RATE_LIMITS: RateLimits = { talk: 0, talkPerAddress: 0, register: 0, groups: 0, members: 0 }

/** What each limit is, for the refusal's sentence. */
const WHAT: Record<keyof RateLimits, (perMinute: number) => string> = {
  talk: (n) => `at most ${n} messages a minute from one partner (DUO_RATE_TALK_PER_MIN)`,
  talkPerAddress: (n) => `at most ${n} messages a minute from one address (DUO_RATE_TALK_PER_ADDRESS_PER_MIN)`,
  register: (n) => `at most ${n} new partners a minute from one address (DUO_RATE_REGISTER_PER_MIN)`,
  groups: (n) => `at most ${n} new groups a minute from one partner (DUO_RATE_GROUPS_PER_MIN)`,
  members: (n) => `at most ${n} members added a minute by one partner (DUO_RATE_MEMBERS_PER_MIN)`,
}

type Bucket = { tokens: number; at: number }

/**
 * One token bucket per key: `perMinute` tokens at most, refilled continuously at `perMinute / 60` a second.
 * At most `maxKeys` buckets are kept: when full, the buckets that have refilled (indistinguishable from
 * new ones) are dropped, then the oldest, so memory stays bounded whatever the number of senders.
 */
export function createBuckets(perMinute: number, now: () => number, maxKeys = 10_000) {
  const buckets = new Map<string, Bucket>()
  const perMs = perMinute / 60_000

  const level = (bucket: Bucket, t: number) => Math.min(perMinute, bucket.tokens + (t - bucket.at) * perMs)

  function makeRoom(t: number): void {
    for (const [key, bucket] of buckets) if (level(bucket, t) >= perMinute) buckets.delete(key)
    for (const key of buckets.keys()) {
      if (buckets.size < maxKeys) break
      buckets.delete(key)
    }
  }

  return {
    /** Takes `cost` tokens for `key`: 0 when allowed, else the whole seconds to wait before it would be. */
    take(key: string, cost = 1): number {
      const t = now()
      let bucket = buckets.get(key)
      if (!bucket) {
        if (buckets.size >= maxKeys) makeRoom(t)
        bucket = { tokens: perMinute, at: t }
        buckets.set(key, bucket)
      }
      const tokens = level(bucket, t)
      // A request bigger than the whole bucket waits for a full one, then passes alone.
      const needed = Math.min(cost, perMinute)
      if (tokens < needed) {
        bucket.tokens = tokens
        bucket.at = t
        return Math.max(1, Math.ceil((needed - tokens) / perMs / 1000))
      }
      bucket.tokens = tokens - needed
      bucket.at = t
      return 0
    },
    size: (): number => buckets.size,
  }
}

/** The address a request came from, the key of the per-address limits (behind a proxy: the proxy's). */
export const sourceAddress = (server: { requestIP(request: Request): { address: string } | null } | null, request: Request): string =>
  server?.requestIP(request)?.address ?? 'unknown'

/** The broker's limits: `check(limit, key, cost)` answers null or the `rate_limited` refusal with its retry time. */
export function createRateLimiter(limits: RateLimits, now: () => number = Date.now, maxKeys?: number) {
  const buckets = new Map<keyof RateLimits, ReturnType<typeof createBuckets>>()
  for (const name of Object.keys(limits) as Array<keyof RateLimits>)
    if (limits[name] > 0) buckets.set(name, createBuckets(limits[name], now, maxKeys))
  return {
    /** `key` may be a function: it is worked out only when the limit is on (a source address costs a lookup). */
    check(limit: keyof RateLimits, key: string | (() => string), cost = 1): Rejection | null {
      const bucket = buckets.get(limit)
      if (!bucket) return null
      const retryAfterS = bucket.take(typeof key === 'function' ? key() : key, cost)
      return retryAfterS === 0 ? null : { reason: 'rate_limited', limit: WHAT[limit](limits[limit]), retryAfterS }
    },
    enabled: (limit: keyof RateLimits): boolean => buckets.has(limit),
  }
}
export type RateLimiter = ReturnType<typeof createRateLimiter>
