// Broker configuration from the environment, refused with one line naming the variable when wrong.
import { LIMITS } from '../events/schema.ts'
import { NO_RATE_LIMITS, RATE_LIMIT_DEFAULTS, type RateLimits } from './rate-limits.ts'
import { DEFAULT_DB_PATH } from '../store.ts'

export type BrokerConfig = {
  host: string
  port: number
  dbPath: string
  auth: 'token' | 'open'
  allowOpenNetwork: boolean
  /** Host names besides loopback and IP literals a request's Host may carry (DUO_ALLOWED_HOSTS, plus a named BROKER_HOST). */
  allowedHosts: string[]
  adminToken?: string
  sync: 'full' | 'normal'
  maxMessageBytes: number
  maxBodyBytes: number
  /** A partner with no listener and no request for this long shows as offline. */
  presenceTimeoutMs: number
  /** Keep-alive comment interval for SSE streams. */
  keepAliveMs: number
  /** PostgreSQL: a file for this broker's replica of the shared log (DUO_REPLICA); unset: in memory. */
  replicaPath?: string
  /** PostgreSQL: how often a broker polls the shared log besides LISTEN (a lost notification delays at most this). */
  pgPollMs: number
  /** Loop guard: agent messages in a row that pause a conversation (0: off). */
  maxHops: number
  maxGroupsPerPartner: number
  /** Partners not seen for this many days are left out of default listings (0: never). */
  staleDays: number
  /** Per minute; 0 turns one off, DUO_RATE_LIMITS=off all of them. */
  rateLimits: RateLimits
  /** How long a console sign-in lasts. */
  sessionTtlMs: number
  /** The most bytes (estimated) of messages or events in one page: history, long-poll answers, /events. */
  pageBytes: number
  /** Bytes of answers waiting for slow clients, across all of them, beyond which new big answers get 503. */
  sendBudgetBytes: number
}

export class ConfigError extends Error {}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|localhost|::1|\[::1\])$/

export const isLoopback = (host: string) => LOOPBACK.test(host)

const HOST_NAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/

export function configFromEnv(env: Record<string, string | undefined> = process.env): BrokerConfig {
  const int = (name: string, fallback: number, min: number, max: number): number => {
    const raw = env[name]
    if (raw === undefined || raw === '') return fallback
    if (!/^\d+$/.test(raw.trim()) || Number(raw) < min || Number(raw) > max)
      throw new ConfigError(`${name} must be a whole number from ${min} to ${max}, got "${raw}"`)
    return Number(raw)
  }
  const oneOf = <T extends string>(name: string, fallback: T, allowed: readonly T[]): T => {
    const raw = env[name]
    if (raw === undefined || raw === '') return fallback
    const value = raw.trim().toLowerCase() as T
    if (!allowed.includes(value)) throw new ConfigError(`${name} must be one of ${allowed.join(', ')}, got "${raw}"`)
    return value
  }
  const host = env.BROKER_HOST?.trim() || '127.0.0.1'
  const auth = oneOf('DUO_AUTH', 'token', ['token', 'open'] as const)
  const allowOpenNetwork = env.DUO_ALLOW_OPEN_NETWORK === '1'
  if (auth === 'open' && !isLoopback(host) && !allowOpenNetwork)
    throw new ConfigError(
      `DUO_AUTH=open on the non-loopback BROKER_HOST "${host}" would let anyone act as any partner; set DUO_ALLOW_OPEN_NETWORK=1 to allow it`,
    )
  const allowedHosts = (env.DUO_ALLOWED_HOSTS ?? '')
    .split(',')
    .map((name) => name.trim().toLowerCase())
    .filter(Boolean)
  const badHost = allowedHosts.find((name) => !HOST_NAME.test(name))
  if (badHost !== undefined)
    throw new ConfigError(`DUO_ALLOWED_HOSTS must be comma-separated host names without scheme or port, got "${badHost}"`)
  // A broker started on a name answers to it (unless that is an address, which needs no listing).
  if (HOST_NAME.test(host.toLowerCase()) && !/^[\d.]+$/.test(host)) allowedHosts.push(host.toLowerCase())
  const adminToken = env.DUO_ADMIN_TOKEN?.trim() || undefined
  if (adminToken !== undefined && adminToken.length < 16)
    throw new ConfigError('DUO_ADMIN_TOKEN must be at least 16 characters')
  return {
    host,
    port: int('BROKER_PORT', 3210, 0, 65535),
    dbPath: env.DUO_DB?.trim() || DEFAULT_DB_PATH,
    auth,
    allowOpenNetwork,
    allowedHosts,
    adminToken,
    sync: oneOf('DUO_SYNC', 'full', ['full', 'normal'] as const),
    maxMessageBytes: int('DUO_MAX_MESSAGE_BYTES', LIMITS.messageBytesDefault, 1, 1024 * 1024 - 1024),
    maxBodyBytes: 1024 * 1024,
    presenceTimeoutMs: int('DUO_PRESENCE_TIMEOUT_S', 300, 1, 86_400) * 1000,
    keepAliveMs: int('DUO_KEEPALIVE_S', 15, 1, 15) * 1000,
    pgPollMs: 1000,
    maxHops: int('DUO_MAX_HOPS', LIMITS.maxHopsDefault, 0, 1_000_000),
    maxGroupsPerPartner: int('DUO_MAX_GROUPS_PER_PARTNER', LIMITS.groupsPerPartnerDefault, 1, 1_000_000),
    staleDays: int('DUO_STALE_DAYS', 30, 0, 36_500),
    rateLimits: rateLimitsFromEnv(env, int),
    sessionTtlMs: int('DUO_SESSION_TTL_S', 12 * 3600, 60, 30 * 86_400) * 1000,
    // At least one largest message fits any page, so a page holds one item at the very least (see events/pages.ts).
    pageBytes: int('DUO_PAGE_KB', 1024, 128, 65_536) * 1024,
    sendBudgetBytes: int('DUO_SEND_BUDGET_MB', 32, 1, 4096) * 2 ** 20,
  }
}

function rateLimitsFromEnv(
  env: Record<string, string | undefined>,
  int: (name: string, fallback: number, min: number, max: number) => number,
): RateLimits {
  const all = env.DUO_RATE_LIMITS?.trim().toLowerCase()
  if (all !== undefined && all !== '' && all !== 'on' && all !== 'off')
    throw new ConfigError(`DUO_RATE_LIMITS must be on or off, got "${env.DUO_RATE_LIMITS}"`)
  if (all === 'off') return NO_RATE_LIMITS
  const perMinute = (name: string, fallback: number) => int(name, fallback, 0, 100_000_000)
  return {
    talk: perMinute('DUO_RATE_TALK_PER_MIN', RATE_LIMIT_DEFAULTS.talk),
    talkPerAddress: perMinute('DUO_RATE_TALK_PER_ADDRESS_PER_MIN', RATE_LIMIT_DEFAULTS.talkPerAddress),
    register: perMinute('DUO_RATE_REGISTER_PER_MIN', RATE_LIMIT_DEFAULTS.register),
    groups: perMinute('DUO_RATE_GROUPS_PER_MIN', RATE_LIMIT_DEFAULTS.groups),
    members: perMinute('DUO_RATE_MEMBERS_PER_MIN', RATE_LIMIT_DEFAULTS.members),
  }
}
