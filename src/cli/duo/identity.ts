// `bun run duo`'s identity: which broker, which human partner, and its tokens, in one file only its owner can read (0600).
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { dirname, join } from 'node:path'
import { z } from 'zod'
import { UsageError } from '../args.ts'

export const Identity = z.object({
  broker: z.string(),
  /** The log's id (from /health) this identity was made on: another log means another identity. */
  brokerId: z.string().nullable().optional(),
  partnerId: z.string(),
  /** The human partner's own token (token mode). */
  token: z.string().nullable(),
  /** The operator token, kept when given at login: reading every conversation and the log needs it. */
  operatorToken: z.string().nullable(),
})
export type Identity = z.infer<typeof Identity>

/** `DUO_CLI_FILE`, else `~/.config/duo/cli.json` (the folder is made 0700). */
export const identityPath = (): string => process.env.DUO_CLI_FILE || join(homedir(), '.config', 'duo', 'cli.json')

export function loadIdentity(path = identityPath()): Identity | null {
  if (!existsSync(path)) return null
  // A file copied or restored with a looser mode is tightened: it holds tokens.
  if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600)
  const parsed = Identity.safeParse(JSON.parse(readFileSync(path, 'utf8')))
  if (!parsed.success) throw new UsageError(`${path} is not a duo identity file; run \`bun run duo login\` again`)
  return parsed.data
}

export function requireIdentity(path = identityPath()): Identity {
  const identity = loadIdentity(path)
  if (!identity) throw new UsageError(`not logged in (no ${path}): run \`bun run duo login --as <your-id>\` first`)
  return identity
}

/** Written to a temporary file of mode 0600 and renamed over the old one: never readable by others, never half-written. */
export function saveIdentity(identity: Identity, path = identityPath()): void {
  const dir = dirname(path)
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 })
  const temp = `${path}.${process.pid}.tmp`
  writeFileSync(temp, `${JSON.stringify(identity, null, 2)}\n`, { mode: 0o600 })
  chmodSync(temp, 0o600)
  renameSync(temp, path)
}
