// The partner's configuration, read once from the environment and the working directory.
import { readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { basename, join, resolve } from 'node:path'
import { DisplayName, LIMITS, PartnerId } from '../events/schema.ts'

export type PartnerConfig = {
  /** The first of `brokerUrls`: names this broker (or group of brokers on one log) in the state file. */
  brokerUrl: string
  /** BROKER_URL's comma-separated list: brokers serving one log, tried in turn when one cannot be reached. */
  brokerUrls: string[]
  partnerId: string
  partnerName: string
  /** The project the partner runs in (DUO_PROJECT_DIR, else CLAUDE_PROJECT_DIR, else cwd): `.duo/` and `CLAUDE.md` live here. */
  projectDir: string
  /** The longest one `listen` call waits, in seconds. */
  listenMaxS: number
  /** DUO_CLAUDE_MD: whether unread notices also go into the project's CLAUDE.md (off: only a section left by an earlier run is removed). */
  claudeMd?: boolean
}

export const DEFAULT_BROKER_URL = 'http://127.0.0.1:3210'
export const DEFAULT_LISTEN_MAX_S = 50

/** A directory name made into a valid partner id: lower case, `[a-z0-9_.-]`, never starting with `.`. */
export function partnerIdFromDirectory(dir: string): string {
  const id = basename(resolve(dir))
    .toLowerCase()
    .replace(/[^a-z0-9_.-]/g, '_')
    .replace(/^\./, '_')
    .slice(0, LIMITS.partnerIdMax)
  return id === '' ? 'partner' : id
}

export class ConfigError extends Error {}

const SWITCH: Record<string, boolean> = { on: true, off: false, '1': true, '0': false, true: true, false: false }

/**
 * The user's Duo settings file: `DUO_CONFIG`, else `$XDG_CONFIG_HOME/duo/config.json`, else `~/.config/duo/config.json`.
 * It lets a plugin install reach another broker without editing files inside the plugin; the environment wins.
 */
export function userConfigPath(env: Record<string, string | undefined>): string {
  if (env.DUO_CONFIG) return resolve(env.DUO_CONFIG)
  const base = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config')
  return join(base, 'duo', 'config.json')
}

/** `{ "brokerUrl": "http://host:port" }` (several: comma-separated, as in BROKER_URL) from the user's settings file; nothing when it is absent. */
function userBrokerUrl(env: Record<string, string | undefined>): string | undefined {
  const path = userConfigPath(env)
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch {
    return undefined
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (error) {
    throw new ConfigError(`${path} is not valid JSON: ${(error as Error).message}`)
  }
  const url = (parsed as { brokerUrl?: unknown } | null)?.brokerUrl
  if (url === undefined) return undefined
  if (typeof url !== 'string') throw new ConfigError(`${path}: "brokerUrl" must be a string such as "http://127.0.0.1:3210"`)
  return url.trim() || undefined
}

export function loadPartnerConfig(env: Record<string, string | undefined>, cwd: string): PartnerConfig {
  // Claude Code tells stdio servers the project root in CLAUDE_PROJECT_DIR (since 2.1.141); cwd is where it was started.
  const projectDir = resolve(env.DUO_PROJECT_DIR || env.CLAUDE_PROJECT_DIR || cwd)
  const partnerId = env.PARTNER_ID?.trim() || partnerIdFromDirectory(projectDir)
  const idCheck = PartnerId.safeParse(partnerId)
  if (!idCheck.success) {
    throw new ConfigError(`PARTNER_ID "${partnerId}" is invalid: ${idCheck.error.issues[0]?.message}`)
  }
  const brokerUrls = (env.BROKER_URL?.trim() || userBrokerUrl(env) || DEFAULT_BROKER_URL)
    .split(',')
    .map((url) => url.trim().replace(/\/+$/, ''))
    .filter((url) => url !== '')
  if (brokerUrls.length === 0) throw new ConfigError('BROKER_URL names no URL')
  for (const url of brokerUrls) if (!URL.canParse(url)) throw new ConfigError(`BROKER_URL "${url}" is not a URL`)
  const brokerUrl = brokerUrls[0]!
  const rawMax = env.DUO_LISTEN_MAX_S?.trim()
  const listenMaxS = rawMax ? Number(rawMax) : DEFAULT_LISTEN_MAX_S
  if (!Number.isFinite(listenMaxS) || listenMaxS < 0 || listenMaxS > 3600) {
    throw new ConfigError(`DUO_LISTEN_MAX_S "${rawMax}" must be a number of seconds between 0 and 3600`)
  }
  const partnerName = env.PARTNER_NAME?.trim().slice(0, LIMITS.nameMax) || partnerId
  const nameCheck = DisplayName.safeParse(partnerName)
  if (!nameCheck.success) throw new ConfigError(`PARTNER_NAME is invalid: ${nameCheck.error.issues[0]?.message}`)
  const rawClaudeMd = env.DUO_CLAUDE_MD?.trim().toLowerCase() || 'on'
  const claudeMd = SWITCH[rawClaudeMd]
  if (claudeMd === undefined) throw new ConfigError(`DUO_CLAUDE_MD "${env.DUO_CLAUDE_MD}" must be on or off`)
  return { brokerUrl, brokerUrls, partnerId, partnerName, projectDir, listenMaxS, claudeMd }
}
