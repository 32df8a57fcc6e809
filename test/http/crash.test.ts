// SIGKILL under concurrent talk: every acknowledged message survives, in the log and in the history, and audit passes.
import { afterAll, expect, test } from 'bun:test'
import { slowTest } from '../slow.ts'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { auditFile, formatReport } from '../../src/cli/audit-core.ts'
import { LOAD_ENV } from './helpers.ts'

const ROOT = join(import.meta.dir, '..', '..')
const ADMIN = 'crash-test-operator-token-0123456789'
const SENDERS = 16
const dir = mkdtempSync(join(tmpdir(), 'duo-crash-'))
const children: Bun.Subprocess[] = []
afterAll(() => {
  for (const child of children) child.kill('SIGKILL')
  rmSync(dir, { recursive: true, force: true })
})

async function startBroker(db: string): Promise<{ proc: Bun.Subprocess; url: string }> {
  const proc = Bun.spawn([process.execPath, 'src/broker.ts'], {
    cwd: ROOT,
    env: { ...process.env, BROKER_PORT: '0', BROKER_HOST: '127.0.0.1', DUO_DB: db, DUO_AUTH: 'open', DUO_SYNC: 'full', DUO_ADMIN_TOKEN: ADMIN, ...LOAD_ENV },
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
  })
  children.push(proc)
  let out = ''
  const decoder = new TextDecoder()
  for await (const chunk of proc.stdout as ReadableStream<Uint8Array>) {
    out += decoder.decode(chunk, { stream: true })
    const match = /listening on (http:\/\/\S+)/.exec(out)
    if (match) return { proc, url: match[1]! }
  }
  throw new Error(`the broker did not start: ${out}${await new Response(proc.stderr as ReadableStream).text()}`)
}

const post = (url: string, body: unknown) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })

/**
 * Runs SENDERS talk loops until `acks` messages were acknowledged (or 3 s passed), then SIGKILLs the broker
 * while the loops are still sending. Returns what was acknowledged: content → seq.
 */
async function talkUntilKilled(url: string, proc: Bun.Subprocess, round: number, acks: number): Promise<Map<string, number>> {
  const acked = new Map<string, number>()
  let killed = false
  let inFlightAtKill = 0
  let inFlight = 0
  const loop = async (s: number) => {
    for (let n = 0; !killed; n++) {
      const content = `round ${round} s${s} #${n}`
      inFlight++
      try {
        const response = await post(`${url}/talk`, { fromId: `s${s}`, to: `r${s}`, content })
        if (response.status === 200) acked.set(content, ((await response.json()) as { messageId: number }).messageId)
      } catch {
        // the broker is gone: this one was never acknowledged
      } finally {
        inFlight--
      }
    }
  }
  const loops = Array.from({ length: SENDERS }, (_, s) => loop(s))
  const started = performance.now()
  while (acked.size < acks && performance.now() - started < 3000) await Bun.sleep(5)
  inFlightAtKill = inFlight
  proc.kill('SIGKILL')
  await proc.exited
  killed = true
  await Promise.all(loops)
  expect(inFlightAtKill).toBeGreaterThan(0)
  return acked
}

slowTest('every acknowledged message survives SIGKILL mid-load: in /events, in the history, and audit passes', async () => {
  const db = join(dir, 'duo.db')
  let broker = await startBroker(db)
  for (let s = 0; s < SENDERS; s++) {
    expect((await post(`${broker.url}/register`, { partnerId: `s${s}` })).status).toBe(200)
    expect((await post(`${broker.url}/register`, { partnerId: `r${s}` })).status).toBe(200)
  }

  const acked = new Map<string, number>()
  for (let round = 1; round <= 2; round++) {
    for (const [content, seq] of await talkUntilKilled(broker.url, broker.proc, round, 1500)) acked.set(content, seq)
    broker = await startBroker(db)
  }
  expect(acked.size).toBeGreaterThan(500)

  // The log: every acknowledged message at the seq it was acknowledged with, none twice.
  const stored = new Map<string, number[]>()
  for (let after = 0; ; ) {
    const page = (await (
      await fetch(`${broker.url}/events?type=MessageSent&after=${after}&limit=1000`, { headers: { authorization: `Bearer ${ADMIN}` } })
    ).json()) as { events: Array<{ seq: number; data: { content: string } }>; next: number }
    if (page.events.length === 0) break
    for (const e of page.events) stored.set(e.data.content, [...(stored.get(e.data.content) ?? []), e.seq])
    after = page.next
  }
  const missing = [...acked].filter(([content, seq]) => !stored.get(content)?.includes(seq))
  expect(missing).toEqual([])
  expect([...stored.values()].filter((seqs) => seqs.length > 1)).toEqual([])

  // The history (a projection): each sender's conversation holds its acknowledged messages.
  for (let s = 0; s < SENDERS; s++) {
    const history = (await (await fetch(`${broker.url}/conversations/direct_r${s}_s${s}/messages?limit=1000`)).json()) as {
      messages: Array<{ id: number; content: string }>
    }
    const ids = new Set(history.messages.map((m) => m.id))
    const mine = [...acked].filter(([content]) => content.includes(` s${s} #`))
    expect(mine.filter(([, seq]) => !ids.has(seq))).toEqual([])
  }

  broker.proc.kill('SIGTERM')
  await broker.proc.exited
  const report = await auditFile(db)
  expect(report.ok, formatReport(report)).toBe(true)
}, 30_000)
