// The real `bun src/broker.ts` process: its start-up line, bad configuration, SIGTERM, and memory under a slow reader.
import { afterAll, describe, expect, test } from 'bun:test'
import { slowDescribe } from '../slow.ts'
import { readFileSync, rmSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import { eventually, LOAD_ENV, tempDir } from './helpers.ts'

const ROOT = join(import.meta.dir, '..', '..')
const dirs: string[] = []
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

type Spawned = { proc: Bun.Subprocess<'ignore', 'pipe', 'pipe'>; url: string; stdout: () => string }

/** Starts the broker process on a free port with a fresh database and waits for its start-up line. */
async function spawnBroker(env: Record<string, string> = {}): Promise<Spawned> {
  const dir = tempDir('duo-proc-')
  dirs.push(dir)
  const proc = Bun.spawn(['bun', 'src/broker.ts'], {
    cwd: ROOT,
    env: { ...process.env, BROKER_PORT: '0', BROKER_HOST: '127.0.0.1', DUO_DB: join(dir, 'duo.db'), DUO_AUTH: 'open', ...env },
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
  })
  let out = ''
  const reader = proc.stdout.getReader()
  const decoder = new TextDecoder()
  const pump = (async () => {
    for (;;) {
      const { value, done } = await reader.read()
      if (done) return
      out += decoder.decode(value, { stream: true })
    }
  })()
  void pump
  const started = await eventually(() => /listening on http:\/\/\S+/.test(out) || proc.exitCode !== null, 10_000)
  const match = /listening on (http:\/\/\S+)/.exec(out)
  if (!started || !match) {
    proc.kill()
    throw new Error(`the broker did not start: ${out}${await new Response(proc.stderr).text()}`)
  }
  return { proc, url: match[1]!, stdout: () => out }
}

const health = async (url: string): Promise<any> => (await fetch(`${url}/health`)).json()
const post = (url: string, body: unknown) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })

describe('bun src/broker.ts', () => {
  test('prints the URL it listens on (a real port for BROKER_PORT=0) and answers /health', async () => {
    const { proc, url, stdout } = await spawnBroker()
    try {
      expect(stdout()).toMatch(/^duo broker listening on http:\/\/127\.0\.0\.1:\d+ /m)
      expect(Number(new URL(url).port)).toBeGreaterThan(0)
      const reply = await health(url)
      expect(reply).toEqual(expect.objectContaining({ status: 'ok', partners: 0 }))
    } finally {
      proc.kill('SIGTERM')
      await proc.exited
    }
  })

  test('SIGTERM answers a waiting long-poll, then exits 0', async () => {
    const { proc, url } = await spawnBroker()
    await post(`${url}/register`, { partnerId: 'waiter' })
    const last = (await health(url)).last_seq
    const cursorPoll = fetch(`${url}/listen/waiter?after=${last}&wait=30`)
    const legacyPoll = fetch(`${url}/listen/waiter?timeout=30`)
    expect(await eventually(async () => (await health(url)).listening === 1)).toBe(true)
    const started = performance.now()
    proc.kill('SIGTERM')
    const [cursorReply, legacyReply] = await Promise.all([cursorPoll, legacyPoll])
    expect(cursorReply.status).toBe(200)
    expect(await cursorReply.json()).toEqual({ hasMessages: false, messages: [], cursor: expect.any(Number) })
    expect(legacyReply.status).toBe(200)
    expect(await legacyReply.json()).toEqual({ hasMessages: false, messages: [] })
    expect(await proc.exited).toBe(0)
    expect(performance.now() - started).toBeLessThan(5000)
  })

  test.each([
    ['BROKER_PORT=abc', { BROKER_PORT: 'abc' }, 'BROKER_PORT'],
    ['BROKER_PORT=70000', { BROKER_PORT: '70000' }, 'BROKER_PORT'],
    ['DUO_DB under /proc', { DUO_DB: '/proc/x/duo.db' }, 'DUO_DB'],
    ['DUO_DB below a file', { DUO_DB: '/etc/hostname/duo.db' }, 'DUO_DB'],
    ['DUO_AUTH=maybe', { DUO_AUTH: 'maybe' }, 'DUO_AUTH'],
    ['DUO_RATE_LIMITS=maybe', { DUO_RATE_LIMITS: 'maybe' }, 'DUO_RATE_LIMITS'],
    ['BROKER_HOST that does not resolve', { BROKER_HOST: 'nonexistent.invalid' }, 'BROKER_HOST'],
  ])('bad configuration (%s) stops it with one line naming the variable, no stack trace', async (_, env, variable) => {
    const proc = Bun.spawn(['bun', 'src/broker.ts'], {
      cwd: ROOT,
      env: { ...process.env, BROKER_PORT: '0', DUO_DB: ':memory:', DUO_AUTH: 'open', ...env },
      stdin: 'ignore',
      stdout: 'pipe',
      stderr: 'pipe',
    })
    const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000)
    const [code, stdout, stderr] = await Promise.all([
      proc.exited,
      new Response(proc.stdout).text(),
      new Response(proc.stderr).text(),
    ])
    clearTimeout(timer)
    expect(code).not.toBe(0)
    expect(code).not.toBe(137) // not killed by the timer: it stopped by itself
    expect(stdout).not.toContain('listening')
    const lines = stderr.trim().split('\n')
    expect(lines).toHaveLength(1)
    expect(lines[0]).toContain(variable)
    expect(stderr).not.toMatch(/^\s+at /m)
  })
})

slowDescribe('a slow SSE consumer', () => {
  const vmRssMb = (pid: number): number => {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024
  }

  test(
    'does not make the broker buffer without bound, and the broker stays healthy',
    async () => {
      const { proc, url } = await spawnBroker({ DUO_SYNC: 'normal', ...LOAD_ENV })
      const port = Number(new URL(url).port)
      const sockets: ReturnType<typeof connect>[] = []
      try {
        await post(`${url}/register`, { partnerId: 'writer' })
        await post(`${url}/register`, { partnerId: 'reader' })
        const content = 'x'.repeat(30_000)
        const send = (n: number) =>
          Promise.all(Array.from({ length: n }, () => post(`${url}/talk`, { fromId: 'writer', to: 'reader', content })))
        await send(200) // warm up: the first allocations of the process are not what this measures
        const from = (await health(url)).last_seq

        // Two raw clients send their request and then never read: the kernel buffers fill and stay full.
        const received = [0, 0]
        for (const [i, path] of ['/events/stream', '/listen/reader/stream'].entries()) {
          const socket = connect(port, '127.0.0.1')
          await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
          socket.on('data', (chunk: Buffer) => (received[i]! += chunk.length))
          socket.write(`GET ${path}?after=${from} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`)
          sockets.push(socket)
        }
        // Both streams are open once each has sent its first bytes (the `: connected` comment).
        expect(await eventually(() => received.every((n) => n > 0), 5000, 5)).toBe(true)
        for (const socket of sockets) socket.pause()

        const baseline = vmRssMb(proc.pid)
        let peak = baseline
        const messages = 3200
        for (let sent = 0; sent < messages; sent += 50) {
          await send(50)
          peak = Math.max(peak, vmRssMb(proc.pid))
        }
        const appendedMb = (messages * content.length) / 1024 / 1024
        expect(appendedMb).toBeGreaterThan(90)
        // The broker's heap grows with the work itself, whoever reads: measured 59-75 MB with clients that read
        // everything, 47-61 MB with these two stalled ones. Buffering for either stalled stream would add at least
        // what was appended (each would hold every frame it has not sent), so that is the bound.
        expect(peak - baseline).toBeLessThan(appendedMb)

        if (process.env.DUO_TEST_VERBOSE) console.error(`broker RSS grew ${(peak - baseline).toFixed(1)} MB for ${appendedMb.toFixed(0)} MB appended`)
        const reply = await health(url)
        expect(reply).toEqual(expect.objectContaining({ status: 'ok', listening: 1 }))

        // A slow reader that resumes still gets everything, from the log rather than from a queue.
        sockets[1]!.resume()
        const wanted = messages * content.length
        expect(await eventually(() => received[1]! > wanted, 15_000)).toBe(true)
      } finally {
        for (const socket of sockets) socket.destroy()
      }
      expect(await eventually(async () => (await health(url)).listening === 0)).toBe(true)
      expect((await fetch(`${url}/health`)).status).toBe(200)
      proc.kill('SIGTERM')
      expect(await proc.exited).toBe(0)
    },
    60_000,
  )
})
