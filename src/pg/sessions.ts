// Console sign-ins kept in the shared database: a session opened through one broker holds on all of them.
import type { SQL } from 'bun'
import type { SharedSessions } from '../http/sessions.ts'

export function sharedSessions(sql: SQL): SharedSessions {
  return {
    async save(hash, expiresAt, nowMs) {
      // Expired sign-ins are dropped as new ones come: the table holds about the live ones only.
      await sql`WITH gone AS (DELETE FROM duo_console_sessions WHERE expires_at <= ${nowMs})
        INSERT INTO duo_console_sessions (hash, expires_at) VALUES (${hash}, ${expiresAt})
        ON CONFLICT (hash) DO UPDATE SET expires_at = excluded.expires_at`
    },
    async remove(hash) {
      await sql`DELETE FROM duo_console_sessions WHERE hash = ${hash}`
    },
    async load(hash) {
      const [row] = await sql`SELECT expires_at FROM duo_console_sessions WHERE hash = ${hash}`
      return row ? Number(row.expires_at) : null
    },
  }
}
