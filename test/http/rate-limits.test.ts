// Token buckets under a clock the test moves: bursts, refill, retry times, bounded memory.
import { describe, expect, test } from 'bun:test'
import { ConfigError, configFromEnv } from '../../src/http/config.ts'
import { createBuckets, createRateLimiter, NO_RATE_LIMITS, RATE_LIMIT_DEFAULTS } from '../../src/http/rate-limits.ts'

const clock = () => {
  let t = 1_000_000
  return { now: () => t, advance: (ms: number) => (t += ms) }
}

describe('a bucket of 60 a minute', () => {
  test('allows a burst of 60, then refuses with the seconds until the next token', () => {
    const { now } = clock()
    const buckets = createBuckets(60, now)
    for (let i = 0; i < 60; i++) expect(buckets.take('alice')).toBe(0)
    expect(buckets.take('alice')).toBe(1)
  })

  test('refills one token a second, never beyond the burst', () => {
    const { now, advance } = clock()
    const buckets = createBuckets(60, now)
    for (let i = 0; i < 60; i++) buckets.take('alice')
    advance(3000)
    expect([buckets.take('alice'), buckets.take('alice'), buckets.take('alice'), buckets.take('alice')]).toEqual([0, 0, 0, 1])
    advance(3_600_000)
    for (let i = 0; i < 60; i++) expect(buckets.take('alice')).toBe(0)
    expect(buckets.take('alice')).toBeGreaterThan(0)
  })

  test('keys are independent', () => {
    const { now } = clock()
    const buckets = createBuckets(60, now)
    for (let i = 0; i < 60; i++) buckets.take('alice')
    expect(buckets.take('alice')).toBe(1)
    expect(buckets.take('bob')).toBe(0)
  })

  test('a costly request waits for its tokens; one larger than the bucket waits for a full one', () => {
    const { now, advance } = clock()
    const buckets = createBuckets(60, now)
    expect(buckets.take('alice', 50)).toBe(0)
    expect(buckets.take('alice', 20)).toBe(10)
    advance(10_000)
    expect(buckets.take('alice', 20)).toBe(0)
    expect(buckets.take('bob', 500)).toBe(0)
    expect(buckets.take('bob', 500)).toBe(60)
  })

  test('keeps at most maxKeys buckets, dropping refilled ones first', () => {
    const { now, advance } = clock()
    const buckets = createBuckets(60, now, 100)
    buckets.take('busy', 60)
    for (let i = 0; i < 1000; i++) buckets.take(`k${i}`)
    expect(buckets.size()).toBeLessThanOrEqual(100)
    advance(120_000)
    for (let i = 0; i < 99; i++) buckets.take(`fresh${i}`, 60)
    buckets.take('another')
    expect(buckets.size()).toBeLessThanOrEqual(100)
    // The exhausted buckets were kept over the refilled ones.
    expect(buckets.take('fresh0')).toBeGreaterThan(0)
  })
})

describe('the limiter', () => {
  test('refuses with reason rate_limited, the limit named, and the retry time', () => {
    const { now } = clock()
    const limiter = createRateLimiter({ ...NO_RATE_LIMITS, register: 2 }, now)
    expect(limiter.check('register', '10.0.0.1')).toBeNull()
    expect(limiter.check('register', '10.0.0.1')).toBeNull()
    expect(limiter.check('register', '10.0.0.1')).toEqual({
      reason: 'rate_limited',
      limit: 'at most 2 new partners a minute from one address (DUO_RATE_REGISTER_PER_MIN)',
      retryAfterS: 30,
    })
  })

  test('a limit of 0 is off', () => {
    const limiter = createRateLimiter(NO_RATE_LIMITS)
    for (let i = 0; i < 10_000; i++) expect(limiter.check('talk', 'alice')).toBeNull()
    expect(limiter.enabled('talk')).toBe(false)
  })

  test('defaults are generous: an agent talking once a second all day is never limited', () => {
    const { now, advance } = clock()
    const limiter = createRateLimiter(RATE_LIMIT_DEFAULTS, now)
    for (let i = 0; i < 86_400; i++) {
      expect(limiter.check('talk', 'alice')).toBeNull()
      advance(1000)
    }
  })
})

describe('the settings', () => {
  test('defaults: DUO_MAX_HOPS 50, 500 groups a partner, 30 stale days, every rate limit on', () => {
    expect(configFromEnv({})).toMatchObject({ maxHops: 50, maxGroupsPerPartner: 500, staleDays: 30, rateLimits: RATE_LIMIT_DEFAULTS })
  })

  test('each limit has its variable; 0 turns one off; DUO_RATE_LIMITS=off turns all off', () => {
    const config = configFromEnv({
      DUO_MAX_HOPS: '0',
      DUO_MAX_GROUPS_PER_PARTNER: '7',
      DUO_STALE_DAYS: '0',
      DUO_RATE_TALK_PER_MIN: '1',
      DUO_RATE_TALK_PER_ADDRESS_PER_MIN: '2',
      DUO_RATE_REGISTER_PER_MIN: '0',
      DUO_RATE_GROUPS_PER_MIN: '4',
      DUO_RATE_MEMBERS_PER_MIN: '5',
    })
    expect(config).toMatchObject({ maxHops: 0, maxGroupsPerPartner: 7, staleDays: 0 })
    expect(config.rateLimits).toEqual({ talk: 1, talkPerAddress: 2, register: 0, groups: 4, members: 5 })
    expect(configFromEnv({ DUO_RATE_LIMITS: 'off', DUO_RATE_TALK_PER_MIN: '1' }).rateLimits).toEqual(NO_RATE_LIMITS)
    expect(configFromEnv({ DUO_RATE_LIMITS: 'on' }).rateLimits).toEqual(RATE_LIMIT_DEFAULTS)
  })

  test('a bad value is refused naming its variable', () => {
    for (const [name, value] of [
      ['DUO_MAX_HOPS', '-1'],
      ['DUO_MAX_HOPS', 'many'],
      ['DUO_MAX_GROUPS_PER_PARTNER', '0'],
      ['DUO_STALE_DAYS', '1.5'],
      ['DUO_RATE_LIMITS', 'maybe'],
      ['DUO_RATE_TALK_PER_MIN', 'fast'],
      ['DUO_RATE_REGISTER_PER_MIN', '-5'],
    ] as const) {
      expect(() => configFromEnv({ [name]: value })).toThrow(ConfigError)
      expect(() => configFromEnv({ [name]: value })).toThrow(name)
    }
  })
})
