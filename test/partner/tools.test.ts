// The partner's tools over an in-memory MCP transport, against a real broker on loopback.
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'bun:test'
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { RunningBroker } from '../../src/http/server.ts'
import {
  call,
  ChannelNotification,
  type ConnectedPartner,
  cleanTempDirs,
  connectPartner,
  inProcessBroker,
  partnerConfig,
  tempProject,
  textOf,
  waitFor,
} from './helpers.ts'

let broker: RunningBroker
const open: ConnectedPartner[] = []

beforeAll(async () => {
  broker = await inProcessBroker()
})
afterEach(async () => {
  for (const p of open.splice(0)) await p.close()
})
afterAll(async () => {
  await broker.stop()
  cleanTempDirs()
})

async function partner(name: string, over = {}) {
  const connected = await connectPartner(partnerConfig(tempProject(name), broker.url, over))
  open.push(connected)
  return connected
}
let n = 0
const unique = (base: string) => `${base}-${++n}-${Math.random().toString(36).slice(2, 6)}`

describe('registration', () => {
  test('registers on start and keeps its token in .duo/ (mode 0600, git-ignored)', async () => {
    const id = unique('alpha')
    const { running } = await partner(id)
    const dir = running.partner.config.projectDir
    const file = join(dir, '.duo', `${id}.json`)
    expect(statSync(file).mode & 0o777).toBe(0o600)
    const saved = JSON.parse(readFileSync(file, 'utf8'))
    expect(saved.brokers[broker.url].token).toStartWith('duo_')
    expect(readFileSync(join(dir, '.duo', '.gitignore'), 'utf8')).toContain('*')
    const health = await (await fetch(`${broker.url}/partners`, { headers: { authorization: `Bearer ${saved.brokers[broker.url].token}` } })).json()
    expect(health.partners.some((p: { id: string }) => p.id === id)).toBe(true)
  })

  test('register changes the display name and says what to do next', async () => {
    const { client } = await partner(unique('named'))
    const result = await call(client, 'register', { name: 'Backend team' })
    expect(result.isError).toBeFalsy()
    expect(result.structuredContent).toMatchObject({ name: 'Backend team', notificationsEnabled: true })
    expect(textOf(result)).toContain('list_partners')
  })
})

describe('a direct exchange', () => {
  test('talk then listen hands over the message once, then listen says nothing arrived', async () => {
    const a = await partner(unique('ann'))
    const b = await partner(unique('ben'))
    const sent = await call(a.client, 'talk', { message: 'hello ben', to: b.running.partner.id })
    expect(sent.isError).toBeFalsy()
    expect(sent.structuredContent).toMatchObject({ duplicate: false })
    const got = await call(b.client, 'listen', {})
    expect(got.structuredContent).toMatchObject({ timedOut: false, messages: [{ from: a.running.partner.id, content: 'hello ben' }] })
    expect(textOf(got)).toContain('hello ben')
    const again = await call(b.client, 'listen', { timeout: 0 })
    expect(again.structuredContent).toMatchObject({ timedOut: true, messages: [] })
    expect(textOf(again)).toContain('Call listen again')
  })
})
