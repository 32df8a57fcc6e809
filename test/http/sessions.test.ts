// Console sessions: they expire, sign-out ends them, only hashes are kept, and the cookie says HttpOnly and SameSite=Strict.
import { describe, expect, test } from 'bun:test'
import { cookieValue, createSessions, sessionCookie } from '../../src/http/sessions.ts'
import { startTestBroker } from './helpers.ts'
import { startSecureBroker } from './secure-harness.ts'

describe('sessions', () => {
  test('a session lasts its time to live, then is unknown', () => {
    let now = Date.parse('2026-12-01T10:00:00.000Z')
    const sessions = createSessions(60_000, () => new Date(now))
    const { value, expiresAt } = sessions.open()
    expect(expiresAt.toISOString()).toBe('2026-12-01T10:01:00.000Z')
    now += 59_999
    expect(sessions.expiryOf(value)).toEqual(expiresAt)
    now += 1
    expect(sessions.expiryOf(value)).toBeNull()
  })

  test('closing a session ends it at once; unknown and empty values are no session', () => {
    const sessions = createSessions(60_000, () => new Date())
    const { value } = sessions.open()
    sessions.close(value)
    expect(sessions.expiryOf(value)).toBeNull()
    expect(sessions.expiryOf('duo_session_forged')).toBeNull()
    expect(sessions.expiryOf(undefined)).toBeNull()
  })

  test('the cookie is HttpOnly and SameSite=Strict, and is found among others', () => {
    expect(sessionCookie('abc', 60, false)).toBe('duo_session=abc; Path=/; HttpOnly; SameSite=Strict; Max-Age=60')
    expect(cookieValue('theme=dark; duo_session=abc; other=1', 'duo_session')).toBe('abc')
    expect(cookieValue('duo_sessionx=abc', 'duo_session')).toBeUndefined()
  })
})

describe('POST /session', () => {
  test('refuses a wrong token with token_invalid and sets no cookie; a right one opens a session', async () => {
    const broker = await startSecureBroker()
    try {
      const wrong = await fetch(`${broker.url}/session`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ token: 'nope' }),
      })
      expect(wrong.status).toBe(401)
      expect(((await wrong.json()) as { reason: string }).reason).toBe('token_invalid')
      expect(wrong.headers.get('set-cookie')).toBeNull()
      const empty = await broker.call('POST', '/session', { body: {} })
      expect(empty.status).toBe(400)
      const right = await fetch(`${broker.url}/session`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ token: broker.adminToken }),
      })
      expect(right.status).toBe(200)
      const cookie = right.headers.get('set-cookie')!.split(';')[0]!
      expect((await broker.call('GET', '/session', { headers: { cookie } })).body).toMatchObject({ auth: 'token', signedIn: true })
      expect((await broker.call('GET', '/events?after=0', { headers: { cookie } })).status).toBe(200)
      // A partner's token is not the operator's: it opens no session.
      const alice = await broker.register('alice')
      expect((await broker.call('POST', '/session', { body: { token: alice } })).status).toBe(401)
    } finally {
      await broker.close()
    }
  })

  test('open mode needs no sign-in: the console reads as the API does there', async () => {
    const broker = await startTestBroker()
    try {
      expect((await broker.get('/session')).body).toEqual({ auth: 'open', signedIn: true, expiresAt: null })
      expect((await broker.get('/conversations')).status).toBe(200)
      expect((await broker.get('/log/health')).body).toEqual({ last_seq: 0, verified_through: 0, problem: null })
    } finally {
      await broker.close()
    }
  })
})
