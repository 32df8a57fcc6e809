// The shared database going away and coming back: the documented 503 meanwhile, nothing half-stored, then on as before.
import { SQL } from 'bun'
import { afterAll, beforeAll, expect, test } from 'bun:test'
import { startTestBroker, type TestBroker } from '../http/helpers.ts'
import { freshDatabase, type TestDatabase } from './helpers.ts'

let database: TestDatabase
let broker: TestBroker
let admin: SQL
beforeAll(async () => {
  database = await freshDatabase('duo_outage')
  admin = new SQL(new URL('/postgres', database.url).toString())
  broker = await startTestBroker({ dbPath: database.url })
})
afterAll(async () => {
  await broker.close()
  await admin.unsafe(`ALTER DATABASE ${database.name} ALLOW_CONNECTIONS true`)
  await admin.close()
  await database.drop()
})

/** Closes the database to everyone (superusers too) and cuts every session on it, or opens it again. */
const cutOff = async (off: boolean) => {
  await admin.unsafe(`ALTER DATABASE ${database.name} ALLOW_CONNECTIONS ${off ? 'false' : 'true'}`)
  if (off) await admin`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ${database.name}`
}

test('while PostgreSQL refuses the broker, requests get 503 storage_unavailable and nothing is stored; afterwards all works again', async () => {
  await broker.register('alice', 'bob')
  const before = await broker.talk('alice', { to: 'bob' }, 'before')
  await cutOff(true)
  const during = await broker.post('/talk', { fromId: 'alice', to: 'bob', content: 'during' })
  expect(during.status).toBe(503)
  expect(during.body.reason).toBe('storage_unavailable')
  expect(during.headers.get('retry-after')).toBe('1')
  const health = await broker.get('/health')
  expect(health.status).toBe(503)
  await cutOff(false)
  const deadline = Date.now() + 15_000
  let after = await broker.post('/talk', { fromId: 'alice', to: 'bob', content: 'after' })
  while (after.status !== 200 && Date.now() < deadline) {
    await Bun.sleep(100)
    after = await broker.post('/talk', { fromId: 'alice', to: 'bob', content: 'after' })
  }
  expect(after.status).toBe(200)
  expect(after.body.seq).toBe(before.seq + 1)
  const stored = [...(await broker.get('/events?type=MessageSent&after=0')).body.events].map((e: { data: { content: string } }) => e.data.content)
  expect(stored).toEqual(['before', 'after'])
  const rows = [...(await database.sql`SELECT data FROM events WHERE type = 'MessageSent' ORDER BY seq`)].map((r) => JSON.parse(r.data).content)
  expect(rows).toEqual(['before', 'after'])
})
