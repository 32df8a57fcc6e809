// Web pages against a real token-mode broker, in real headless Chromium: a page of another origin and a DNS-rebinding
// page get nothing done, while a page of the broker's own origin works.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { fastOnly, slowDescribe } from '../slow.ts'
import type { Browser, Page } from 'playwright-core'
import { launchChromium } from '../../scripts/chromium.ts'
import { type SecureBroker, startSecureBroker } from './secure-harness.ts'

/** A name of the attacker's that Chromium resolves to the broker's address, as DNS rebinding makes it. */
const REBOUND = 'rebind.test'

let broker: SecureBroker
let browser: Browser
let attacker: ReturnType<typeof Bun.serve>
let alice: string

beforeAll(async () => {
  if (fastOnly) return // every test here drives a real browser: the fast suite skips them all
  ;[broker, browser] = await Promise.all([startSecureBroker(), launchChromium([`--host-resolver-rules=MAP ${REBOUND} 127.0.0.1`])])
  alice = await broker.register('alice')
  await broker.register('bob')
  // The attacker's site: an empty page on another origin of this machine.
  attacker = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: () => new Response('<!doctype html><title>cat pictures</title>', { headers: { 'content-type': 'text/html' } }) })
}, 30_000)
afterAll(async () => {
  await browser?.close()
  attacker?.stop(true)
  await broker?.close()
})

async function page(url: string): Promise<{ page: Page; status: number | undefined; close(): Promise<void> }> {
  const context = await browser.newContext()
  const opened = await context.newPage()
  const response = await opened.goto(url)
  return { page: opened, status: response?.status(), close: () => context.close() }
}

/** Ids registered so far, read by the operator. */
const partnerIds = async () => ((await broker.call('GET', '/partners', { token: broker.adminToken })).body.partners as { id: string }[]).map((p) => p.id)

slowDescribe('a page of another origin', () => {
  test('cannot register, talk or read: its requests fail in the page and the log does not change', async () => {
    const before = await broker.lastSeq()
    const { page: evil, close } = await page(`http://127.0.0.1:${attacker.port}/`)
    try {
      const outcomes = await evil.evaluate(
        async ({ base, token }) => {
          const attempt = async (run: () => Promise<Response>) => {
            try {
              const response = await run()
              return response.type === 'opaque' ? 'opaque' : `status ${response.status}`
            } catch {
              return 'failed'
            }
          }
          const json = { 'content-type': 'application/json' }
          return {
            // Needs a CORS preflight, which the broker refuses.
            register: await attempt(() => fetch(`${base}/register`, { method: 'POST', headers: json, body: JSON.stringify({ partnerId: 'page' }) })),
            read: await attempt(() => fetch(`${base}/partners`, { headers: { authorization: `Bearer ${token}` } })),
            // The requests a page may send without a preflight: the broker refuses them, the page learns nothing.
            blind: await attempt(() =>
              fetch(`${base}/talk`, { method: 'POST', mode: 'no-cors', body: JSON.stringify({ fromId: 'alice', to: 'bob', content: 'x' }) }),
            ),
            blindRegister: await attempt(() => fetch(`${base}/register`, { method: 'POST', mode: 'no-cors', body: '{"partnerId":"page"}' })),
          }
        },
        { base: broker.url, token: alice },
      )
      expect(outcomes).toEqual({ register: 'failed', read: 'failed', blind: 'opaque', blindRegister: 'opaque' })
      // A form the page submits is a cross-site navigation: refused, as the broker's answer in the window shows.
      await evil.setContent(
        `<form method="post" enctype="text/plain" action="${broker.url}/register"><input name='{"partnerId":"page","x":"' value='"}'></form>`,
      )
      const [navigation] = await Promise.all([evil.waitForNavigation(), evil.evaluate('document.forms[0].submit()')])
      expect(navigation?.status()).toBe(403)
      expect(await evil.textContent('body')).toContain('web_page_refused')
    } finally {
      await close()
    }
    expect(await broker.lastSeq()).toBe(before)
    expect(await partnerIds()).toEqual(['alice', 'bob'])
  })
})

slowDescribe('a DNS-rebinding page (its own name now resolves to the broker)', () => {
  test('is refused by Host: same-origin requests from it register nothing, read nothing and send nothing', async () => {
    const before = await broker.lastSeq()
    const { page: rebound, status, close } = await page(`http://${REBOUND}:${broker.port}/`)
    try {
      expect(status).toBe(403)
      const answers = await rebound.evaluate(async (token) => {
        const json = { 'content-type': 'application/json' }
        const read = async (response: Promise<Response>) => {
          const r = await response
          return { status: r.status, reason: ((await r.json()) as { reason?: string }).reason }
        }
        return [
          await read(fetch('/register', { method: 'POST', headers: json, body: JSON.stringify({ partnerId: 'page' }) })),
          await read(fetch('/partners', { headers: { authorization: `Bearer ${token}` } })),
          await read(fetch('/talk', { method: 'POST', headers: { ...json, authorization: `Bearer ${token}` }, body: JSON.stringify({ fromId: 'alice', to: 'bob', content: 'x' }) })),
          await read(fetch('/health')),
        ]
      }, alice)
      expect(answers).toEqual(Array(4).fill({ status: 403, reason: 'web_page_refused' }))
    } finally {
      await close()
    }
    expect(await broker.lastSeq()).toBe(before)
    expect(await partnerIds()).toEqual(['alice', 'bob'])
  })
})

slowDescribe("a page of the broker's own origin", () => {
  test('works: same-origin requests pass (the console is such a page)', async () => {
    const { page: own, status, close } = await page(`${broker.url}/health`)
    try {
      expect(status).toBe(200)
      const answers = await own.evaluate(async (token) => {
        const registered = await fetch('/register', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ partnerId: 'own-page' }) })
        const listed = await fetch('/partners', { headers: { authorization: `Bearer ${token}` } })
        return [registered.status, listed.status]
      }, alice)
      expect(answers).toEqual([200, 200])
    } finally {
      await close()
    }
    expect(await partnerIds()).toContain('own-page')
  })
})
