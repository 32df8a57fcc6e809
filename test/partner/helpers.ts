// Test fixtures for the partner: brokers (in-process or spawned), temp projects, connected MCP clients.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js'
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js'
import { z } from 'zod'
import { configFromEnv } from '../../src/http/config.ts'
import { type RunningBroker, startBroker } from '../../src/http/server.ts'
import type { PartnerConfig } from '../../src/partner/config.ts'
import { type RunningPartner, startPartner } from '../../src/partner/start.ts'

export const ROOT = join(import.meta.dir, '..', '..')

const scratch: string[] = []
export function tempDir(prefix = 'duo-partner-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  scratch.push(dir)
  return dir
}
export function cleanTempDirs(): void {
  for (const dir of scratch.splice(0)) rmSync(dir, { recursive: true, force: true })
}

/** A project folder named `name` (its basename is the derived partner id). */
export function tempProject(name: string): string {
  const dir = join(tempDir(), name)
  mkdirSync(dir)
  return dir
}

export async function inProcessBroker(env: Record<string, string> = {}): Promise<RunningBroker> {
  const config = configFromEnv({ BROKER_PORT: '0', BROKER_HOST: '127.0.0.1', DUO_DB: join(tempDir('duo-db-'), 'duo.db'), ...env })
  return startBroker(config)
}

export type SpawnedBroker = { url: string; port: number; proc: ReturnType<typeof Bun.spawn>; stop(): Promise<void> }

/** `bun src/broker.ts` as a child process; resolves once it printed the URL it listens on. */
export async function spawnBroker(dbPath: string, env: Record<string, string> = {}): Promise<SpawnedBroker> {
  const proc = Bun.spawn(['bun', 'src/broker.ts'], {
    cwd: ROOT,
    env: { ...process.env, BROKER_PORT: '0', BROKER_HOST: '127.0.0.1', DUO_DB: dbPath, ...env },
    stdout: 'pipe',
    stderr: 'inherit',
  })
  const reader = proc.stdout.getReader()
  const decoder = new TextDecoder()
  let seen = ''
  const deadline = Date.now() + 10_000
  while (Date.now() < deadline) {
    const { value, done } = await reader.read()
    if (done) break
    seen += decoder.decode(value)
    const match = /listening on (http:\/\/127\.0\.0\.1:(\d+))/.exec(seen)
    if (match) {
      // Keep draining stdout so the broker never blocks on a full pipe.
      void (async () => {
        while (!(await reader.read().catch(() => ({ done: true }))).done) {}
      })()
      return {
        url: match[1]!,
        port: Number(match[2]),
        proc,
        async stop() {
          proc.kill('SIGTERM')
          await proc.exited
        },
      }
    }
  }
  proc.kill('SIGKILL')
  throw new Error(`broker did not start: ${seen}`)
}

export type ConnectedPartner = { client: Client; running: RunningPartner; close(): Promise<void> }

export function partnerConfig(projectDir: string, brokerUrl: string, over: Partial<PartnerConfig> = {}): PartnerConfig {
  const id = projectDir.split('/').pop()!
  const urls = over.brokerUrls ?? [brokerUrl]
  return { partnerId: id, partnerName: id, projectDir, listenMaxS: 2, ...over, brokerUrl: urls[0]!, brokerUrls: urls }
}

/**
 * A partner on an in-memory MCP transport with a connected SDK client. It registers in the background;
 * unless `background` is set, this waits for that, so others see it at once, as most tests assume.
 */
export async function connectPartner(
  config: PartnerConfig,
  options: { fetch?: typeof fetch; background?: boolean; /** Whether the client declares Claude Code channels (default yes). */ channels?: boolean } = {},
): Promise<ConnectedPartner> {
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair()
  const running = await startPartner({ config, transport: serverSide, fetch: options.fetch, backoffMs: { min: 50, max: 300 } })
  const capabilities = options.channels === false ? {} : { experimental: { 'claude/channel': {} } }
  const client = new Client({ name: 'test', version: '0.0.0' }, { capabilities })
  await client.connect(clientSide)
  if (!options.background) await running.registered
  return {
    client,
    running,
    async close() {
      await client.close()
      await running.stop()
    },
  }
}

export async function call(client: Client, name: string, args: Record<string, unknown> = {}, timeout = 15_000) {
  return (await client.callTool({ name, arguments: args }, undefined, { timeout })) as CallToolResult
}

export const textOf = (result: CallToolResult): string =>
  result.content.map((c) => (c.type === 'text' ? c.text : '')).join('\n')

export async function waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    const value = await probe()
    if (value) return value
    await Bun.sleep(25)
  }
  throw new Error(`timed out waiting for ${what}`)
}

export const ChannelNotification = z.object({
  method: z.literal('notifications/claude/channel'),
  params: z.object({ content: z.string(), meta: z.record(z.string(), z.string()) }),
})
export type ChannelNotification = z.infer<typeof ChannelNotification>
