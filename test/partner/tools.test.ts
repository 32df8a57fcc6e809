// The partner's tools over an in-memory MCP transport, against a real broker on loopback.
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'bun:test'
import { slowDescribe, slowTest } from '../slow.ts'
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { basename, join } from 'node:path'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js'
import type { RunningBroker } from '../../src/http/server.ts'
import { startPartner } from '../../src/partner/start.ts'
import {
  call,
  ChannelNotification,
  type ConnectedPartner,
  cleanTempDirs,
  connectPartner,
  inProcessBroker,
  partnerConfig,
  tempDir,
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
    // Kept per broker id (the log's), and the URL remembers which log it last reached.
    expect(saved.urls[broker.url]).toBe(broker.brokerId)
    expect(saved.logs[broker.brokerId].token).toStartWith('duo_')
    expect(readFileSync(join(dir, '.duo', '.gitignore'), 'utf8')).toContain('*')
    const listed = (await (await fetch(`${broker.url}/partners`, { headers: { authorization: `Bearer ${saved.logs[broker.brokerId].token}` } })).json()) as { partners: { id: string }[] }
    expect(listed.partners.some((p) => p.id === id)).toBe(true)
  })

  slowTest('serves the client before registering, and the tools wait for the registration', async () => {
    let registrations = 0
    // A broker that takes its time to answer the registration.
    const slow: typeof fetch = Object.assign(
      async (input: Parameters<typeof fetch>[0], init?: RequestInit) => {
        if (new URL(String(input)).pathname === '/register') {
          registrations++
          await Bun.sleep(1500)
        }
        return fetch(input, init)
      },
      { preconnect: fetch.preconnect },
    )
    const started = Date.now()
    const a = await connectPartner(partnerConfig(tempProject(unique('early')), broker.url), { fetch: slow, background: true })
    open.push(a)
    expect(Date.now() - started).toBeLessThan(1000)
    const listed = await call(a.client, 'list_partners')
    expect(listed.isError).toBeFalsy()
    expect(listed.structuredContent).toMatchObject({ partners: expect.arrayContaining([expect.objectContaining({ id: a.running.partner.id, you: true })]) })
    expect(registrations).toBe(1)
  })

  test('a new name given while the start-up registration runs is registered after it', async () => {
    const slow: typeof fetch = Object.assign(
      async (input: Parameters<typeof fetch>[0], init?: RequestInit) => {
        if (new URL(String(input)).pathname === '/register') await Bun.sleep(300)
        return fetch(input, init)
      },
      { preconnect: fetch.preconnect },
    )
    const a = await connectPartner(partnerConfig(tempProject(unique('renamed')), broker.url), { fetch: slow, background: true })
    open.push(a)
    const result = await call(a.client, 'register', { name: 'Early bird' })
    expect(result.structuredContent).toMatchObject({ name: 'Early bird' })
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

describe('talk without a target', () => {
  test('goes to the only other partner when there is exactly one, else lists the choices', async () => {
    // A broker of its own: "exactly one other partner" counts every partner registered there.
    const solo = await inProcessBroker()
    try {
      const a = await connectPartner(partnerConfig(tempProject('solo-a'), solo.url))
      open.push(a)
      const nobody = await call(a.client, 'talk', { message: 'anyone?' })
      expect(nobody.isError).toBe(true)
      expect(textOf(nobody)).toContain('No other partner')
      const b = await connectPartner(partnerConfig(tempProject('solo-b'), solo.url))
      open.push(b)
      const sent = await call(a.client, 'talk', { message: 'just you' })
      expect(sent.structuredContent).toMatchObject({ to: 'solo-b' })
      const c = await connectPartner(partnerConfig(tempProject('solo-c'), solo.url))
      open.push(c)
      const ambiguous = await call(a.client, 'talk', { message: 'which one?' })
      expect(ambiguous.isError).toBe(true)
      expect(textOf(ambiguous)).toContain('solo-b')
      expect(textOf(ambiguous)).toContain('solo-c')
      expect(textOf(ambiguous)).toContain('`to`')
    } finally {
      for (const p of open.splice(0)) await p.close()
      await solo.stop()
    }
  })

  test('refuses both `to` and `conversation` at once', async () => {
    const a = await partner(unique('both'))
    const result = await call(a.client, 'talk', { message: 'x', to: 'someone', conversation: 'group_x' })
    expect(result.isError).toBe(true)
    expect(textOf(result)).toContain('not both')
  })

  test('an unknown recipient comes back as an error result that says what to check', async () => {
    const a = await partner(unique('lost'))
    const result = await call(a.client, 'talk', { message: 'x', to: 'nobody-here' })
    expect(result.isError).toBe(true)
    expect(textOf(result)).toContain('nobody-here')
    expect(textOf(result)).toContain('list_partners')
  })
})

describe('listen', () => {
  test('returns as soon as a message arrives while it waits, with progress notifications', async () => {
    const a = await partner(unique('waiter'), { listenMaxS: 5 })
    const b = await partner(unique('sender'))
    const progress: number[] = []
    const started = Date.now()
    const pending = a.client.callTool({ name: 'listen', arguments: {} }, undefined, {
      timeout: 15_000,
      onprogress: (p) => progress.push(p.progress),
    })
    // It is waiting once it reports progress; the message then ends the wait at once.
    await waitFor('a progress notification from the waiting listen', () => progress.length > 0)
    await call(b.client, 'talk', { message: 'wake up', to: a.running.partner.id })
    const result = await pending
    expect(Date.now() - started).toBeLessThan(2500)
    expect(result.structuredContent).toMatchObject({ messages: [{ content: 'wake up' }] })
    expect(progress.length).toBeGreaterThan(0)
  })

  slowTest('waits at most DUO_LISTEN_MAX_S whatever the timeout asks, and says to call again', async () => {
    const a = await partner(unique('patient'), { listenMaxS: 1 })
    const started = Date.now()
    const result = await call(a.client, 'listen', { timeout: 30 })
    expect(Date.now() - started).toBeLessThan(2500)
    expect(result.isError).toBeFalsy()
    expect(result.structuredContent).toMatchObject({ timedOut: true })
    expect(textOf(result)).toMatch(/No new messages arrived .*Call listen again to keep waiting/)
  })

  test('a second listen while one waits is refused, so no message is handed over twice', async () => {
    const a = await partner(unique('single'))
    const b = await partner(unique('double'))
    const parkedBefore = broker.parked()
    const first = call(a.client, 'listen', {})
    // The first listen is waiting once its long-poll is parked in the broker.
    await waitFor('the first listen to park', () => broker.parked() > parkedBefore)
    const second = await call(a.client, 'listen', {})
    expect(second.isError).toBe(true)
    expect(textOf(second)).toContain('already waiting')
    await call(b.client, 'talk', { message: 'once', to: a.running.partner.id })
    expect((await first).structuredContent).toMatchObject({ messages: [{ content: 'once' }] })
    const third = await call(a.client, 'listen', { timeout: 0 })
    expect(third.structuredContent).toMatchObject({ messages: [] })
  })

  slowTest('an answer that could not be written releases listen and commits nothing', async () => {
    const b = await partner(unique('writer'))
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair()
    // The first listen answer fails to go out, as a broken stdout pipe would.
    let failed = false
    const send = serverSide.send.bind(serverSide)
    serverSide.send = async (message, options) => {
      if (!failed && 'result' in message && JSON.stringify(message.result).includes('cursorReset')) {
        failed = true
        throw new Error('EPIPE: broken pipe')
      }
      return send(message, options)
    }
    const config = partnerConfig(tempProject(unique('broken-pipe')), broker.url)
    const running = await startPartner({ config, transport: serverSide, backoffMs: { min: 50, max: 300 } })
    const client = new Client({ name: 'test', version: '0.0.0' }, { capabilities: { experimental: { 'claude/channel': {} } } })
    await client.connect(clientSide)
    open.push({ client, running, close: async () => (await client.close(), await running.stop()) })
    // The recipient must exist before the message is sent to it.
    expect((await running.registered).ok).toBe(true)
    await call(b.client, 'talk', { message: 'say it again', to: running.partner.id })
    const lost = call(client, 'listen', {}, 1000).catch((error: Error) => error)
    await waitFor('the failed write', () => failed)
    const next = await call(client, 'listen', {})
    expect(textOf(next)).not.toContain('already waiting')
    expect(next.structuredContent).toMatchObject({ messages: [{ content: 'say it again' }] })
    expect(await lost).toBeInstanceOf(Error)
  })

  test('a filtered listen, then an unfiltered one, hands over every message exactly once', async () => {
    const a = await partner(unique('filter'))
    const b = await partner(unique('one'))
    const c = await partner(unique('two'))
    const aId = a.running.partner.id
    await call(b.client, 'talk', { message: 'from b 1', to: aId })
    await call(c.client, 'talk', { message: 'from c', to: aId })
    await call(b.client, 'talk', { message: 'from b 2', to: aId })
    const fromB = await call(a.client, 'listen', { conversation: b.running.partner.id })
    expect((fromB.structuredContent as { messages: { content: string }[] }).messages.map((m) => m.content)).toEqual([
      'from b 1',
      'from b 2',
    ])
    const rest = await call(a.client, 'listen', {})
    expect((rest.structuredContent as { messages: { content: string }[] }).messages.map((m) => m.content)).toEqual(['from c'])
    const none = await call(a.client, 'listen', { timeout: 0 })
    expect(none.structuredContent).toMatchObject({ messages: [] })
  })

  test('a restarted partner resumes from its persisted cursor: nothing lost, nothing repeated', async () => {
    const dir = tempProject(unique('phoenix'))
    const b = await partner(unique('caller'))
    const first = await connectPartner(partnerConfig(dir, broker.url))
    const id = first.running.partner.id
    const token = first.running.partner.token
    await call(b.client, 'talk', { message: 'one', to: id })
    expect(await call(first.client, 'listen', {})).toMatchObject({ structuredContent: { messages: [{ content: 'one' }] } })
    await first.close()
    await call(b.client, 'talk', { message: 'two', to: id })
    const second = await connectPartner(partnerConfig(dir, broker.url))
    open.push(second)
    expect(second.running.partner.token).toBe(token)
    const got = await call(second.client, 'listen', {})
    expect((got.structuredContent as { messages: { content: string }[] }).messages.map((m) => m.content)).toEqual(['two'])
  })

  test('a cursor beyond the end of the log is reset, and listen says so', async () => {
    const dir = tempProject(unique('future'))
    const first = await connectPartner(partnerConfig(dir, broker.url))
    const id = first.running.partner.id
    await first.close()
    const file = join(dir, '.duo', `${id}.json`)
    const saved = JSON.parse(readFileSync(file, 'utf8'))
    saved.logs[broker.brokerId].position = { cursor: 10_000_000, conversations: {} }
    writeFileSync(file, JSON.stringify(saved))
    const b = await partner(unique('present'))
    await call(b.client, 'talk', { message: 'still there?', to: id })
    const second = await connectPartner(partnerConfig(dir, broker.url))
    open.push(second)
    const got = await call(second.client, 'listen', {})
    expect(got.isError).toBeFalsy()
    expect(got.structuredContent).toMatchObject({ cursorReset: true })
    expect(textOf(got)).toContain('reset')
    expect(textOf(got)).toContain('still there?')
  })
})

describe('groups', () => {
  test('create, talk into, list, history, leave: the last one out archives it', async () => {
    const a = await partner(unique('lead'))
    const b = await partner(unique('dev'))
    const c = await partner(unique('ops'))
    const [bId, cId] = [b.running.partner.id, c.running.partner.id]
    const created = await call(a.client, 'create_conversation', { name: 'Backend team', participants: `${bId}, ${cId}` })
    expect(created.isError).toBeFalsy()
    const groupId = (created.structuredContent as { conversationId: string }).conversationId
    expect(groupId).toStartWith('group_')
    expect(textOf(created)).toContain(groupId)
    await call(a.client, 'talk', { message: 'standup in 5', conversation: groupId })
    for (const member of [b, c]) {
      const got = await call(member.client, 'listen', {})
      expect(got.structuredContent).toMatchObject({ messages: [{ conversationId: groupId, content: 'standup in 5' }] })
    }
    const listed = await call(b.client, 'list_conversations')
    expect(textOf(listed)).toContain('Backend team')
    expect(listed.structuredContent).toMatchObject({ conversations: [{ id: groupId, type: 'group' }] })
    const history = await call(c.client, 'history', { conversation: groupId, limit: 10 })
    expect(history.structuredContent).toMatchObject({ messages: [{ content: 'standup in 5' }] })
    for (const member of [a, b]) expect((await call(member.client, 'leave_conversation', { conversation: groupId })).isError).toBeFalsy()
    const last = await call(c.client, 'leave_conversation', { conversation: groupId })
    expect(last.structuredContent).toMatchObject({ archived: true })
    expect(textOf(last)).toContain('archived')
    const late = await call(a.client, 'talk', { message: 'anyone?', conversation: groupId })
    expect(late.isError).toBe(true)
    expect(textOf(late)).toContain('archived')
  })

  test('create_conversation refuses ids that are not partner ids', async () => {
    const a = await partner(unique('picky'))
    const result = await call(a.client, 'create_conversation', { name: 'x', participants: 'good-id, .bad' })
    expect(result.isError).toBe(true)
    expect(textOf(result)).toContain('".bad"')
  })

  test('a direct conversation cannot be left, and history accepts the partner id for it', async () => {
    const a = await partner(unique('stay'))
    const b = await partner(unique('put'))
    await call(a.client, 'talk', { message: 'hi', to: b.running.partner.id })
    const history = await call(a.client, 'history', { conversation: b.running.partner.id })
    expect(history.structuredContent).toMatchObject({ messages: [{ content: 'hi' }] })
    const conversationId = (history.structuredContent as { conversationId: string }).conversationId
    const left = await call(a.client, 'leave_conversation', { conversation: conversationId })
    expect(left.isError).toBe(true)
    expect(textOf(left)).toContain('direct')
  })
})

describe('presence and settings', () => {
  test('set_status shows in list_partners, and clears', async () => {
    const a = await partner(unique('busy'))
    const set = await call(a.client, 'set_status', { message: 'refactoring auth' })
    expect(set.structuredContent).toEqual({ statusMessage: 'refactoring auth' })
    const listed = await call(a.client, 'list_partners')
    const me = (listed.structuredContent as { partners: { id: string; you: boolean; statusMessage: string | null; online: boolean }[] }).partners.find((p) => p.you)
    expect(me).toMatchObject({ id: a.running.partner.id, statusMessage: 'refactoring auth', online: true })
    expect(textOf(listed)).toContain('refactoring auth')
    const cleared = await call(a.client, 'set_status', {})
    expect(cleared.structuredContent).toEqual({ statusMessage: null })
  })
})

describe('unread awareness', () => {
  test('other answers start with a notice and CLAUDE.md lists unread messages until listen reads them', async () => {
    const a = await partner(unique('inbox'))
    const b = await partner(unique('writer'))
    const dir = a.running.partner.config.projectDir
    const claudeMd = join(dir, 'CLAUDE.md')
    writeFileSync(claudeMd, '# My project\n\nKeep this.\n')
    const sent = await call(b.client, 'talk', { message: 'please review PR 7', to: a.running.partner.id })
    const seq = (sent.structuredContent as { seq: number }).seq
    await waitFor('the unread section', () => readFileSync(claudeMd, 'utf8').includes(`- #${seq} in `))
    const withSection = readFileSync(claudeMd, 'utf8')
    expect(withSection).toStartWith('# My project\n\nKeep this.\n<!-- duo:unread:start -->\n')
    // Which message and from whom, never its words: CLAUDE.md is read as the user's instructions.
    expect(withSection).toContain(`from ${b.running.partner.id}`)
    expect(withSection).not.toContain('please review')
    const listed = await call(a.client, 'list_partners')
    expect(textOf(listed).split('\n')[0]).toMatch(/^\[Duo\] You have 1 unread message .*Call listen/)
    await call(a.client, 'listen', {})
    await waitFor('the section to go', () => !readFileSync(claudeMd, 'utf8').includes('duo:unread'))
    expect(readFileSync(claudeMd, 'utf8')).toBe('# My project\n\nKeep this.\n')
    expect(textOf(await call(a.client, 'list_partners'))).not.toContain('[Duo]')
  })

  test('with notifications off there is no notice and no CLAUDE.md; on again brings both back', async () => {
    const a = await partner(unique('quiet'))
    const b = await partner(unique('noisy'))
    const claudeMd = join(a.running.partner.config.projectDir, 'CLAUDE.md')
    const off = await call(a.client, 'notifications', { enabled: false })
    expect(off.structuredContent).toEqual({ enabled: false })
    await call(b.client, 'talk', { message: 'psst', to: a.running.partner.id })
    await waitFor('the follower to see it', () => a.running.partner.unread.size === 1)
    await Bun.sleep(100)
    expect(existsSync(claudeMd)).toBe(false)
    expect(textOf(await call(a.client, 'list_partners'))).not.toContain('[Duo]')
    await call(a.client, 'notifications', { enabled: true })
    expect(textOf(await call(a.client, 'list_partners'))).toContain('[Duo] You have 1 unread message')
    await waitFor('CLAUDE.md', () => existsSync(claudeMd) && readFileSync(claudeMd, 'utf8').includes('1 unread message'))
    await call(a.client, 'listen', {})
    // The partner created CLAUDE.md for its section alone, so it removes the file with it.
    await waitFor('CLAUDE.md to go', () => !existsSync(claudeMd))
  })
})

describe('push', () => {
  test('a new message reaches the client as a claude/channel notification within a second', async () => {
    const a = await partner(unique('pushed'))
    const b = await partner(unique('pusher'))
    const received: ChannelNotification[] = []
    a.client.setNotificationHandler(ChannelNotification, (n) => {
      received.push(n)
    })
    expect(a.client.getServerCapabilities()?.experimental).toHaveProperty('claude/channel')
    expect(a.client.getInstructions()).toContain('talk')
    const sent = Date.now()
    const talked = await call(b.client, 'talk', { message: 'ping', to: a.running.partner.id })
    await waitFor('the push', () => received.length > 0, 1000)
    expect(Date.now() - sent).toBeLessThan(1000)
    const tag = /"--- duo:([a-z0-9]{10}) message/.exec(received[0]!.params.content)?.[1]
    expect(received[0]!.params.content).toEndWith(`\nping\n--- duo:${tag} end of #${(talked.structuredContent as { seq: number }).seq} ---`)
    expect(received[0]!.params).toEqual({
      content: expect.stringContaining("that partner's words"),
      meta: {
        from: b.running.partner.id,
        conversation: (talked.structuredContent as { conversationId: string }).conversationId,
        seq: String((talked.structuredContent as { seq: number }).seq),
        from_kind: 'agent',
        sent_at: expect.any(String),
      },
    })
  })
})

describe('talk retries', () => {
  test('a send whose answer was lost is retried with the same key and stored once', async () => {
    let dropped = false
    // Lets the first /talk reach the broker, then loses its answer, as a timeout would.
    const flaky: typeof fetch = Object.assign(
      async (input: Parameters<typeof fetch>[0], init?: RequestInit) => {
        const response = await fetch(input, init)
        if (String(input).endsWith('/talk') && !dropped) {
          dropped = true
          throw new DOMException('The operation timed out.', 'TimeoutError')
        }
        return response
      },
      { preconnect: fetch.preconnect },
    )
    const b = await partner(unique('target'))
    const a = await connectPartner(partnerConfig(tempProject(unique('flaky')), broker.url), { fetch: flaky })
    open.push(a)
    const result = await call(a.client, 'talk', { message: 'exactly once', to: b.running.partner.id })
    expect(dropped).toBe(true)
    expect(result.structuredContent).toMatchObject({ duplicate: true })
    const history = await call(b.client, 'history', { conversation: a.running.partner.id })
    expect((history.structuredContent as { messages: unknown[] }).messages).toHaveLength(1)
  })
})

describe('talk retried by the model', () => {
  test('a talk the client gave up on, called again with the same arguments, is stored once; a later identical talk is new', async () => {
    let reached = false
    let release: (() => void) | undefined
    // The first /talk reaches the broker, then its answer is held until the client has given up on the call.
    const slow: typeof fetch = Object.assign(
      async (input: Parameters<typeof fetch>[0], init?: RequestInit) => {
        const response = await fetch(input, init)
        if (String(input).endsWith('/talk') && !reached) {
          reached = true
          await new Promise<void>((resolve) => {
            release = resolve
          })
        }
        return response
      },
      { preconnect: fetch.preconnect },
    )
    const b = await partner(unique('recipient'))
    const a = await connectPartner(partnerConfig(tempProject(unique('impatient')), broker.url), { fetch: slow })
    open.push(a)
    const args = { message: 'only once, please', to: b.running.partner.id }
    const messages = async () =>
      ((await call(b.client, 'history', { conversation: a.running.partner.id })).structuredContent as { messages: unknown[] }).messages

    const cut = new AbortController()
    const first = a.client.callTool({ name: 'talk', arguments: args }, undefined, { signal: cut.signal }).catch((e: Error) => e)
    await waitFor('the first send to reach the broker', () => reached)
    cut.abort('the client cut the call')
    expect(await first).toBeInstanceOf(Error)

    const retry = await call(a.client, 'talk', args)
    expect(retry.isError).toBeFalsy()
    expect(retry.structuredContent).toMatchObject({ duplicate: true })
    release?.()
    expect(await messages()).toHaveLength(1)

    // The retry's answer reached the model: sending the same text again is deliberate, and a new message.
    const again = await call(a.client, 'talk', args)
    expect(again.structuredContent).toMatchObject({ duplicate: false })
    expect(await messages()).toHaveLength(2)
  })
})

slowDescribe('broker unreachable', () => {
  test('every tool answers with an error result that says how to start the broker', async () => {
    const dead = 'http://127.0.0.1:9' // discard port: nothing listens there
    const a = await connectPartner(partnerConfig(tempProject(unique('alone')), dead))
    open.push(a)
    for (const [tool, args] of [
      ['talk', { message: 'x', to: 'y' }],
      ['listen', { timeout: 0 }],
      ['list_partners', {}],
    ] as const) {
      const result = await call(a.client, tool, args)
      expect(result.isError).toBe(true)
      expect(textOf(result)).toContain('bun run broker')
      expect(textOf(result)).toContain(dead)
    }
  })
})

describe('registering again', () => {
  /** A fetch that counts registrations and can answer one request with a refusal instead of the broker. */
  function counting(refuse?: { path: string; status: number; body: (id: string) => unknown }, id = '') {
    const seen = { registrations: 0, refused: false }
    const f: typeof fetch = Object.assign(
      async (input: Parameters<typeof fetch>[0], init?: RequestInit) => {
        const path = new URL(String(input)).pathname
        if (path === '/register') seen.registrations++
        if (refuse && path === refuse.path && !seen.refused) {
          seen.refused = true
          return Response.json(refuse.body(id), { status: refuse.status })
        }
        return fetch(input, init)
      },
      { preconnect: fetch.preconnect },
    )
    return { seen, fetch: f }
  }

  test('a 404 about a namesake whose id contains ours does not register again', async () => {
    const id = unique('a')
    const { seen, fetch: f } = counting()
    const a = await connectPartner(partnerConfig(tempProject(id), broker.url), { fetch: f })
    open.push(a)
    await waitFor('the start-up registration', () => seen.registrations === 1)
    const result = await call(a.client, 'talk', { message: 'hi', to: `${id}lice` })
    expect(result.isError).toBe(true)
    expect(textOf(result)).toContain(`${id}lice`)
    await call(a.client, 'list_partners')
    expect(seen.registrations).toBe(1)
  })

  test('a 404 saying the broker does not know this partner registers again and retries', async () => {
    const id = unique('forgotten')
    const { seen, fetch: f } = counting(
      { path: '/partners', status: 404, body: (p) => ({ error: `unknown partner "${p}": it has never registered`, reason: 'unknown_partner', partnerId: p }) },
      id,
    )
    const a = await connectPartner(partnerConfig(tempProject(id), broker.url), { fetch: f })
    open.push(a)
    await waitFor('the start-up registration', () => seen.registrations === 1)
    const result = await call(a.client, 'list_partners')
    expect(seen.refused).toBe(true)
    expect(result.isError).toBeFalsy()
    expect(seen.registrations).toBe(2)
  })
})

describe('a broker that lost its database', () => {
  test('the partner sees another log there: registers anew by itself, keeps the old token and cursor apart, says so, loses nothing new', async () => {
    const firstDb = join(tempDir('duo-db-'), 'duo.db')
    const first = await inProcessBroker({ DUO_DB: firstDb })
    const port = new URL(first.url).port
    const a = await connectPartner(partnerConfig(tempProject(unique('survivor')), first.url))
    const b1 = await connectPartner(partnerConfig(tempProject(unique('old-friend')), first.url))
    let replacement: RunningBroker | undefined
    try {
      const aId = a.running.partner.id
      await call(b1.client, 'talk', { message: 'old news', to: aId })
      await call(a.client, 'talk', { message: 'filler', to: b1.running.partner.id })
      await call(b1.client, 'talk', { message: 'more old news', to: aId })
      expect((await call(a.client, 'listen', {})).structuredContent).toMatchObject({ messages: [{}, {}] })
      const oldToken = a.running.partner.token
      await b1.close()
      await first.stop()

      const oldCursor = a.running.partner.position.cursor
      replacement = await inProcessBroker({ BROKER_PORT: port })
      expect(replacement.brokerId).not.toBe(first.brokerId)
      // The follower notices the broker is back and registers: the new log issues a new token.
      await waitFor('re-registration', () => a.running.partner.token !== oldToken, 8000)
      expect(a.running.partner.brokerId).toBe(replacement.brokerId)
      expect(a.running.partner.position.cursor).toBe(0)
      // What was held for the first log is kept, apart: its token is not overwritten.
      const file = join(a.running.partner.config.projectDir, '.duo', `${aId}.json`)
      // The new token is in memory as soon as the broker answers; the file follows it: wait for that write.
      const saved = await waitFor('the state file to hold the new log', () => {
        const state = JSON.parse(readFileSync(file, 'utf8'))
        return state.logs?.[replacement!.brokerId] ? state : undefined
      })
      expect(saved.logs[first.brokerId]).toEqual({ token: oldToken, position: expect.objectContaining({ cursor: oldCursor }) })
      expect(saved.logs[replacement.brokerId].token).toBe(a.running.partner.token)
      expect(saved.urls[first.url]).toBe(replacement.brokerId)
      const b2 = await connectPartner(partnerConfig(tempProject(unique('new-friend')), replacement.url))
      open.push(b2)
      await call(b2.client, 'talk', { message: 'fresh start', to: aId })
      const got = await call(a.client, 'listen', {})
      // Not a reset of the same log: another one, whose cursor starts at 0; the answer says so plainly, once.
      expect(got.structuredContent).toMatchObject({ cursorReset: false, messages: [{ content: 'fresh start' }] })
      expect(textOf(got)).toContain('now serves a different log')
      expect(textOf(got)).toContain('Do not start a broker of your own')
      expect(textOf(await call(a.client, 'list_conversations', {}))).not.toContain('different log')

      // The first log comes back at the same address: its own token and cursor are used again, nothing re-issued.
      const secondToken = a.running.partner.token
      await replacement.stop()
      replacement = await inProcessBroker({ BROKER_PORT: port, DUO_DB: firstDb })
      expect(replacement.brokerId).toBe(first.brokerId)
      await waitFor('back on the first log', () => a.running.partner.brokerId === first.brokerId, 8000)
      expect(a.running.partner.token).toBe(oldToken)
      expect(a.running.partner.position.cursor).toBe(oldCursor)
      const back = JSON.parse(readFileSync(file, 'utf8'))
      expect(back.logs[first.brokerId].token).toBe(oldToken)
      expect(back.logs).toHaveProperty(Object.keys(back.logs).find((id: string) => id !== first.brokerId)!, expect.objectContaining({ token: secondToken }))
    } finally {
      await a.close()
      await replacement?.stop()
    }
  })
})

describe('a state file from before broker ids (kept by URL)', () => {
  /** Rewrites a partner's state file in the old shape: one entry per broker URL. */
  const oldShape = (file: string, url: string, state: unknown) => writeFileSync(file, JSON.stringify({ brokers: { [url]: state } }))

  test('is read, and moved under the log\'s broker id once that broker accepts its token', async () => {
    const dir = tempProject(unique('veteran'))
    const first = await connectPartner(partnerConfig(dir, broker.url))
    const id = first.running.partner.id
    const token = first.running.partner.token
    await first.close()
    const file = join(dir, '.duo', `${id}.json`)
    oldShape(file, broker.url, { token, position: { cursor: 3, conversations: {} } })
    const again = await connectPartner(partnerConfig(dir, broker.url))
    open.push(again)
    expect((await again.running.registered).ok).toBe(true)
    expect(again.running.partner.token).toBe(token)
    const saved = JSON.parse(readFileSync(file, 'utf8'))
    expect(saved.logs[broker.brokerId]).toEqual({ token, position: { cursor: 3, conversations: {} } })
    expect(saved.brokers).toEqual({})
  })

  test('whose token this log does not know stays where it is; the partner starts afresh on this log', async () => {
    const dir = tempProject(unique('stranger'))
    mkdirSync(join(dir, '.duo'), { recursive: true })
    const id = basename(dir)
    const file = join(dir, '.duo', `${id}.json`)
    const foreign = { token: 'duo_a-token-of-another-log', position: { cursor: 7, conversations: {} } }
    oldShape(file, broker.url, foreign)
    const p = await connectPartner(partnerConfig(dir, broker.url))
    open.push(p)
    expect((await p.running.registered).ok).toBe(true)
    expect(p.running.partner.token).not.toBe(foreign.token)
    expect(p.running.partner.position.cursor).toBe(0)
    const saved = JSON.parse(readFileSync(file, 'utf8'))
    expect(saved.brokers[broker.url]).toEqual(foreign)
    expect(saved.logs[broker.brokerId].token).toBe(p.running.partner.token)
  })
})

describe('a broker in open mode', () => {
  test('works without tokens: nothing secret is stored, messages flow the same', async () => {
    const openBroker = await inProcessBroker({ DUO_AUTH: 'open' })
    const a = await connectPartner(partnerConfig(tempProject(unique('open-a')), openBroker.url))
    const b = await connectPartner(partnerConfig(tempProject(unique('open-b')), openBroker.url))
    try {
      expect(a.running.partner.token).toBeUndefined()
      await call(a.client, 'talk', { message: 'no secrets here', to: b.running.partner.id })
      expect((await call(b.client, 'listen', {})).structuredContent).toMatchObject({ messages: [{ content: 'no secrets here' }] })
    } finally {
      await a.close()
      await b.close()
      await openBroker.stop()
    }
  })
})
