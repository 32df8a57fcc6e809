// SIGKILL of one of three brokers on one PostgreSQL log, under load: nothing acknowledged is lost, and clients
// holding all three URLs (the partner's broker client) go on through the others, listeners with their cursors.
import { afterAll, expect, test } from 'bun:test'
import { slowTest } from '../slow.ts'
import { chainHash, GENESIS_HASH } from '../../src/events/log.ts'
import { createBrokerClient } from '../../src/partner/broker-client.ts'
import { runTool } from '../cli/run.ts'
import { freshDatabase, type TestDatabase } from './helpers.ts'
import { LOAD_ENV } from '../http/helpers.ts'

const ROOT = `${import.meta.dir}/../..`
const PAIRS = 6
const children: Bun.Subprocess[] = []
let database: TestDatabase | undefined
afterAll(async () => {
  for (const child of children) child.kill('SIGKILL')
  await Promise.all(children.map((c) => c.exited))
  await database?.drop()
})

async function spawnBroker(db: string): Promise<{ proc: Bun.Subprocess; url: string }> {
  const proc = Bun.spawn([process.execPath, 'src/broker.ts'], {
    cwd: ROOT,
    env: { ...process.env, BROKER_PORT: '0', BROKER_HOST: '127.0.0.1', DUO_DB: db, DUO_AUTH: 'open', ...LOAD_ENV },
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

slowTest('SIGKILL of one broker under load: every acknowledged message is stored once, and clients continue through the others', async () => {
  database = await freshDatabase('duo_failover')
  const brokers = await Promise.all([0, 1, 2].map(() => spawnBroker(database!.url)))
  const urls = brokers.map((b) => b.url)
  // Each client starts on a different broker; broker 0 (the one killed) is the first choice of a third of them.
  const clientFor = (i: number) =>
    createBrokerClient({ baseUrl: [...urls.slice(i % 3), ...urls.slice(0, i % 3)], token: () => undefined, retryDelaysMs: [50, 200, 500] })
  for (let i = 0; i < PAIRS; i++) {
    const client = clientFor(i)
    expect((await client.register({ partnerId: `s${i}` })).ok).toBe(true)
    expect((await client.register({ partnerId: `r${i}` })).ok).toBe(true)
  }

  const acked = new Map<string, number>()
  const received = new Map<number, number[]>()
  let stop = false
  const senders = Array.from({ length: PAIRS }, async (_, i) => {
    const client = clientFor(i)
    for (let n = 0; !stop; n++) {
      const content = `s${i} #${n}`
      const sent = await client.talk({ fromId: `s${i}`, to: `r${i}`, content, idempotencyKey: `k-${i}-${n}` })
      if (sent.ok) acked.set(content, Number(sent.value.messageId))
    }
  })
  // Receivers follow with a cursor; after the kill those on broker 0 resume it on another broker. Once the
  // senders are done, each goes on until it has every acknowledged message of its pair (or 10 s pass).
  let sendersDoneAt = 0
  const ackedFor = (i: number) => [...acked].filter(([c]) => c.startsWith(`s${i} `)).map(([, seq]) => seq)
  const receivers = Array.from({ length: PAIRS }, async (_, i) => {
    const client = clientFor(i)
    let cursor = 0
    const seen: number[] = []
    received.set(i, seen)
    for (;;) {
      if (sendersDoneAt > 0) {
        const have = new Set(seen)
        if (ackedFor(i).every((seq) => have.has(seq)) || Date.now() > sendersDoneAt + 10_000) break
      }
      const answer = await client.listen(`r${i}`, { after: cursor, waitS: 1 })
      if (!answer.ok) continue
      for (const m of answer.value.messages) seen.push(m.seq)
      cursor = answer.value.cursor
    }
  })

  const until = async (count: number, ms: number) => {
    const deadline = Date.now() + ms
    while (acked.size < count && Date.now() < deadline) await Bun.sleep(5)
    return acked.size
  }
  expect(await until(300, 15_000)).toBeGreaterThanOrEqual(300)
  brokers[0]!.proc.kill('SIGKILL')
  await brokers[0]!.proc.exited
  const atKill = acked.size
  // The load goes on through the two brokers left.
  expect(await until(atKill + 300, 15_000)).toBeGreaterThanOrEqual(atKill + 300)
  stop = true
  await Promise.all(senders)
  sendersDoneAt = Date.now()
  await Promise.all(receivers)

  const rows = [...(await database.sql`SELECT seq, type, at, data, hash FROM events ORDER BY seq`)]
  let prev = GENESIS_HASH
  rows.forEach((row, i) => {
    expect(Number(row.seq)).toBe(i + 1)
    expect(row.hash).toBe(chainHash(prev, i + 1, row.type, row.at, row.data))
    prev = row.hash
  })
  const stored = new Map<string, number[]>()
  for (const row of rows.filter((r) => r.type === 'MessageSent')) {
    const content = JSON.parse(row.data).content as string
    stored.set(content, [...(stored.get(content) ?? []), Number(row.seq)])
  }
  expect([...acked].filter(([content, seq]) => stored.get(content)?.[0] !== seq)).toEqual([])
  expect([...stored].filter(([, seqs]) => seqs.length > 1)).toEqual([])
  // Each receiver got every acknowledged message of its pair once, in seq order, across the failover.
  for (let i = 0; i < PAIRS; i++) {
    const expected = ackedFor(i).sort((a, b) => a - b)
    const seen = received.get(i)!
    expect(seen.filter((seq) => expected.includes(seq))).toEqual(expected)
    expect(new Set(seen).size).toBe(seen.length)
  }
  const audit = runTool('src/cli/audit.ts', ['--db', database.url])
  expect(audit.stdout).toContain('audit passed')
}, 60_000)
