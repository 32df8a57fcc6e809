// The web console in real headless Chromium against a real token-mode broker: sign-in, live views, acting as a human, and what a page may not do.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { fastOnly, slowDescribe } from '../slow.ts'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { NO_RATE_LIMITS } from '../../src/http/rate-limits.ts'
import { startTestBroker } from '../http/helpers.ts'
import { type SecureBroker, startSecureBroker } from '../http/secure-harness.ts'
import { launchChromium } from '../../scripts/chromium.ts'

/** Per test: past it, bun kills every process the file started, the shared browser too, so stay generous. */
const BROWSER_TEST_MS = 60_000

let broker: SecureBroker
let browser: Browser
const tokens: Record<string, string> = {}
/** Every URL any console page asked for, whatever the test: none may leave the broker's origin. */
const requested: string[] = []

beforeAll(async () => {
  if (fastOnly) return // every test here drives a real browser: the fast suite skips them all
  // The loop guard at 3 agent messages, so a pause is quick to reach; no rate limits (one test sends thousands).
  ;[broker, browser] = await Promise.all([startSecureBroker({ maxHops: 3, rateLimits: NO_RATE_LIMITS }), launchChromium()])
  browser.on('disconnected', () => closing || console.error('console test: the browser went away'))
  for (const id of ['alice', 'bob', 'carol']) tokens[id] = await broker.register(id)
  await broker.call('POST', '/talk', { token: tokens.alice, body: { fromId: 'alice', to: 'bob', content: 'hello bob' } })
}, 30_000)
let closing = false
afterAll(async () => {
  closing = true
  await browser?.close()
  await broker?.close()
})

async function newPage(): Promise<{ context: BrowserContext; page: Page; errors: string[] }> {
  const context = await browser.newContext()
  const page = await context.newPage()
  const errors: string[] = []
  page.on('request', (request) => requested.push(request.url()))
  page.on('pageerror', (error) => errors.push(error.message))
  page.on('crash', () => console.error('console test: the page crashed'))
  return { context, page, errors }
}

async function signedIn(): Promise<{ context: BrowserContext; page: Page; errors: string[] }> {
  const opened = await newPage()
  await opened.page.goto(`${broker.url}/`)
  await opened.page.fill('input[name=token]', broker.adminToken)
  await opened.page.click('button[type=submit]')
  await opened.page.waitForSelector('[data-testid=stream-state]:text("live")', { timeout: 10_000 })
  return opened
}

const openConversation = async (page: Page, id: string) => {
  await page.click(`[data-conversation="${id}"] button`)
  await page.waitForSelector('section.conversation .vlist')
}

slowDescribe('before sign-in', () => {
  test('the page shows only the sign-in form, and its data requests are refused', async () => {
    const { context, page } = await newPage()
    try {
      await page.goto(`${broker.url}/`)
      await page.waitForSelector('input[name=token]')
      const text = await page.textContent('body')
      expect(text).not.toContain('alice')
      expect(text).not.toContain('hello bob')
      const answers = await page.evaluate(async () => {
        const statuses: Record<string, number> = {}
        for (const path of ['/partners', '/conversations', '/events?after=0', '/events/stream?after=0', '/log/health'])
          statuses[path] = (await fetch(path)).status
        return statuses
      })
      expect(answers).toEqual({ '/partners': 401, '/conversations': 401, '/events?after=0': 401, '/events/stream?after=0': 401, '/log/health': 401 })
    } finally {
      await context.close()
    }
  }, BROWSER_TEST_MS)

  test('shows the sign-in form even when the broker answers before the page has subscribed to its state', async () => {
    const { context, page } = await newPage()
    try {
      // Preact runs effects after a frame, or after 100 ms without frames: with no frames, the first answer (GET
      // /session, a few ms) comes well before the page's subscription. A page that missed it stayed blank.
      await page.addInitScript(() => {
        ;(globalThis as any).requestAnimationFrame = () => 0
      })
      await page.goto(`${broker.url}/`)
      await page.waitForSelector('input[name=token]', { timeout: 5_000 })
    } finally {
      await context.close()
    }
  }, BROWSER_TEST_MS)

  test('a wrong token is refused in the API’s own words and sets no cookie', async () => {
    const { context, page } = await newPage()
    try {
      await page.goto(`${broker.url}/`)
      await page.fill('input[name=token]', 'not-the-operator-token')
      await page.click('button[type=submit]')
      await page.waitForSelector('[data-testid=notice]')
      expect(await page.textContent('[data-testid=notice]')).toContain('the bearer token is not valid')
      expect(await context.cookies()).toEqual([])
    } finally {
      await context.close()
    }
  }, BROWSER_TEST_MS)
})

slowDescribe('signed in', () => {
  let page: Page
  let context: BrowserContext
  let errors: string[]
  beforeAll(async () => {
    ;({ page, context, errors } = await signedIn())
  }, 30_000)
  afterAll(() => context.close())

  test('the session is an HttpOnly, SameSite=Strict cookie that no script can read', async () => {
    const cookies = await context.cookies()
    expect(cookies.map((c) => ({ name: c.name, httpOnly: c.httpOnly, sameSite: c.sameSite }))).toEqual([
      { name: 'duo_session', httpOnly: true, sameSite: 'Strict' },
    ])
    expect(await page.evaluate("document.cookie")).toBe("")
  }, BROWSER_TEST_MS)

  test('shows partners with their reachability, every conversation, and the log’s health', async () => {
    await page.waitForSelector('[data-partner="carol"]')
    expect(await page.textContent('[data-partner="alice"] [data-testid=reachability]')).toBeTruthy()
    await page.waitForSelector('[data-conversation="direct_alice_bob"]')
    const health = await page.textContent('[data-testid=log-health]')
    expect(health).toMatch(new RegExp(`last seq ${await broker.lastSeq()}`))
    expect(health).toMatch(/chain verified through seq \d+/)
  }, BROWSER_TEST_MS)

  test('a message sent through the API appears live, newest first, within a second', async () => {
    await openConversation(page, 'direct_alice_bob')
    await page.waitForSelector('.message:has-text("hello bob")')
    const started = Date.now()
    const sent = await broker.call('POST', '/talk', { token: tokens.bob, body: { fromId: 'bob', to: 'alice', content: 'live one' } })
    await page.waitForSelector(`.message[data-seq="${sent.body.seq}"]`, { timeout: 5000 })
    const elapsed = Date.now() - started
    expect(elapsed).toBeLessThan(1000)
    const order = await page.$$eval('section.conversation .message', (rows) => rows.map((r) => Number(r.getAttribute('data-seq'))))
    expect(order[0]).toBe(sent.body.seq)
    expect(order).toEqual([...order].sort((a, b) => b - a))
    // The event log shows it too, as it grows.
    await page.waitForSelector(`.event[data-seq="${sent.body.seq}"]`)
  }, BROWSER_TEST_MS)

  test("a person's post reaches an agent's listen, marked as a human's", async () => {
    await openConversation(page, 'direct_alice_bob')
    const after = await broker.lastSeq()
    const heard = broker.call('GET', `/listen/alice?after=${after}&wait=10`, { token: tokens.alice })
    await page.fill('section.conversation textarea', 'a word from the operator')
    await page.click('section.conversation button[type=submit]')
    const answer = await heard
    expect(answer.status).toBe(200)
    const message = answer.body.messages.find((m: any) => m.content === 'a word from the operator')
    expect(message).toMatchObject({ from_id: 'human', from_kind: 'human', conversation_id: 'direct_alice_bob' })
    await page.waitForSelector(`.message.from-human[data-seq="${message.seq}"]`)
    const partners = await broker.call('GET', '/partners', { token: broker.adminToken })
    expect(partners.body.partners.find((p: any) => p.id === 'human')?.kind).toBe('human')
  }, BROWSER_TEST_MS)

  test('messages a partner directly and creates a group through the same commands as the API', async () => {
    await page.click('[data-partner="carol"] button')
    await page.fill('textarea[aria-label="message to carol"]', 'hi carol, from a person')
    await page.click('section.partners button[type=submit]')
    await page.waitForSelector('[data-testid=notice]:has-text("message to carol"), [data-testid=notice][role=alert]', { timeout: 5000 })
    expect(await page.textContent('[data-testid=notice]')).toContain('message to carol: done')
    const heard = await broker.call('GET', '/listen/carol?after=0&wait=5', { token: tokens.carol })
    expect(heard.body.messages.map((m: any) => [m.from_id, m.content])).toContainEqual(['human', 'hi carol, from a person'])

    await page.fill('input[aria-label="group name"]', 'Release')
    await page.fill('input[aria-label="group members"]', 'alice, bob')
    await page.click('form.new-group button[type=submit]')
    await page.waitForSelector('[data-conversation^="group_"]')
    const events = await broker.call('GET', '/events?type=ConversationCreated', { token: broker.adminToken })
    const created = events.body.events.at(-1)
    expect(created.data).toMatchObject({ kind: 'group', name: 'Release', createdBy: 'human', participants: ['human', 'alice', 'bob'] })
  }, BROWSER_TEST_MS)

  test('bad input gets the same clear error as the API, and changes nothing', async () => {
    const before = await broker.lastSeq()
    const api = await broker.call('POST', '/conversations', {
      token: broker.adminToken,
      body: { creatorId: 'human', name: 'Lonely', participants: ['nobody-here'] },
    })
    expect(api.status).toBe(404)
    expect(api.body.reason).toBe('unknown_partner')
    await page.fill('input[aria-label="group name"]', 'Lonely')
    await page.fill('input[aria-label="group members"]', 'nobody-here')
    await page.click('form.new-group button[type=submit]')
    await page.waitForSelector('[data-testid=notice][role=alert]')
    expect(await page.textContent('[data-testid=notice]')).toContain(api.body.error)
    expect(await broker.lastSeq()).toBe(before)
  }, BROWSER_TEST_MS)

  test('the event log filters by type, partner and conversation', async () => {
    await page.selectOption('select[aria-label="filter by type"]', 'MessageSent')
    const types = await page.$$eval('.event .type', (cells) => [...new Set(cells.map((c) => c.textContent))])
    expect(types).toEqual(['MessageSent'])
    await page.fill('input[aria-label="filter by partner"]', 'carol')
    const carolOnly = await page.$$eval('.event .data', (cells) => cells.map((c) => c.textContent ?? ''))
    expect(carolOnly.length).toBeGreaterThan(0)
    for (const text of carolOnly) expect(text).toContain('carol')
    await page.fill('input[aria-label="filter by partner"]', '')
    await page.fill('input[aria-label="filter by conversation"]', 'direct_alice_bob')
    const inConversation = await page.$$eval('.event .data', (cells) => cells.map((c) => c.textContent ?? ''))
    for (const text of inConversation) expect(text).toContain('"conversationId":"direct_alice_bob"')
    await page.selectOption('select[aria-label="filter by type"]', '')
    await page.fill('input[aria-label="filter by conversation"]', '')
  }, BROWSER_TEST_MS)

  test('a conversation of thousands of messages keeps only the rows in view in the page, and pages older ones in on scroll', async () => {
    await broker.call('POST', '/talk', { token: tokens.carol, body: { fromId: 'carol', to: 'bob', content: 'bulk start' } })
    // Sent by the person (the operator speaking as "human"): the loop guard counts only agents.
    for (let from = 0; from < 2500; from += 250)
      await Promise.all(
        Array.from({ length: 250 }, (_, i) =>
          broker.call('POST', '/talk', {
            token: broker.adminToken,
            body: { fromId: 'human', conversationId: 'direct_bob_carol', content: `bulk ${from + i}` },
          }),
        ),
      )
    await openConversation(page, 'direct_bob_carol')
    await page.waitForSelector('.message:has-text("bulk 2499")')
    const list = 'section.conversation .vlist'
    const rows = () => page.$$eval(`${list} .message`, (found) => found.length)
    const height = () => page.$eval(`${list} > div`, (inner) => (inner as any).offsetHeight as number)
    expect(await rows()).toBeLessThan(60)
    const firstPage = await height()
    // To the oldest loaded message: the next page comes in, and still only the rows in view are in the page.
    await page.$eval(list, (box) => {
      ;(box as any).scrollTop = (box as any).scrollHeight
    })
    await page.waitForFunction(
      ([selector, before]) => (globalThis as any).document.querySelector(selector).offsetHeight > before,
      [`${list} > div`, firstPage] as const,
      { timeout: 10_000 },
    )
    expect(await height()).toBeGreaterThan(firstPage)
    expect(await rows()).toBeLessThan(60)
  }, BROWSER_TEST_MS)

  test('a conversation the loop guard paused shows it; Resume lets its agents talk again, Pause stops them', async () => {
    const say = (content: string) =>
      broker.call('POST', '/talk', { token: tokens.alice, body: { fromId: 'alice', to: 'carol', content } })
    for (const n of [1, 2, 3]) expect((await say(`reflex ${n}`)).status).toBe(200)
    const refused = await say('reflex 4')
    expect(refused.status).toBe(409)
    expect(refused.body.reason).toBe('conversation_paused')
    await openConversation(page, 'direct_alice_carol')
    await page.waitForSelector('[data-testid=paused]')
    await page.click('section.conversation button:text("Resume")')
    await page.waitForSelector('[data-testid=paused]', { state: 'detached' })
    expect((await say('after the resume')).status).toBe(200)
    const resumed = await broker.call('GET', '/events?type=ConversationResumed', { token: broker.adminToken })
    expect(resumed.body.events.at(-1).data).toMatchObject({ conversationId: 'direct_alice_carol' })
    // A person pauses it by hand: agents are refused until Resume.
    await page.click('section.conversation button:text("Pause")')
    await page.waitForSelector('[data-testid=paused]')
    expect((await say('while paused by hand')).body.reason).toBe('conversation_paused')
    await page.click('section.conversation button:text("Resume")')
    await page.waitForSelector('[data-testid=paused]', { state: 'detached' })
    expect((await say('talking again')).status).toBe(200)
  }, BROWSER_TEST_MS)

  test("changes a group's members as a person, without being one of them", async () => {
    const created = await broker.call('POST', '/conversations', {
      token: tokens.alice,
      body: { creatorId: 'alice', name: 'Agents only', participants: ['bob'] },
    })
    const id = created.body.conversation.id as string
    await page.waitForSelector(`[data-conversation="${id}"]`)
    await openConversation(page, id)
    await page.fill('input[aria-label="add member"]', 'carol')
    await page.click('form.inline button[type=submit]')
    await page.waitForSelector('.member:has-text("carol")')
    await page.click('button[aria-label="remove bob"]')
    await page.waitForSelector('.member:has-text("bob")', { state: 'detached' })
    const members = await broker.call('GET', `/conversations/${id}/participants`, { token: broker.adminToken })
    expect(members.body.participants.map((p: any) => p.id).sort()).toEqual(['alice', 'carol'])
    const log = await broker.call('GET', `/events?after=0&limit=1000&conversation=${id}`, { token: broker.adminToken })
    const changes = log.body.events.filter((e: any) => e.type === 'ParticipantsAdded' || e.type === 'ParticipantLeft')
    expect(changes.map((e: any) => [e.type, e.data])).toEqual([
      ['ParticipantsAdded', { conversationId: id, addedBy: 'human', partnerIds: ['carol'] }],
      ['ParticipantLeft', { conversationId: id, partnerId: 'bob', removedBy: 'human' }],
    ])
  }, BROWSER_TEST_MS)

  test("each message shows its delivery state per recipient, live, or says plainly that this broker has none", async () => {
    const sent = await broker.call('POST', '/talk', { token: tokens.alice, body: { fromId: 'alice', to: 'bob', content: 'receipt me' } })
    const seq = sent.body.seq as number
    await openConversation(page, 'direct_alice_bob')
    await page.waitForSelector(`.message[data-seq="${seq}"]`)
    const probe = await broker.call('GET', `/messages/${seq}/receipts`, { token: broker.adminToken })
    if (probe.status === 404 && /no such endpoint/.test(probe.body.error)) {
      await page.waitForSelector('[data-testid=receipts-unavailable]')
      expect(await page.textContent(`.message[data-seq="${seq}"] .meta`)).toContain('stored')
      return
    }
    expect(probe.status).toBe(200)
    const row = `.message[data-seq="${seq}"] [data-testid=receipts]`
    await page.waitForSelector(`${row}:has-text("bob: ${probe.body.recipients[0].state}")`)
    // Bob reads it (a cursor long-poll past it acknowledges it): the page shows "read" without a reload.
    await broker.call('GET', `/listen/bob?after=${seq}&wait=0`, { token: tokens.bob })
    await page.waitForSelector(`${row}:has-text("bob: read")`, { timeout: 10_000 })
  }, BROWSER_TEST_MS)

  test('no page error, and no request ever left the broker’s origin', () => {
    expect(errors).toEqual([])
    expect(requested.length).toBeGreaterThan(0)
    expect(requested.filter((url) => !url.startsWith(`${broker.url}/`) && !url.startsWith('data:'))).toEqual([])
  })
})

slowDescribe('the session cookie', () => {
  test('a cross-site request carrying it is refused and changes nothing', async () => {
    const { context, page } = await signedIn()
    try {
      const cookie = (await context.cookies()).map((c) => `${c.name}=${c.value}`).join('; ')
      const before = await broker.lastSeq()
      const talk = { fromId: 'human', to: 'alice', content: 'forged by a page' }
      const fromElsewhere = await broker.call('POST', '/talk', { body: talk, headers: { cookie, origin: 'https://evil.example' } })
      expect(fromElsewhere.status).toBe(403)
      expect(fromElsewhere.body.reason).toBe('web_page_refused')
      const crossSite = await broker.call('GET', '/events?after=0', { headers: { cookie, 'sec-fetch-site': 'cross-site' } })
      expect(crossSite.status).toBe(403)
      expect(crossSite.body.reason).toBe('web_page_refused')
      const sameSite = await broker.call('GET', '/events?after=0', { headers: { cookie, 'sec-fetch-site': 'same-site' } })
      expect(sameSite.status).toBe(403)
      // The same cookie from the console's own origin works: the refusals above were about where they came from.
      const own = await broker.call('GET', '/log/health', { headers: { cookie, origin: broker.url, 'sec-fetch-site': 'same-origin' } })
      expect(own.status).toBe(200)
      expect(await broker.lastSeq()).toBe(before)
    } finally {
      await context.close()
    }
  }, BROWSER_TEST_MS)

  test('a page of another origin cannot use it from the browser either', async () => {
    const { context, page } = await signedIn()
    // 127.0.0.2 is loopback too, but another site than 127.0.0.1 for the browser and another origin for the broker.
    const evil = Bun.serve({
      port: 0,
      hostname: '127.0.0.2',
      fetch: () => new Response('<!doctype html><title>elsewhere</title>', { headers: { 'content-type': 'text/html' } }),
    })
    try {
      const before = await broker.lastSeq()
      await page.goto(`http://127.0.0.2:${evil.port}/`)
      const outcome = await page.evaluate(async (url) => {
        try {
          const response = await fetch(`${url}/talk`, {
            method: 'POST',
            credentials: 'include',
            mode: 'no-cors',
            headers: { 'content-type': 'text/plain' },
            body: JSON.stringify({ fromId: 'human', to: 'alice', content: 'from another page' }),
          })
          return response.type
        } catch (error) {
          return `failed: ${(error as Error).message}`
        }
      }, broker.url)
      expect(outcome === 'opaque' || outcome.startsWith('failed')).toBe(true)
      expect(await broker.lastSeq()).toBe(before)
    } finally {
      evil.stop(true)
      await context.close()
    }
  }, BROWSER_TEST_MS)

  test('signing out ends the session at once: the page asks for the token again and the old cookie is refused', async () => {
    const { context, page } = await signedIn()
    try {
      const cookie = (await context.cookies()).map((c) => `${c.name}=${c.value}`).join('; ')
      await page.click('button:text("Sign out")')
      await page.waitForSelector('input[name=token]')
      expect(await context.cookies()).toEqual([])
      const after = await broker.call('GET', '/log/health', { headers: { cookie } })
      expect(after.status).toBe(401)
    } finally {
      await context.close()
    }
  }, BROWSER_TEST_MS)
})

slowDescribe('a session that ends elsewhere', () => {
  test('takes an open console back to the sign-in form, its live stream included', async () => {
    const { context, page } = await signedIn()
    try {
      const cookie = (await context.cookies()).map((c) => `${c.name}=${c.value}`).join('; ')
      expect((await broker.call('DELETE', '/session', { headers: { cookie } })).status).toBe(200)
      // The next event wakes the open stream, which finds its session over and ends; the page then asks again.
      await broker.call('POST', '/talk', { token: tokens.bob, body: { fromId: 'bob', to: 'alice', content: 'after the sign-out' } })
      await page.waitForSelector('input[name=token]', { timeout: 20_000 })
      expect(await page.textContent('[data-testid=notice]')).toContain('sign in again')
      expect(await page.textContent('body')).not.toContain('after the sign-out')
    } finally {
      await context.close()
    }
  }, BROWSER_TEST_MS)
})

slowDescribe('open mode', () => {
  test('shows the console without a sign-in, as the API answers without a token there', async () => {
    const open = await startTestBroker({ rateLimits: NO_RATE_LIMITS })
    const context = await browser.newContext()
    try {
      await open.register('alice', 'bob')
      await open.talk('alice', { to: 'bob' }, 'open talk')
      const page = await context.newPage()
      await page.goto(`${open.url}/#c=direct_alice_bob`)
      await page.waitForSelector('.message:has-text("open talk")')
      expect(await page.$('input[name=token]')).toBeNull()
      expect(await page.textContent('header')).toContain('open mode')
    } finally {
      await context.close()
      await open.close()
    }
  }, BROWSER_TEST_MS)
})

slowDescribe('/docs', () => {
  test('renders offline from the broker’s own files and shows which endpoints take which token', async () => {
    const { context, page, errors } = await newPage()
    const mine: string[] = []
    page.on('request', (request) => mine.push(request.url()))
    try {
      await page.goto(`${broker.url}/docs`)
      await page.waitForSelector('.opblock', { timeout: 15_000 })
      expect(await page.textContent('body')).toContain('/talk')
      expect(await page.$$('.btn.authorize')).not.toHaveLength(0)
      // A lock on each endpoint that takes a token, none on the public ones.
      expect(await page.$$('.opblock .authorization__btn')).not.toHaveLength(0)
      const spec = (await broker.call('GET', '/docs/json')).body
      const schemes = (path: string, method: string) =>
        (spec.paths[path][method].security ?? []).map((s: object) => Object.keys(s)[0] ?? 'none').sort()
      expect(schemes('/talk', 'post')).toEqual(['consoleSession', 'operatorToken', 'partnerToken'])
      expect(schemes('/events', 'get')).toEqual(['consoleSession', 'operatorToken'])
      expect(schemes('/register', 'post')).toEqual(['consoleSession', 'none', 'operatorToken', 'partnerToken'])
      expect(schemes('/health', 'get')).toEqual([])
      expect(mine.filter((url) => !url.startsWith(`${broker.url}/`) && !url.startsWith('data:'))).toEqual([])
      expect(errors).toEqual([])
    } finally {
      await context.close()
    }
  }, BROWSER_TEST_MS)
})
