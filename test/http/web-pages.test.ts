// What web pages and other partners may reach and see on a real token-mode broker: foreign pages and DNS rebinding are
// refused like in open mode, the broker's own origin passes, and where a project lives is shown only to itself and the operator.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { configFromEnv } from '../../src/http/config.ts'
import { fromOwnOrigin, webPageRefusal } from '../../src/http/request-guards.ts'
import { type Answer, expectRefusal, type SecureBroker, startSecureBroker } from './secure-harness.ts'

const refusedAsWebPage = (answer: Answer) => {
  expectRefusal(answer, 403)
  expect(answer.body.reason).toBe('web_page_refused')
}

describe('token mode refuses web pages', () => {
  let broker: SecureBroker
  let alice: string
  beforeAll(async () => {
    broker = await startSecureBroker({ allowedHosts: ['duo.example.com'] })
    alice = await broker.register('alice')
    await broker.register('bob')
  })
  afterAll(() => broker.close())

  test('a rebound Host (DNS rebinding) is 403 before anything: no registration, no partner list, no message', async () => {
    const before = await broker.lastSeq()
    const rebound = { host: `attacker.example:${broker.port}`, origin: `http://attacker.example:${broker.port}`, 'sec-fetch-site': 'same-origin' }
    const register = await broker.call('POST', '/register', { body: { partnerId: 'page' }, headers: rebound })
    refusedAsWebPage(register)
    expect(register.body.error).toContain('DUO_ALLOWED_HOSTS')
    refusedAsWebPage(await broker.call('GET', '/partners', { token: alice, headers: rebound }))
    refusedAsWebPage(await broker.call('POST', '/talk', { token: alice, headers: rebound, body: { fromId: 'alice', to: 'bob', content: 'x' } }))
    refusedAsWebPage(await broker.call('GET', '/health', { headers: { host: 'attacker.example' } }))
    expect(await broker.lastSeq()).toBe(before)
  })

  test('a link to the console from another site opens its page (which shows nothing before sign-in), and nothing else', async () => {
    const navigation = { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' }
    const page = await broker.call('GET', '/', { headers: navigation })
    expect(page.status).toBe(200)
    expect(page.type).toContain('text/html')
    // The same navigation to anything but the page, or a page's own fetch, or a rebound Host, is still refused.
    refusedAsWebPage(await broker.call('GET', '/partners', { token: alice, headers: navigation }))
    refusedAsWebPage(await broker.call('GET', '/session', { headers: navigation }))
    refusedAsWebPage(await broker.call('GET', '/', { headers: { ...navigation, 'sec-fetch-mode': 'cors', 'sec-fetch-dest': 'empty' } }))
    refusedAsWebPage(await broker.call('GET', '/', { headers: { ...navigation, origin: 'https://evil.example' } }))
    refusedAsWebPage(await broker.call('GET', '/', { headers: { ...navigation, host: `attacker.example:${broker.port}` } }))
  })

  test('a foreign Origin or cross-site fetch metadata is 403, even with a valid token', async () => {
    const before = await broker.lastSeq()
    const talk = { fromId: 'alice', to: 'bob', content: 'from a page' }
    for (const headers of <Record<string, string>[]>[
      { origin: 'https://evil.example' },
      { origin: 'null' },
      { origin: 'http://localhost:5173' },
      { origin: `http://127.0.0.1:${broker.port + 1}` },
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site' },
    ])
      refusedAsWebPage(await broker.call('POST', '/talk', { token: alice, headers, body: talk }))
    refusedAsWebPage(await broker.call('POST', '/register', { headers: { 'sec-fetch-site': 'cross-site' }, body: { partnerId: 'page' } }))
    expect(await broker.lastSeq()).toBe(before)
  })

  test("the broker's own origin passes (its console), as do typed-in addresses, IP literals and listed names", async () => {
    const own = { origin: `http://127.0.0.1:${broker.port}`, 'sec-fetch-site': 'same-origin' }
    expect((await broker.call('POST', '/talk', { token: alice, headers: own, body: { fromId: 'alice', to: 'bob', content: 'hi' } })).status).toBe(200)
    const viaLocalhost = { host: `localhost:${broker.port}`, origin: `http://localhost:${broker.port}`, 'sec-fetch-site': 'same-origin' }
    expect((await broker.call('GET', '/partners', { token: alice, headers: viaLocalhost })).status).toBe(200)
    expect((await broker.call('GET', '/health', { headers: { 'sec-fetch-site': 'none' } })).status).toBe(200)
    expect((await broker.call('GET', '/health', { headers: { host: `192.168.1.5:${broker.port}` } })).status).toBe(200)
    expect((await broker.call('GET', '/health', { headers: { host: `[::1]:${broker.port}` } })).status).toBe(200)
    // Behind a reverse proxy that forwards its own name (DUO_ALLOWED_HOSTS), the console's https origin is its own.
    const proxied = { host: 'duo.example.com', origin: 'https://duo.example.com', 'sec-fetch-site': 'same-origin' }
    expect((await broker.call('GET', '/partners', { token: alice, headers: proxied })).status).toBe(200)
  })

  test('fromOwnOrigin: an Origin naming the Host the request went to, and no other site', () => {
    const h = (entries: Record<string, string>) => new Headers(entries)
    expect(fromOwnOrigin(h({ host: '127.0.0.1:3210', origin: 'http://127.0.0.1:3210', 'sec-fetch-site': 'same-origin' }))).toBe(true)
    expect(fromOwnOrigin(h({ host: 'duo.example.com', origin: 'https://duo.example.com' }))).toBe(true)
    expect(fromOwnOrigin(h({ host: '127.0.0.1:3210', origin: 'http://127.0.0.1:3211' }))).toBe(false)
    expect(fromOwnOrigin(h({ host: '127.0.0.1:3210', origin: 'http://127.0.0.1:3210', 'sec-fetch-site': 'cross-site' }))).toBe(false)
    expect(fromOwnOrigin(h({ host: '127.0.0.1:3210' }))).toBe(false)
    expect(fromOwnOrigin(h({ host: '127.0.0.1:3210', origin: 'null' }))).toBe(false)
    const policy = { checkHost: true, allowedHosts: [] }
    expect(webPageRefusal(h({ host: '127.0.0.1:3210' }), policy)).toBeNull()
    expect(webPageRefusal(h({ host: 'app.localhost:3210' }), policy)).toBeNull()
    expect(webPageRefusal(h({ host: 'rebind.example:3210' }), policy)).toContain('DNS rebinding')
  })

  test('DUO_ALLOWED_HOSTS takes comma-separated names; a named BROKER_HOST is allowed by itself; anything else stops the start', () => {
    expect(configFromEnv({ DUO_ALLOWED_HOSTS: 'Duo.Example.com, box.local' }).allowedHosts).toEqual(['duo.example.com', 'box.local'])
    expect(configFromEnv({ BROKER_HOST: 'box.lan' }).allowedHosts).toEqual(['box.lan'])
    expect(configFromEnv({ BROKER_HOST: '0.0.0.0' }).allowedHosts).toEqual([])
    expect(() => configFromEnv({ DUO_ALLOWED_HOSTS: 'https://duo.example.com' })).toThrow('DUO_ALLOWED_HOSTS')
    expect(() => configFromEnv({ DUO_ALLOWED_HOSTS: 'duo.example.com:443' })).toThrow('DUO_ALLOWED_HOSTS')
  })
})

describe('where a project lives is shown only to the partner itself and the operator', () => {
  let broker: SecureBroker
  const tokens: Record<string, string> = {}
  let groupId: string
  beforeAll(async () => {
    broker = await startSecureBroker()
    for (const id of ['alice', 'bob']) {
      const answer = await broker.call('POST', '/register', { body: { partnerId: id, projectPath: `/home/${id}/secret-project` } })
      expect(answer.body.partner.project_path).toBe(`/home/${id}/secret-project`)
      tokens[id] = answer.body.token
    }
    const created = await broker.call('POST', '/conversations', { token: tokens.alice, body: { creatorId: 'alice', name: 'g', participants: ['bob'] } })
    groupId = created.body.conversation.id
  })
  afterAll(() => broker.close())

  const pathsIn = (partners: Array<{ id: string; project_path: string | null }>) => Object.fromEntries(partners.map((p) => [p.id, p.project_path]))

  test('/partners: its own path to a partner, every path to the operator, none to anyone else', async () => {
    expect(pathsIn((await broker.call('GET', '/partners', { token: tokens.bob })).body.partners)).toEqual({ alice: null, bob: '/home/bob/secret-project' })
    expect(pathsIn((await broker.call('GET', '/partners', { token: broker.adminToken })).body.partners)).toEqual({
      alice: '/home/alice/secret-project',
      bob: '/home/bob/secret-project',
    })
  })

  test('participants lists and re-registration answers follow the same rule', async () => {
    const participants = await broker.call('GET', `/conversations/${groupId}/participants`, { token: tokens.alice })
    expect(pathsIn(participants.body.participants)).toEqual({ alice: '/home/alice/secret-project', bob: null })
    const again = await broker.call('POST', '/register', { token: tokens.bob, body: { partnerId: 'bob', projectPath: '/home/bob/secret-project' } })
    expect(again.body.partner.project_path).toBe('/home/bob/secret-project')
  })

  test('in open mode nobody but the operator sees another partner’s path', async () => {
    const open = await startSecureBroker({ auth: 'open' })
    try {
      await open.call('POST', '/register', { body: { partnerId: 'carol', projectPath: '/home/carol/p' } })
      expect(pathsIn((await open.call('GET', '/partners')).body.partners)).toEqual({ carol: null })
      expect(pathsIn((await open.call('GET', '/partners', { token: open.adminToken })).body.partners)).toEqual({ carol: '/home/carol/p' })
    } finally {
      await open.close()
    }
  })
})
