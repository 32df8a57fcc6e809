// /health counts partners without reading them, and /partners answers in pages: both agree with each other.
import { afterAll, describe, expect, test } from 'bun:test'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { configFromEnv } from '../../src/http/config.ts'
import { type RunningBroker, startBroker } from '../../src/http/server.ts'
import { eventually, tempDir } from './helpers.ts'

const dir = tempDir('duo-health-')
afterAll(() => rmSync(dir, { recursive: true, force: true }))

let clock = Date.parse('2026-12-01T10:00:00.000Z')
const now = () => new Date(clock)
const config = { ...configFromEnv({}), host: '127.0.0.1', port: 0, dbPath: join(dir, 'duo.db'), auth: 'open' as const, sync: 'normal' as const }

const json = async (broker: RunningBroker, path: string, body?: unknown) => {
  const response = await fetch(broker.url + path, body === undefined ? {} : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  return { status: response.status, body: (await response.json()) as any }
}

/** /health's counts, checked against the statuses /partners shows for every partner. */
async function counts(broker: RunningBroker): Promise<{ partners: number; online: number }> {
  const health = (await json(broker, '/health')).body
  const listed = (await json(broker, '/partners?limit=1000')).body
  expect(listed.total).toBe(health.partners)
  expect(listed.partners.filter((p: { status: string }) => p.status === 'online').length).toBe(health.online)
  return { partners: health.partners, online: health.online }
}

describe('/health presence counts', () => {
  test('follow registrations, unregistrations, the presence timeout, listeners and a restart', async () => {
    let broker = await startBroker(config, now)
    try {
      for (const partnerId of ['a', 'b', 'c']) expect((await json(broker, '/register', { partnerId })).status).toBe(200)
      expect(await counts(broker)).toEqual({ partners: 3, online: 3 })
      expect((await json(broker, '/unregister', { partnerId: 'c' })).status).toBe(200)
      expect(await counts(broker)).toEqual({ partners: 3, online: 2 })

      clock += config.presenceTimeoutMs + 1000
      expect(await counts(broker)).toEqual({ partners: 3, online: 0 })

      // A parked long-poll keeps its partner online, however long it waits.
      const parked = fetch(`${broker.url}/listen/a?after=0&wait=5`)
      expect(await eventually(async () => (await json(broker, '/health')).body.listening === 1)).toBe(true)
      expect(await counts(broker)).toEqual({ partners: 3, online: 1 })
      clock += config.presenceTimeoutMs + 1000
      expect(await counts(broker)).toEqual({ partners: 3, online: 1 })

      expect((await json(broker, '/talk', { fromId: 'b', to: 'a', content: 'hi' })).status).toBe(200)
      await parked
      expect(await counts(broker)).toEqual({ partners: 3, online: 2 })
      // c comes back.
      expect((await json(broker, '/register', { partnerId: 'c' })).status).toBe(200)
      expect(await counts(broker)).toEqual({ partners: 3, online: 3 })
      await broker.stop()

      // A restart starts from the stored statuses and last activity: b talked and c registered within the timeout;
      // a only listened, which the log does not record, so it shows offline until it acts again.
      clock += 1000
      broker = await startBroker(config, now)
      expect(await counts(broker)).toEqual({ partners: 3, online: 2 })
      clock += config.presenceTimeoutMs + 1000
      expect(await counts(broker)).toEqual({ partners: 3, online: 0 })
    } finally {
      await broker.stop()
    }
  })
})

describe('/partners in pages', () => {
  test('pages by id with next_after_id until null, every partner once; bad paging is a 400', async () => {
    const broker = await startBroker({ ...config, dbPath: join(dir, 'paged.db') }, now)
    try {
      const ids = ['p-3', 'p-1', 'p-5', 'p-2', 'p-4']
      for (const partnerId of ids) await json(broker, '/register', { partnerId })
      const seen: string[] = []
      let after: string | null = ''
      for (let pages = 0; after !== null && pages < 10; pages++) {
        const page = await json(broker, `/partners?limit=2${after ? `&after_id=${after}` : ''}`)
        expect(page.status).toBe(200)
        expect(page.body.total).toBe(5)
        expect(page.body.partners.length).toBeLessThanOrEqual(2)
        seen.push(...page.body.partners.map((p: { id: string }) => p.id))
        after = page.body.next_after_id
      }
      expect(seen).toEqual(ids.toSorted())
      // Without paging parameters: the first page of the default size (all five here), and no next page.
      const all = await json(broker, '/partners')
      expect(all.body.partners).toHaveLength(5)
      expect(all.body.next_after_id).toBeNull()
      for (const bad of ['limit=0', 'limit=1001', 'limit=x', 'after_id=..']) {
        const refused = await json(broker, `/partners?${bad}`)
        expect(refused.status, bad).toBe(400)
        expect(refused.body.error, bad).toBeString()
      }
    } finally {
      await broker.stop()
    }
  })
})
