// Partners over HTTP: register, unregister, list, status, notifications, health, and presence.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { type TestBroker, eventually, startTestBroker, stillPending } from './helpers.ts'

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/

describe('partners on an open broker', () => {
  let broker: TestBroker
  beforeAll(async () => {
    broker = await startTestBroker()
  })
  afterAll(() => broker.close())

  test('registers a partner and answers with the seed shape', async () => {
    const reply = await broker.post('/register', { partnerId: 'alice', name: 'Alice', projectPath: '/work/alice' })
    expect(reply.status).toBe(200)
    expect(reply.body).toEqual({
      success: true,
      partner: expect.objectContaining({
        id: 'alice',
        name: 'Alice',
        project_path: '/work/alice',
        status: 'online',
        status_message: null,
        notifications_enabled: true,
      }),
      // Which log answered (contract section 2): the same id /health shows.
      broker_id: broker.brokerId,
    })
    expect(broker.brokerId).toMatch(/^[0-9a-f]{32}$/)
    expect((await broker.get('/health')).body.broker_id).toBe(broker.brokerId)
    expect(reply.body.partner.created_at).toMatch(ISO)
    expect(reply.body.partner.last_seen).toMatch(ISO)
    expect(reply.body.token).toBeUndefined()
  })

  test('re-registering keeps the partner and updates its name', async () => {
    const reply = await broker.post('/register', { partnerId: 'alice', name: 'Alice 2' })
    expect(reply.status).toBe(200)
    expect(reply.body.partner.name).toBe('Alice 2')
    const partners = (await broker.get('/partners')).body.partners
    expect(partners.filter((p: { id: string }) => p.id === 'alice')).toHaveLength(1)
  })

  test.each([
    ['an id starting with a dot', { partnerId: '.hidden' }],
    ['an id with a slash', { partnerId: '../etc' }],
    ['an id of 65 characters', { partnerId: 'a'.repeat(65) }],
    ['an empty id', { partnerId: '' }],
    ['no id', { name: 'nobody' }],
    ['a name of 101 characters', { partnerId: 'ok', name: 'n'.repeat(101) }],
  ])('refuses to register %s with 400 and appends nothing', async (_, body) => {
    const before = await broker.lastSeq()
    const reply = await broker.post('/register', body)
    expect(reply.status).toBe(400)
    expect(typeof reply.body.error).toBe('string')
    expect(await broker.lastSeq()).toBe(before)
  })

  test('refuses a body that is not JSON with 400 {error}', async () => {
    const before = await broker.lastSeq()
    const reply = await broker.call('POST', '/register', '{"partnerId": ', { 'content-type': 'application/json' })
    expect(reply.status).toBe(400)
    expect(reply.body.error).toEqual(expect.any(String))
    const text = await broker.call('POST', '/register', 'partnerId=x', { 'content-type': 'text/plain' })
    expect(text.status).toBe(400)
    expect(text.body.error).toEqual(expect.any(String))
    expect(await broker.lastSeq()).toBe(before)
  })

  test('sets and clears a status message', async () => {
    expect((await broker.post('/partners/alice/status', { message: 'reviewing auth' })).body).toEqual({ success: true })
    let alice = (await broker.get('/partners')).body.partners.find((p: { id: string }) => p.id === 'alice')
    expect(alice.status_message).toBe('reviewing auth')
    expect((await broker.post('/partners/alice/status', {})).status).toBe(200)
    alice = (await broker.get('/partners')).body.partners.find((p: { id: string }) => p.id === 'alice')
    expect(alice.status_message).toBeNull()
  })

  test('refuses a status for an unknown partner (404) and an oversized one (400)', async () => {
    const before = await broker.lastSeq()
    const unknown = await broker.post('/partners/nobody/status', { message: 'hi' })
    expect(unknown.status).toBe(404)
    expect(unknown.body.error).toContain('nobody')
    const long = await broker.post('/partners/alice/status', { message: 's'.repeat(501) })
    expect(long.status).toBe(400)
    expect(long.body.error).toContain('500')
    const control = await broker.post('/partners/alice/status', { message: 'bell\u0007' })
    expect(control.status).toBe(400)
    expect(await broker.lastSeq()).toBe(before)
  })

  test('switches notifications off and on', async () => {
    expect((await broker.post('/partners/alice/notifications', { enabled: false })).body).toEqual({ success: true })
    let alice = (await broker.get('/partners')).body.partners.find((p: { id: string }) => p.id === 'alice')
    expect(alice.notifications_enabled).toBe(false)
    expect((await broker.post('/partners/alice/notifications', { enabled: true })).status).toBe(200)
    alice = (await broker.get('/partners')).body.partners.find((p: { id: string }) => p.id === 'alice')
    expect(alice.notifications_enabled).toBe(true)
  })

  test('refuses notifications that are not a boolean (400) or for an unknown partner (404)', async () => {
    const before = await broker.lastSeq()
    const notBoolean = await broker.post('/partners/alice/notifications', { enabled: 'yes' })
    expect(notBoolean.status).toBe(400)
    expect(notBoolean.body.error).toContain('enabled')
    expect((await broker.post('/partners/nobody/notifications', { enabled: true })).status).toBe(404)
    expect(await broker.lastSeq()).toBe(before)
  })

  test('lists partners with presence fields', async () => {
    await broker.register('bob')
    const reply = await broker.get('/partners')
    expect(reply.status).toBe(200)
    const bob = reply.body.partners.find((p: { id: string }) => p.id === 'bob')
    expect(bob).toEqual(
      expect.objectContaining({ id: 'bob', name: 'bob', status: 'online', status_message: null, isListening: false }),
    )
  })

  test('health counts partners, online and listening', async () => {
    const reply = await broker.get('/health')
    expect(reply.status).toBe(200)
    expect(reply.body).toEqual(
      expect.objectContaining({ status: 'ok', partners: 2, online: 2, listening: 0, last_seq: expect.any(Number) }),
    )
  })

  test('unregistering sets the partner offline and ends its waiting long-polls', async () => {
    await broker.register('carol')
    const cursor = await broker.lastSeq()
    const started = Date.now()
    const waiting = broker.get(`/listen/carol?after=${cursor}&wait=10`)
    const legacy = broker.get('/listen/carol?timeout=1')
    expect(await eventually(async () => (await broker.get('/health')).body.listening === 1)).toBe(true)
    await broker.untilParked(2)
    expect(await stillPending(waiting, 0)).toBe(true)

    expect((await broker.post('/unregister', { partnerId: 'carol' })).body).toEqual({ success: true, offline: true, sessions: 0 })
    const [cursorReply, legacyReply] = await Promise.all([waiting, legacy])
    expect(Date.now() - started).toBeLessThan(5000)
    expect(cursorReply.status).toBe(200)
    expect(cursorReply.body).toEqual({ hasMessages: false, messages: [], cursor: expect.any(Number) })
    expect(legacyReply.body).toEqual({ hasMessages: false, messages: [] })
    const carol = (await broker.get('/partners')).body.partners.find((p: { id: string }) => p.id === 'carol')
    expect(carol.status).toBe('offline')
    expect(carol.isListening).toBe(false)
  })

  test('refuses to unregister an unknown partner (404) or a malformed id (400)', async () => {
    expect((await broker.post('/unregister', { partnerId: 'nobody' })).status).toBe(404)
    const bad = await broker.post('/unregister', { partnerId: 'a b' })
    expect(bad.status).toBe(400)
    expect(bad.body.error).toEqual(expect.any(String))
    expect((await broker.post('/unregister', {})).status).toBe(400)
  })

  test('an unknown route is a JSON 404', async () => {
    const reply = await broker.get('/no/such/thing')
    expect(reply.status).toBe(404)
    expect(reply.body.error).toContain('/no/such/thing')
  })
})

describe('presence with a short presence timeout', () => {
  let broker: TestBroker
  beforeAll(async () => {
    broker = await startTestBroker({ presenceTimeoutMs: 300 })
    await broker.register('quiet', 'waiting', 'busy')
  })
  afterAll(() => broker.close())

  const statusOf = async (id: string) =>
    (await broker.get('/partners')).body.partners.find((p: { id: string }) => p.id === id) as {
      status: string
      isListening: boolean
    }

  test('a silent partner shows offline after the timeout; a listening one stays online and isListening', async () => {
    expect((await statusOf('quiet')).status).toBe('online')
    const poll = broker.get(`/listen/waiting?after=${await broker.lastSeq()}&wait=3`)
    expect(await eventually(async () => (await statusOf('waiting')).isListening)).toBe(true)
    // The presence timeout (300 ms) passing is the event; the listener's presence must survive it.
    expect(await eventually(async () => (await statusOf('quiet')).status === 'offline', 5000)).toBe(true)
    expect(await statusOf('quiet')).toEqual(expect.objectContaining({ status: 'offline', isListening: false }))
    expect(await statusOf('waiting')).toEqual(expect.objectContaining({ status: 'online', isListening: true }))
    expect((await broker.get('/health')).body.listening).toBe(1)

    // Acting again brings a partner back.
    await broker.post('/partners/quiet/status', { message: 'back' })
    expect((await statusOf('quiet')).status).toBe('online')

    await broker.talk('busy', { to: 'waiting' }, 'wake up')
    expect((await poll).body.hasMessages).toBe(true)
    expect(await eventually(async () => !(await statusOf('waiting')).isListening)).toBe(true)
  })
})
