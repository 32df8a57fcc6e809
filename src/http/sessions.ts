// Console sessions: the operator token exchanged for a random cookie value, kept hashed in memory until it expires or signs out.
import { hashToken, newToken } from './auth.ts'

export const SESSION_COOKIE = 'duo_session'
/** Sessions held at once; past it the oldest is dropped (sign-ins are operator-only, so this only bounds memory). */
const MAX_SESSIONS = 1000

export type Sessions = ReturnType<typeof createSessions>

/**
 * Sessions live in this broker's memory only: a restart signs everyone out, and nothing secret is ever written
 * to the log. Only the hash of a cookie value is kept, so a heap dump does not hand out live sessions.
 */
export function createSessions(ttlMs: number, now: () => Date) {
  const expiries = new Map<string, number>()
  return {
    /** A new session: the cookie value to send once, and when it expires. */
    open(): { value: string; expiresAt: Date } {
      const value = newToken('duo_session_')
      const expiresAt = new Date(now().getTime() + ttlMs)
      if (expiries.size >= MAX_SESSIONS) expiries.delete(expiries.keys().next().value!)
      expiries.set(hashToken(value), expiresAt.getTime())
      return { value, expiresAt }
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
    close(value: string | undefined): void {
      if (value) expiries.delete(hashToken(value))
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
