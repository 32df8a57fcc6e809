// Honest presence through real partners: reachability and sessions, a second process of the same id, and replies.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { slowTest } from '../slow.ts'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js'
import type { RunningBroker } from '../../src/http/server.ts'
import {
  call,
  ChannelNotification,
  type ConnectedPartner,
  cleanTempDirs,
  connectPartner,
  inProcessBroker,
  partnerConfig,
  ROOT,
  tempProject,
  textOf,
  waitFor,
} from './helpers.ts'

let broker: RunningBroker
const open: ConnectedPartner[] = []

beforeAll(async () => {
  broker = await inProcessBroker()
})
afterAll(async () => {
  for (const p of open.splice(0)) await p.close().catch(() => {})
  await broker.stop()
  cleanTempDirs()
})

let n = 0
const unique = (base: string) => `${base}-${++n}-${Math.random().toString(36).slice(2, 6)}`

async function start(project: string, options: { channels?: boolean; name?: string } = {}) {
  const connected = await connectPartner(partnerConfig(project, broker.url, options.name ? { partnerName: options.name } : {}), {
    channels: options.channels,
  })
  open.push(connected)
  return connected
}

type Listed = { id: string; name: string; status: string; reachability: string; sessions: number }
async function listed(id: string): Promise<Listed | undefined> {
  const response = await fetch(`${broker.url}/partners`, { headers: { authorization: `Bearer ${broker.adminToken}` } })
  return ((await response.json()) as { partners: Listed[] }).partners.find((p) => p.id === id)
}
const reach = (id: string, reachability: string, sessions: number) => async () => {
  const p = await listed(id)
  return p?.reachability === reachability && p.sessions === sessions ? p : undefined
}

describe('reachability', () => {
  test('push for a client that declared claude/channel, connected for one that did not, offline once it stops', async () => {
    const withChannels = await start(tempProject(unique('pushy')))
    const without = await start(tempProject(unique('plain')), { channels: false })
    await waitFor('push, 1 session', reach(withChannels.running.partner.id, 'push', 1))
    await waitFor('connected, 1 session', reach(without.running.partner.id, 'connected', 1))
    open.splice(open.indexOf(without), 1)
    await without.close()
    const gone = await listed(without.running.partner.id)
    expect(gone).toMatchObject({ status: 'offline', reachability: 'offline', sessions: 0 })
  })

  test('list_partners tells the model how each partner is reached', async () => {
    const a = await start(tempProject(unique('lister')))
    const b = await start(tempProject(unique('quiet')), { channels: false })
    await waitFor('both followers', async () => (await reach(b.running.partner.id, 'connected', 1)()) && (await reach(a.running.partner.id, 'push', 1)()))
    const result = await call(a.client, 'list_partners')
    const partners = (result.structuredContent as { partners: Array<{ id: string; reachability: string; sessions: number }> }).partners
    expect(partners.find((p) => p.id === b.running.partner.id)).toMatchObject({ reachability: 'connected', sessions: 1 })
    expect(textOf(result)).toContain(`${b.running.partner.id}: online, sees messages at their next tool call`)
  })

  test("talk tells the model who sees the message now and who later", async () => {
    const a = await start(tempProject(unique('teller')))
    const pushed = await start(tempProject(unique('pushed')))
    const later = await start(tempProject(unique('later')), { channels: false })
    await waitFor('followers', async () => (await reach(pushed.running.partner.id, 'push', 1)()) && (await reach(later.running.partner.id, 'connected', 1)()))
    const group = await call(a.client, 'create_conversation', { name: 'Trio', participants: `${pushed.running.partner.id},${later.running.partner.id}` })
    const groupId = (group.structuredContent as { conversationId: string }).conversationId
    const sent = await call(a.client, 'talk', { conversation: groupId, message: 'hi both' })
    expect(textOf(sent)).toContain(`${pushed.running.partner.id} sees it now (pushed into their session).`)
    expect(textOf(sent)).toContain(`${later.running.partner.id} sees it later, at their next tool call or prompt.`)
    expect((sent.structuredContent as { recipients: unknown[] }).recipients).toEqual(
      expect.arrayContaining([
        { partnerId: pushed.running.partner.id, reachability: 'push' },
        { partnerId: later.running.partner.id, reachability: 'connected' },
      ]),
    )
  })
})

describe('a second process with the same id', () => {
  slowTest('counts as a second session; when it ends the partner stays online, keeps its name and its read position', async () => {
    const project = tempProject(unique('shared'))
    const first = await start(project, { name: 'Main session' })
    const bob = await start(tempProject(unique('bob')))
    const id = first.running.partner.id
    await waitFor('one session', reach(id, 'push', 1))

    await call(bob.client, 'talk', { to: id, message: 'one' })
    const got = await call(first.client, 'listen', { timeout: 0.05 })
    expect(textOf(got)).toContain('one')

    // A second session in the project, under another name: it shares the inbox and renames nothing.
    const second = await start(project, { name: 'Intruder' })
    await waitFor('two sessions', reach(id, 'push', 2))
    expect((await listed(id))?.name).toBe('Main session')
    await call(bob.client, 'talk', { to: id, message: 'two' })
    const fromFirst = await call(first.client, 'listen', { timeout: 0.05 })
    expect(textOf(fromFirst)).toContain('two')
    // The second session does not get what the first was handed (one shared inbox), and its saving leaves the cursor.
    const cursor = first.running.partner.position.cursor
    await waitFor('the first cursor saved', () => stateCursor(project, id) >= cursor)
    const fromSecond = await call(second.client, 'listen', { timeout: 0.05 })
    expect((fromSecond.structuredContent as { messages: unknown[] }).messages).toEqual([])
    second.running.partner.forgetRegistration()
    await second.running.partner.register()
    expect(stateCursor(project, id)).toBeGreaterThanOrEqual(cursor)

    open.splice(open.indexOf(second), 1)
    await second.close()
    await waitFor('back to one session', reach(id, 'push', 1))
    expect(await listed(id)).toMatchObject({ status: 'online', name: 'Main session' })
  })

  test("a health check (claude mcp list starts the server, then closes it) leaves the live partner online", async () => {
    const project = tempProject(unique('checked'))
    const live = await start(project)
    const id = live.running.partner.id
    await waitFor('live', reach(id, 'push', 1))

    const { CLAUDE_PROJECT_DIR, DUO_PROJECT_DIR, PARTNER_ID, PARTNER_NAME, ...inherited } = process.env as Record<string, string>
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [join(ROOT, 'src/partner/index.ts')],
      cwd: project,
      env: { ...inherited, BROKER_URL: broker.url, PARTNER_NAME: 'health check' },
      stderr: 'ignore',
    })
    const check = new Client({ name: 'claude-health-check', version: '0.0.0' })
    await check.connect(transport)
    await waitFor('the check to be a session', reach(id, 'push', 2), 10_000)
    await check.close()
    await waitFor('the check to be gone', reach(id, 'push', 1), 10_000)
    expect(await listed(id)).toMatchObject({ status: 'online', reachability: 'push', name: id })
  })
})

describe('replying', () => {
  slowTest('after the model answers a pushed message, listen does not offer it again and the unread notice is gone', async () => {
    const alice = await start(tempProject(unique('alice')))
    const bob = await start(tempProject(unique('bob')))
    const pushes: ChannelNotification[] = []
    alice.client.setNotificationHandler(ChannelNotification, (note) => {
      pushes.push(note)
    })
    await waitFor('alice reachable by push', reach(alice.running.partner.id, 'push', 1))
    await call(bob.client, 'talk', { to: alice.running.partner.id, message: 'ping?' })
    const push = await waitFor('the push', () => pushes.find((p) => p.params.content.includes('ping?')))
    const seq = Number(push.params.meta.seq)
    await waitFor('the push reported', async () => {
      const r = await fetch(`${broker.url}/messages/${seq}/receipts`, { headers: { authorization: `Bearer ${broker.adminToken}` } })
      return ((await r.json()) as { recipients: Array<{ state: string }> }).recipients[0]?.state === 'pushed'
    })

    const reply = await call(alice.client, 'talk', { conversation: push.params.meta.conversation, message: 'pong' })
    expect(textOf(reply)).toContain('Sent message')
    const listened = await call(alice.client, 'listen', { timeout: 0.05 })
    expect((listened.structuredContent as { messages: unknown[] }).messages).toEqual([])
    expect(textOf(listened)).not.toContain('unread')
    const status = await call(alice.client, 'set_status', { message: 'after the reply' })
    expect(textOf(status)).not.toContain('[Duo] You have')
  })
})

describe('history', () => {
  test("shows, for the sender's own messages, where each recipient stands", async () => {
    const alice = await start(tempProject(unique('sender')))
    const bob = await start(tempProject(unique('reader')), { channels: false })
    const carol = await start(tempProject(unique('away')), { channels: false })
    const bobId = bob.running.partner.id
    const carolId = carol.running.partner.id
    const group = await call(alice.client, 'create_conversation', { name: 'Review', participants: `${bobId},${carolId}` })
    const groupId = (group.structuredContent as { conversationId: string }).conversationId
    const sent = await call(alice.client, 'talk', { conversation: groupId, message: 'please review' })
    const seq = (sent.structuredContent as { seq: number }).seq
    expect(textOf(await call(bob.client, 'listen', { timeout: 0.05 }))).toContain('please review')
    await waitFor('bob read it', async () => {
      const history = await call(alice.client, 'history', { conversation: groupId })
      const yours = (history.structuredContent as { yours: Array<{ seq: number; recipients: Array<{ partnerId: string; state: string }> }> }).yours
      return yours.find((m) => m.seq === seq)?.recipients.find((r) => r.partnerId === bobId)?.state === 'read'
    })
    const text = textOf(await call(alice.client, 'history', { conversation: groupId }))
    expect(text).toContain(`#${seq}: `)
    expect(text).toContain(`${bobId} read`)
    expect(text).toContain(`${carolId} not yet in their session`)
    // Someone else's messages carry no delivery for the reader.
    const theirs = await call(bob.client, 'history', { conversation: groupId })
    expect((theirs.structuredContent as { yours: unknown[] }).yours).toEqual([])
  })
})

function stateCursor(project: string, id: string): number {
  // Kept per broker id (the log's identity), which the file also records for the broker's URL.
  const saved = JSON.parse(readFileSync(join(project, '.duo', `${id}.json`), 'utf8'))
  return saved.logs[saved.urls[broker.url]].position.cursor as number
}
