// Console sessions: the operator token exchanged for a random cookie value, kept hashed in memory until it expires or signs out.
import { hashToken, newToken } from './auth.ts'

export const SESSION_COOKIE = 'duo_session'
/** Sessions held at once; past it the oldest is dropped (sign-ins are operator-only, so this only bounds memory). */
const MAX_SESSIONS = 1000

export type Sessions = ReturnType<typeof createSessions>

/** Where sessions are also kept when several brokers serve one log (PostgreSQL), so any of them knows a sign-in. */
export type SharedSessions = {
  save(hash: string, expiresAt: number, nowMs: number): Promise<void>
  remove(hash: string): Promise<void>
  /** The session's expiry (ms since the epoch), or null when it is unknown or signed out. */
  load(hash: string): Promise<number | null>
}

/**
 * Sessions live in this broker's memory only: a restart signs everyone out, and nothing secret is ever written
 * to the log. Only the hash of a cookie value is kept, so a heap dump does not hand out live sessions.
 * With `shared` (several brokers on one PostgreSQL log) the hashes are kept there too, and `refresh` reads the
 * request's session from there first: a sign-in through one broker holds on all, a sign-out ends it on all.
 */
export function createSessions(ttlMs: number, now: () => Date, shared?: SharedSessions) {
  const expiries = new Map<string, number>()
  return {
    /** A new session: the cookie value to send once, when it expires, and `saved` (every broker knows it). */
    open(): { value: string; expiresAt: Date; saved: Promise<void> } {
      const value = newToken('duo_session_')
      const expiresAt = new Date(now().getTime() + ttlMs)
      if (expiries.size >= MAX_SESSIONS) expiries.delete(expiries.keys().next().value!)
      const key = hashToken(value)
      expiries.set(key, expiresAt.getTime())
      return { value, expiresAt, saved: shared ? shared.save(key, expiresAt.getTime(), now().getTime()) : Promise.resolve() }
    },
    /** With shared sessions: this broker's copy of the session `cookieHeader` names, brought up to date. */
    async refresh(cookieHeader: string | null): Promise<void> {
      const value = shared && cookieValue(cookieHeader, SESSION_COOKIE)
      if (!shared || !value) return
      const key = hashToken(value)
      const expiry = await shared.load(key)
      if (expiry === null) expiries.delete(key)
      else expiries.set(key, expiry)
    },
    /** When the session of this cookie value expires, or null if it is unknown or over. */
    expiryOf(value: string | undefined): Date | null {
      if (!value) return null
      const key = hashToken(value)
      const expiry = expiries.get(key)
      if (expiry === undefined) return null
      if (expiry <= now().getTime()) {
        expiries.delete(key)
        return null
      }
      return new Date(expiry)
    },
    /** Ends the session (on every broker, with shared sessions). */
    async close(value: string | undefined): Promise<void> {
      if (!value) return
      expiries.delete(hashToken(value))
      await shared?.remove(hashToken(value))
    },
  }
}

/** The value of cookie `name` in a `Cookie` header. */
export function cookieValue(header: string | null | undefined, name: string): string | undefined {
  if (!header) return undefined
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim()
  }
  return undefined
}

/** The `Set-Cookie` value: HttpOnly (no script reads it), SameSite=Strict (no other site's page sends it). */
export function sessionCookie(value: string, maxAgeS: number, secure: boolean): string {
  return `${SESSION_COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeS}${secure ? '; Secure' : ''}`
}
