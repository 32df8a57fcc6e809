// Measures durable appends per second on a scratch file: one command per transaction, then group commit.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openStore, type Store } from '../store.ts'
import { integerFlag, parseFlags, runCli, UsageError } from './args.ts'

type Append = (store: Store, i: number) => Promise<unknown>

const content = (i: number) => `message ${i}: a line of ordinary length for a chat`
/** The bare log: one prepared event per transaction job (still projected into the views). */
const appendEvent: Append = (store, i) =>
  store.log.transact(() =>
    store.log.append([{ type: 'MessageSent', data: { conversationId: 'direct_alice_bob', fromId: 'alice', content: content(i) } }]),
  )
/** A whole command: decide reads the views, then appends. */
const talk: Append = (store, i) => store.commands.execute({ kind: 'talk', fromId: 'alice', to: 'bob', content: content(i) })

/** `count` appends, each awaited before the next: every one is its own transaction and fsync. */
async function sequential(store: Store, append: Append, count: number): Promise<number> {
  const started = performance.now()
  for (let i = 0; i < count; i++) await append(store, i)
  return count / ((performance.now() - started) / 1000)
}

/** `count` appends with `concurrency` in flight: those queued in one turn share a transaction. */
async function concurrent(store: Store, append: Append, count: number, concurrency: number): Promise<number> {
  const started = performance.now()
  let next = 0
  const client = async () => {
    while (next < count) await append(store, next++)
  }
  await Promise.all(Array.from({ length: concurrency }, client))
  return count / ((performance.now() - started) / 1000)
}

async function measure(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, { events: 'string', concurrency: 'string' })
  const count = integerFlag('events', flags.events, 1) ?? 5000
  const concurrency = integerFlag('concurrency', flags.concurrency, 1) ?? 100
  const sync = process.env.DUO_SYNC ?? 'full'
  if (sync !== 'full' && sync !== 'normal') throw new UsageError('DUO_SYNC is full or normal')
  const dir = mkdtempSync(join(tmpdir(), 'duo-append-rate-'))
  try {
    const store = openStore({ path: join(dir, 'rate.db'), sync })
    await store.commands.execute({ kind: 'register', partnerId: 'alice' })
    await store.commands.execute({ kind: 'register', partnerId: 'bob' })
    await talk(store, 0)
    console.log(`append rate, synchronous=${sync}, ${count} sequential and ${count * 4} concurrent appends each:`)
    for (const [name, append] of [['log.transact(append one event)', appendEvent], ['commands.execute(talk)', talk]] as const) {
      const one = await sequential(store, append, count)
      const batched = await concurrent(store, append, count * 4, concurrency)
      console.log(`  ${name}: one per transaction ${Math.round(one)} events/s; ${concurrency} in flight ${Math.round(batched)} events/s`)
    }
    await store.close()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  return 0
}

if (import.meta.main) await runCli('append-rate', () => measure(Bun.argv.slice(2)))
