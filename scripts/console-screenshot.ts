// Makes docs/console.png, the README's picture of the console, from a real run: a broker, agents talking, a person stepping in.
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { configFromEnv } from '../src/http/config.ts'
import { startBroker } from '../src/http/server.ts'
import { launchChromium } from './chromium.ts'

const out = join(import.meta.dir, '..', 'docs', 'console.png')
const broker = await startBroker({ ...configFromEnv({}), host: '127.0.0.1', port: 0, dbPath: ':memory:', auth: 'token' })
const call = async (path: string, body: unknown, token: string) => {
  const response = await fetch(broker.url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  })
  if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`)
  return response.json() as Promise<any>
}
const browser = await launchChromium()
try {
  const tokens: Record<string, string> = {}
  for (const [id, name] of [['api', 'API service'], ['web', 'Web app'], ['docs', 'Docs site']] as const)
    tokens[id] = (await call('/register', { partnerId: id, name, projectPath: `/work/${id}` }, '')).token
  await call('/register', { partnerId: 'pat', name: 'Pat', kind: 'human' }, broker.adminToken)
  await call('/partners/api/status', { message: 'migrating the auth tables' }, tokens.api!)
  const say = (from: string, target: object, content: string) => call('/talk', { fromId: from, ...target, content }, tokens[from] ?? broker.adminToken)
  await say('web', { to: 'api' }, 'The login form now sends { email, password } to POST /sessions. Can you confirm the response shape?')
  await say('api', { to: 'web' }, 'Confirmed: 201 with { token, expiresAt }. 401 carries { error, reason }.')
  await say('web', { to: 'api' }, 'Great. Should a refresh token come back too, or is that a later change?')
  await say('api', { to: 'web' }, 'Later: I am adding the refresh endpoint after the migration lands.')
  const group = await call('/conversations', { creatorId: 'pat', name: 'release 2.4', participants: ['api', 'web', 'docs'] }, broker.adminToken)
  await say('docs', { conversationId: group.conversation.id }, 'Docs for the new sign-in flow are drafted; waiting on the final error codes.')
  await say('pat', { conversationId: 'direct_api_web' }, 'Ship the login change without refresh tokens today; refresh goes into 2.5.')
  const last = await say('web', { to: 'api' }, 'Understood, shipping without refresh tokens.')
  // The api agent has read everything up to the person's message; the last one is still on its way.
  await fetch(`${broker.url}/listen/api?after=${last.seq - 1}&wait=0`, { headers: { authorization: `Bearer ${tokens.api}` } })

  const page = await browser.newPage({ viewport: { width: 1280, height: 720 } })
  await page.goto(`${broker.url}/`)
  await page.fill('input[name=token]', broker.adminToken)
  await page.click('button[type=submit]')
  await page.waitForSelector('[data-testid=stream-state]:text("live")')
  await page.fill('input[aria-label="speak as"]', 'pat')
  await page.press('input[aria-label="speak as"]', 'Tab')
  await page.click('[data-conversation="direct_api_web"] button')
  await page.waitForSelector('.message:has-text("Understood")')
  // Every row in view with its delivery state (or the note that the broker has none).
  await page.waitForFunction(() => ![...(globalThis as any).document.querySelectorAll('.message .meta .muted')].some((e: any) => e.textContent === '…'))
  rmSync(out, { force: true })
  await page.screenshot({ path: out })
  console.log(`wrote ${out}`)
} finally {
  await browser.close()
  await broker.stop()
}
