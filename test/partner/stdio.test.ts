// End to end: `bun src/partner/index.ts` spawned by the SDK's stdio client, against a spawned broker.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { slowTest } from '../slow.ts'
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js'
import { partnerIdFromDirectory } from '../../src/partner/config.ts'
import { call, ChannelNotification, cleanTempDirs, ROOT, type SpawnedBroker, spawnBroker, tempDir, textOf, waitFor } from './helpers.ts'

type StdioPartner = { client: Client; pushes: ChannelNotification[]; dir: string; close(): Promise<void> }

let broker: SpawnedBroker
let dbPath: string
const projects = tempDir('duo-e2e-')

/** Spawns a partner; unless `background`, waits until the broker lists it online (it registers after serving MCP). */
async function spawnPartner(dirName: string, env: Record<string, string> = {}, background = false): Promise<StdioPartner> {
  const dir = join(projects, dirName)
  mkdirSync(dir, { recursive: true })
  // Run inside a Claude Code session, these would point every partner at that session's project.
  const { CLAUDE_PROJECT_DIR, DUO_PROJECT_DIR, PARTNER_ID, PARTNER_NAME, ...inherited } = process.env as Record<string, string>
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [join(ROOT, 'src/partner/index.ts')],
    cwd: dir,
    env: { ...inherited, BROKER_URL: broker.url, DUO_LISTEN_MAX_S: '2', ...env },
    stderr: 'ignore',
  })
  const client = new Client({ name: 'e2e', version: '0.0.0' }, { capabilities: { experimental: { 'claude/channel': {} } } })
  const pushes: ChannelNotification[] = []
  client.setNotificationHandler(ChannelNotification, (n) => {
    pushes.push(n)
  })
  await client.connect(transport)
  if (!background) {
    const id = env.PARTNER_ID ?? partnerIdFromDirectory(dir)
    await waitFor(`${id} registered`, async () => {
      if (!existsSync(join(dir, '.duo', `${id}.json`))) return false
      return (await partnersSeenBy(tokenOf(dir, id))).some((p) => p.id === id && p.status === 'online')
    })
  }
  return { client, pushes, dir, close: () => client.close() }
}

/** The token the partner keeps for the log it last reached at the broker's URL. */
const tokenOf = (dir: string, id: string) => {
  const state = JSON.parse(readFileSync(join(dir, '.duo', `${id}.json`), 'utf8'))
  return state.logs[state.urls[broker.url]].token as string
}

async function partnersSeenBy(token: string) {
  const response = await fetch(`${broker.url}/partners`, { headers: { authorization: `Bearer ${token}` } })
  return ((await response.json()) as { partners: { id: string; status: string }[] }).partners
}

const contents = (result: Awaited<ReturnType<typeof call>>) =>
  (result.structuredContent as { messages: { content: string }[] }).messages.map((m) => m.content)

beforeAll(async () => {
  dbPath = join(tempDir('duo-e2e-db-'), 'duo.db')
  broker = await spawnBroker(dbPath)
})
afterAll(async () => {
  await broker.stop()
  cleanTempDirs()
})

describe('partners over stdio', () => {
  test('every tool, a direct and a group exchange, pushed within a second', async () => {
    // No PARTNER_ID: the id comes from the folder name.
    const alpha = await spawnPartner('Alpha Project')
    const beta = await spawnPartner('b', { PARTNER_ID: 'beta', PARTNER_NAME: 'Beta' })
    const gamma = await spawnPartner('c', { PARTNER_ID: 'gamma' })
    try {
      const tools = (await alpha.client.listTools()).tools.map((t) => t.name).sort()
      expect(tools).toEqual(
        ['add_members', 'create_conversation', 'history', 'leave_conversation', 'list_conversations', 'list_partners', 'listen', 'notifications', 'register', 'rename_conversation', 'set_status', 'talk'].sort(),
      )
      for (const tool of (await alpha.client.listTools()).tools) expect(tool.description?.length).toBeGreaterThan(40)

      const listed = await call(alpha.client, 'list_partners')
      expect(textOf(listed)).toContain('alpha_project (you)')
      expect(textOf(listed)).toContain('beta ("Beta")')

      const sentAt = Date.now()
      const sent = await call(alpha.client, 'talk', { message: 'Hey beta, can you check the auth module?', to: 'beta' })
      expect(sent.isError).toBeFalsy()
      await waitFor('the push to beta', () => beta.pushes.length > 0, 1000)
      expect(Date.now() - sentAt).toBeLessThan(1000)
      // The body, framed as another partner's words (see test/partner/hostile-text.test.ts).
      expect(beta.pushes[0]!.params.content).toMatch(/\nHey beta, can you check the auth module\?\n--- duo:[a-z0-9]{10} end of #\d+ ---$/)
      expect(beta.pushes[0]!.params).toMatchObject({
        meta: { from: 'alpha_project', conversation: (sent.structuredContent as { conversationId: string }).conversationId },
      })
      expect(contents(await call(beta.client, 'listen', {}))).toEqual(['Hey beta, can you check the auth module?'])
      await call(beta.client, 'talk', { message: 'On it.', to: 'alpha_project' })
      expect(contents(await call(alpha.client, 'listen', {}))).toEqual(['On it.'])

      const created = await call(alpha.client, 'create_conversation', { name: 'Release', participants: 'beta,gamma' })
      const groupId = (created.structuredContent as { conversationId: string }).conversationId
      expect(groupId).toStartWith('group_')
      await call(gamma.client, 'talk', { message: 'ship it friday', conversation: groupId })
      expect(contents(await call(alpha.client, 'listen', { conversation: groupId }))).toEqual(['ship it friday'])
      expect(contents(await call(beta.client, 'listen', {}))).toEqual(['ship it friday'])

      expect(textOf(await call(gamma.client, 'list_conversations'))).toContain('Release')
      expect(contents(await call(gamma.client, 'history', { conversation: groupId }))).toEqual(['ship it friday'])
      expect((await call(gamma.client, 'set_status', { message: 'writing notes' })).isError).toBeFalsy()
      expect(textOf(await call(alpha.client, 'list_partners'))).toContain('writing notes')
      expect((await call(gamma.client, 'notifications', { enabled: false })).structuredContent).toEqual({ enabled: false })
      expect((await call(gamma.client, 'register', { name: 'Gamma' })).structuredContent).toMatchObject({ name: 'Gamma' })
      expect((await call(gamma.client, 'leave_conversation', { conversation: groupId })).structuredContent).toMatchObject({
        left: true,
        archived: false,
      })
    } finally {
      await Promise.all([alpha.close(), beta.close(), gamma.close()])
    }
  })

  test('a restarted partner keeps its token, goes offline while away, and misses nothing', async () => {
    const sender = await spawnPartner('sender-project', { PARTNER_ID: 'sender' })
    let receiver = await spawnPartner('receiver-project', { PARTNER_ID: 'receiver' })
    try {
      const file = join(receiver.dir, '.duo', 'receiver.json')
      expect(statSync(file).mode & 0o777).toBe(0o600)
      expect(readFileSync(join(receiver.dir, '.duo', '.gitignore'), 'utf8')).toContain('*')
      const token = tokenOf(receiver.dir, 'receiver')

      await call(sender.client, 'talk', { message: 'before', to: 'receiver' })
      expect(contents(await call(receiver.client, 'listen', {}))).toEqual(['before'])
      await receiver.close()
      const senderToken = tokenOf(sender.dir, 'sender')
      await waitFor('receiver offline', async () =>
        (await partnersSeenBy(senderToken)).some((p) => p.id === 'receiver' && p.status === 'offline'),
      )

      await call(sender.client, 'talk', { message: 'while away 1', to: 'receiver' })
      await call(sender.client, 'talk', { message: 'while away 2', to: 'receiver' })
      receiver = await spawnPartner('receiver-project', { PARTNER_ID: 'receiver' })
      expect(tokenOf(receiver.dir, 'receiver')).toBe(token)
      expect(contents(await call(receiver.client, 'listen', {}))).toEqual(['while away 1', 'while away 2'])
      expect(contents(await call(receiver.client, 'listen', { timeout: 0 }))).toEqual([])
    } finally {
      await Promise.all([sender.close(), receiver.close()])
    }
  })

  test('unread messages are announced atop other answers and in CLAUDE.md until listen reads them', async () => {
    const writer = await spawnPartner('writer-project', { PARTNER_ID: 'writer' })
    const reader = await spawnPartner('reader-project', { PARTNER_ID: 'reader' })
    try {
      const claudeMd = join(reader.dir, 'CLAUDE.md')
      await call(writer.client, 'talk', { message: 'the build is red', to: 'reader' })
      await waitFor('the CLAUDE.md section', () => existsSync(claudeMd) && readFileSync(claudeMd, 'utf8').includes('from writer'))
      expect(readFileSync(claudeMd, 'utf8')).toContain('<!-- duo:unread:start -->')
      expect(readFileSync(claudeMd, 'utf8')).not.toContain('the build is red')
      const answer = await call(reader.client, 'list_conversations')
      expect(textOf(answer).split('\n')[0]).toContain('[Duo] You have 1 unread message (1 from writer')
      expect(contents(await call(reader.client, 'listen', {}))).toEqual(['the build is red'])
      await waitFor('the section to clear', () => !existsSync(claudeMd))
      expect(textOf(await call(reader.client, 'list_conversations'))).not.toContain('[Duo]')
    } finally {
      await Promise.all([writer.close(), reader.close()])
    }
  })

  slowTest('starts at once even when the broker never answers (Claude Code allows about 30 s)', async () => {
    // Accepts connections and never replies, like a broker whose packets are dropped: each attempt takes its full timeout.
    const silent = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } })
    const started = Date.now()
    const mute = await spawnPartner('mute-project', { PARTNER_ID: 'mute', BROKER_URL: `http://127.0.0.1:${silent.port}` }, true)
    try {
      expect(Date.now() - started).toBeLessThan(3000)
      expect((await mute.client.listTools()).tools.map((t) => t.name)).toContain('listen')
    } finally {
      await mute.close()
      silent.stop(true)
    }
  })

  slowTest('with the broker down, tools say how to start it; once it is back, everything works again', async () => {
    const one = await spawnPartner('one-project', { PARTNER_ID: 'one' })
    const two = await spawnPartner('two-project', { PARTNER_ID: 'two' })
    try {
      await call(one.client, 'talk', { message: 'first', to: 'two' })
      expect(contents(await call(two.client, 'listen', {}))).toEqual(['first'])
      const port = broker.port
      await broker.stop()

      const down = await call(one.client, 'talk', { message: 'lost?', to: 'two' })
      expect(down.isError).toBe(true)
      expect(textOf(down)).toContain('bun run broker')
      expect(textOf(down)).toContain(broker.url)

      broker = await spawnBroker(dbPath, { BROKER_PORT: String(port) })
      const back = await call(one.client, 'talk', { message: 'back again', to: 'two' })
      expect(back.isError).toBeFalsy()
      // two's follower reconnects by itself and pushes the message; listen hands it over once.
      await waitFor('the push after reconnecting', () => two.pushes.some((p) => p.params.content.includes('\nback again\n')), 8000)
      expect(contents(await call(two.client, 'listen', {}))).toEqual(['back again'])
    } finally {
      await Promise.all([one.close(), two.close()])
    }
  })
})
