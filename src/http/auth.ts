// Secrets: partner tokens (only their hashes are kept), the operator token, and who a request acts as.
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { timingSafeEqual } from 'node:crypto'

/** `invalid` with `retired`: the token was that partner's before the operator retired it. */
export type Actor = { kind: 'none' } | { kind: 'invalid'; retired?: string } | { kind: 'partner'; id: string } | { kind: 'operator' }

/** A fresh secret: 256 random bits, URL-safe. */
export const newToken = (prefix = 'duo_'): string =>
  prefix + Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64url')

export const hashToken = (token: string): string => new Bun.CryptoHasher('sha256').update(token).digest('hex')

/** Constant-time equality of two sha-256 hex digests (fixed length, so nothing leaks through lengths). */
export const sameDigest = (a: string, b: string): boolean => timingSafeEqual(Buffer.from(a, 'hex'), Buffer.from(b, 'hex'))

export const sameSecret = (a: string, b: string): boolean => sameDigest(hashToken(a), hashToken(b))

/** The bearer token of an `Authorization` header, or null. */
export function bearer(header: string | null | undefined): string | null {
  if (!header) return null
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header)
  return match ? match[1]! : null
}

/**
 * The operator token: DUO_ADMIN_TOKEN, else the one kept beside the database (created on first start,
 * mode 0600). For `:memory:` a fresh one each start. Returns where it lives, for the start-up line.
 */
export function loadAdminToken(dbPath: string, configured?: string): { token: string; file: string | null } {
  if (configured) return { token: configured, file: null }
  if (dbPath === ':memory:') return { token: newToken('duo_admin_'), file: null }
  const file = `${resolve(dbPath)}.admin-token`
  if (existsSync(file)) {
    const token = readFileSync(file, 'utf8').trim()
    if (token.length >= 16) {
      // A file copied or restored with a looser mode is tightened: it holds the key to the whole log.
      if ((statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600)
      return { token, file }
    }
  }
  const token = newToken('duo_admin_')
  mkdirSync(dirname(file), { recursive: true })
  writeFileSync(file, `${token}\n`, { mode: 0o600 })
  chmodSync(file, 0o600)
  return { token, file }
}
