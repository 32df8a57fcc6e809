// `bun run duo` through a real token-mode broker: login keeps a 0600 identity, send/read/watch/partners/log speak as a person.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { COMMANDS } from '../../src/cli/duo/commands.ts'
import { harmless, messageLines, paintFor } from '../../src/cli/duo/format.ts'
import { type SecureBroker, startSecureBroker } from '../http/secure-harness.ts'

const DUO = join(import.meta.dir, '..', '..', 'src', 'cli', 'duo.ts')

let broker: SecureBroker
let home: string
let file: string
let alice: string
let bob: string

type Run = { code: number; stdout: string; stderr: string }

async function duo(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const proc = Bun.spawn(['bun', DUO, ...args], {
    env: { ...process.env, DUO_CLI_FILE: file, DUO_ADMIN_TOKEN: '', NO_COLOR: '', ...env },
    stdout: 'pipe',
    stderr: 'pipe',
  })
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited])
  return { code, stdout, stderr }
}

beforeAll(async () => {
  // The loop guard at 2 agent messages in a row, so `resume` has a pause to lift.
  broker = await startSecureBroker({ maxHops: 2 })
  home = mkdtempSync(join(tmpdir(), 'duo-cli-'))
  file = join(home, 'config', 'duo', 'cli.json')
  alice = await broker.register('alice')
  bob = await broker.register('bob')
  await broker.call('POST', '/talk', { token: alice, body: { fromId: 'alice', to: 'bob', content: 'agents talking' } })
})
afterAll(async () => {
  await broker.close()
  rmSync(home, { recursive: true, force: true })
})

describe('login', () => {
  test('in token mode without the operator token is refused with one clear line, and writes nothing', async () => {
    const run = await duo(['login', '--as', 'pat', '--broker', broker.url])
    expect(run.code).toBe(2)
    expect(run.stderr).toContain('give the operator token with --operator-token')
    expect(() => statSync(file)).toThrow()
  })

  test('registers a human partner and keeps the identity in a file of mode 0600, in a folder of mode 0700', async () => {
    const run = await duo(['login', '--as', 'pat', '--name', 'Pat', '--broker', broker.url, '--operator-token', broker.adminToken])
    expect(run.code).toBe(0)
    expect(run.stdout).toContain('logged in as pat (human)')
    expect(statSync(file).mode & 0o777).toBe(0o600)
    expect(statSync(join(home, 'config', 'duo')).mode & 0o777).toBe(0o700)
    const partners = await broker.call('GET', '/partners', { token: alice })
    expect(partners.body.partners.find((p: any) => p.id === 'pat')).toMatchObject({ kind: 'human', name: 'Pat' })
  })

  test('whoami names the identity and never prints a token', async () => {
    const run = await duo(['whoami', '--json'])
    expect(JSON.parse(run.stdout)).toMatchObject({ loggedIn: true, partnerId: 'pat', partnerToken: true, operatorToken: true })
    expect(run.stdout).not.toContain(broker.adminToken)
  })
})

describe('speaking as a person', () => {
  test("send to a partner reaches the agent's listen, marked as a human's", async () => {
    const after = await broker.lastSeq()
    const run = await duo(['send', 'alice', 'please', 'review', 'the', 'patch'])
    expect(run.code).toBe(0)
    expect(run.stdout).toMatch(/^sent #\d+ into direct_alice_pat\n$/)
    const heard = await broker.call('GET', `/listen/alice?after=${after}&wait=5`, { token: alice })
    expect(heard.body.messages.map((m: any) => [m.from_id, m.from_kind, m.content])).toEqual([['pat', 'human', 'please review the patch']])
  })

  test("send into the agents' own conversation, which a person may enter without joining", async () => {
    const run = await duo(['send', 'direct_alice_bob', 'stop and wait for me', '--json'])
    expect(run.code).toBe(0)
    expect(JSON.parse(run.stdout)).toMatchObject({ conversationId: 'direct_alice_bob' })
  })

  test('a refusal is the broker’s own sentence, exit 1', async () => {
    const run = await duo(['send', 'ghost', 'hello?'])
    expect(run.code).toBe(1)
    expect(run.stderr).toContain('unknown partner "ghost": it has never registered')
    expect(run.stderr).toContain('unknown_partner')
  })

  test('read prints the conversation readably, oldest first; --json gives one message per line', async () => {
    const run = await duo(['read', 'direct_alice_bob'])
    expect(run.code).toBe(0)
    expect(run.stdout.indexOf('agents talking')).toBeLessThan(run.stdout.indexOf('stop and wait for me'))
    expect(run.stdout).toMatch(/#\d+ direct_alice_bob pat \(human\):\n {4}stop and wait for me/)
    expect(run.stdout).not.toContain('\x1b[')
    const json = await duo(['read', 'direct_alice_bob', '--json'])
    expect(json.stdout.trim().split('\n').map((line) => JSON.parse(line).content)).toEqual(['agents talking', 'stop and wait for me'])
  })

  test('partners lists kinds and reachability', async () => {
    const run = await duo(['partners'])
    expect(run.stdout).toMatch(/^alice\s+agent\s+\S+/m)
    expect(run.stdout).toMatch(/^pat\s+human\s+\S+\s+Pat/m)
    const json = JSON.parse((await duo(['partners', '--json'])).stdout)
    expect(json.map((p: any) => p.id)).toEqual(['alice', 'bob', 'pat'])
  })

  test('log replays readably and as JSON Lines', async () => {
    const run = await duo(['log', '--after', '0', '--limit', '4'])
    const lines = run.stdout.trim().split('\n')
    expect(lines).toHaveLength(4)
    expect(lines[0]).toMatch(/^#1 \S+ \S+ PartnerRegistered alice registered as "alice"/)
    expect(lines[3]).toMatch(/^#4 .* MessageSent alice → direct_alice_bob: agents talking$/)
    const json = await duo(['log', '--after', '0', '--limit', '2', '--json'])
    expect(json.stdout.trim().split('\n').map((line) => JSON.parse(line).seq)).toEqual([1, 2])
  })
})

describe('pause and resume', () => {
  test('lifts the loop guard’s pause, and says so', async () => {
    const talk = (token: string, fromId: string, to: string) =>
      broker.call('POST', '/talk', { token, body: { fromId, to, content: `reflex from ${fromId}` } })
    expect((await talk(alice, 'alice', 'bob')).status).toBe(200)
    expect((await talk(bob, 'bob', 'alice')).status).toBe(200)
    const paused = await talk(alice, 'alice', 'bob')
    expect(paused.body.reason).toBe('conversation_paused')
    const run = await duo(['resume', 'direct_alice_bob'])
    expect(run.code).toBe(0)
    expect(run.stdout).toBe('resumed direct_alice_bob\n')
    expect((await talk(alice, 'alice', 'bob')).status).toBe(200)
  })

  test('pause stops the agents of a conversation until resume', async () => {
    const paused = await duo(['pause', 'direct_alice_bob'])
    expect(paused.stdout).toBe('paused direct_alice_bob: its agents wait for a person\n')
    const refused = await broker.call('POST', '/talk', { token: bob, body: { fromId: 'bob', to: 'alice', content: 'may I?' } })
    expect(refused.body.reason).toBe('conversation_paused')
    expect((await duo(['resume', 'direct_alice_bob'])).code).toBe(0)
    expect((await broker.call('POST', '/talk', { token: bob, body: { fromId: 'bob', to: 'alice', content: 'thanks' } })).status).toBe(200)
  })
})

describe('watch', () => {
  test('tails new messages live and readably, and shows hostile text harmlessly', async () => {
    const proc = Bun.spawn(['bun', DUO, 'watch'], { env: { ...process.env, DUO_CLI_FILE: file }, stdout: 'pipe', stderr: 'pipe' })
    const reader = proc.stdout.pipeThrough(new TextDecoderStream()).getReader()
    let seen = ''
    const until = async (text: string) => {
      const deadline = AbortSignal.timeout(10_000)
      while (!seen.includes(text)) {
        if (deadline.aborted) throw new Error(`watch did not print ${JSON.stringify(text)}; it printed ${JSON.stringify(seen)}`)
        const { value, done } = await reader.read()
        if (done) throw new Error(`watch ended early: ${seen}`)
        seen += value
      }
    }
    try {
      await until('watching every conversation')
      await broker.call('POST', '/talk', { token: bob, body: { fromId: 'bob', to: 'alice', content: 'live \x1b[2Jcleared?' } })
      await until('cleared?')
      expect(seen).toMatch(/#\d+ direct_alice_bob bob:\n {4}live \\u\{1b\}\[2Jcleared\?/)
      expect(seen).not.toContain('agents talking')
    } finally {
      proc.kill()
      await proc.exited
    }
  })
})

describe('output', () => {
  test('--help works on every command', async () => {
    for (const name of Object.keys(COMMANDS)) {
      const run = await duo([name, '--help'])
      expect({ name, code: run.code, head: run.stdout.split('\n')[0] }).toEqual({ name, code: 0, head: expect.stringMatching(new RegExp(`^usage: bun run duo ${name}`)) })
    }
    expect((await duo(['--help'])).stdout).toContain('usage: bun run duo <command>')
  })

  test('colours only on a terminal, and never with NO_COLOR', () => {
    const message = { seq: 7, conversationId: 'direct_a_b', from: 'pat', fromKind: 'human', content: 'hi', at: '2026-12-01T10:00:00.000Z' }
    expect(messageLines(message, paintFor(true, {}))).toContain('\x1b[33mpat\x1b[39m')
    expect(messageLines(message, paintFor(false, {}))).toBe('10:00:00 #7 direct_a_b pat (human):\n    hi')
    expect(messageLines(message, paintFor(true, { NO_COLOR: '1' }))).not.toContain('\x1b[')
  })

  test('control and bidirectional characters from others are shown as codes', () => {
    expect(harmless('a\x1b]0;title\x07b\u202Ec')).toBe('a\\u{1b}]0;title\\u{7}b\\u{202e}c')
  })
})
