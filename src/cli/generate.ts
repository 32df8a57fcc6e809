// Fills a fresh log file with a realistic, seeded mix of events, for measuring replay and audit at scale.
import { existsSync } from 'node:fs'
import type { DuoEvent } from '../events/schema.ts'
import { openStore } from '../store.ts'
import { integerFlag, parseFlags, runCli, UsageError } from './args.ts'

const USAGE = 'usage: bun src/cli/generate.ts --db PATH --events N [--batch N] [--seed N] [--sync full|normal]'

/** A small, fast, seeded PRNG (mulberry32): the same seed gives the same log, apart from timestamps. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const WORDS = 'the broker log event seq cursor partner message review patch test build merge branch fix bug refactor schema projection listen talk ack done please check this ok thanks'.split(' ')

type Conversation = { id: string; members: string[]; lastMessageSeq: number; group: boolean }

/**
 * An endless stream of plausible events that the rules would accept: partners register, talk directly
 * (creating the direct conversation on first use) and in groups, acknowledge, change settings, leave groups.
 * `nextSeq` is the seq the next event will get, so read positions can point at real messages.
 */
export function createEventSource(random: () => number, partnerCount = 40) {
  const pick = <T>(items: T[]): T => items[Math.floor(random() * items.length)]!
  const partners: string[] = []
  const online = new Set<string>()
  const conversations: Conversation[] = []
  const directs = new Map<string, Conversation>()
  let groups = 0

  const text = () => {
    const n = 3 + Math.floor(random() * 40)
    const words: string[] = []
    for (let i = 0; i < n; i++) words.push(pick(WORDS))
    return words.join(' ')
  }
  const register = (id: string): DuoEvent => {
    online.add(id)
    return { type: 'PartnerRegistered', data: { partnerId: id, name: `Partner ${id}`, projectPath: `/home/dev/${id}` } }
  }

  function* next(nextSeq: () => number): Generator<DuoEvent> {
    for (;;) {
      if (partners.length < partnerCount) {
        const id = `agent-${partners.length + 1}`
        partners.push(id)
        yield register(id)
        continue
      }
      const r = random()
      const from = pick(partners)
      if (!online.has(from)) {
        yield register(from)
      } else if (r < 0.86) {
        // A message: mostly into existing conversations, sometimes opening a new direct one.
        let conversation: Conversation | undefined
        if (conversations.length > 0 && random() < 0.9) {
          const c = pick(conversations)
          if (c.members.length > 0) conversation = c
        }
        if (!conversation) {
          const to = pick(partners)
          if (to === from) continue
          const key = from < to ? `${from}\n${to}` : `${to}\n${from}`
          conversation = directs.get(key)
          if (!conversation) {
            const [low, high] = from < to ? [from, to] : [to, from]
            conversation = { id: `direct_${low}_${high}`, members: [from, to], lastMessageSeq: 0, group: false }
            directs.set(key, conversation)
            conversations.push(conversation)
            yield {
              type: 'ConversationCreated',
              data: { conversationId: conversation.id, kind: 'direct', name: null, createdBy: from, participants: [from, to] },
            }
          }
        }
        const sender = conversation.members.includes(from) ? from : pick(conversation.members)
        conversation.lastMessageSeq = nextSeq()
        yield { type: 'MessageSent', data: { conversationId: conversation.id, fromId: sender, content: text() } }
      } else if (r < 0.95) {
        const c = conversations.length > 0 ? pick(conversations) : undefined
        if (!c || c.lastMessageSeq === 0 || c.members.length === 0) continue
        const partnerId = pick(c.members)
        // Mostly reads; some deliveries reported on the way (a push, a hook's context).
        const d = random()
        yield d < 0.7
          ? { type: 'ReadPositionAdvanced', data: { partnerId, conversationId: c.id, seq: c.lastMessageSeq } }
          : { type: 'DeliveryAdvanced', data: { partnerId, conversationId: c.id, state: d < 0.85 ? 'pushed' : 'surfaced', seq: c.lastMessageSeq } }
      } else if (r < 0.965) {
        const members = [...new Set([from, pick(partners), pick(partners), pick(partners)])]
        if (members.length < 2) continue
        const c: Conversation = { id: `group_${++groups}`, members, lastMessageSeq: 0, group: true }
        conversations.push(c)
        yield {
          type: 'ConversationCreated',
          data: { conversationId: c.id, kind: 'group', name: `Team ${groups}`, createdBy: from, participants: members },
        }
      } else if (r < 0.975) {
        const c = conversations.find((c) => c.group && c.members.includes(from))
        if (!c) continue
        c.members = c.members.filter((m) => m !== from)
        yield { type: 'ParticipantLeft', data: { conversationId: c.id, partnerId: from } }
        if (c.members.length === 0) yield { type: 'ConversationArchived', data: { conversationId: c.id } }
      } else if (r < 0.985) {
        yield { type: 'PartnerStatusChanged', data: { partnerId: from, message: random() < 0.8 ? text().slice(0, 80) : null } }
      } else if (r < 0.99) {
        yield { type: 'NotificationsSwitched', data: { partnerId: from, enabled: random() < 0.5 } }
      } else {
        online.delete(from)
        yield { type: 'PartnerWentOffline', data: { partnerId: from } }
      }
    }
  }
  return { next }
}

async function generate(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, { db: 'string', events: 'string', batch: 'string', seed: 'string', sync: 'string' })
  if (!flags.db || flags.events === undefined) throw new UsageError(USAGE)
  const total = integerFlag('events', flags.events, 1)!
  const batch = integerFlag('batch', flags.batch, 1) ?? 5000
  const seed = integerFlag('seed', flags.seed) ?? 1
  const sync = flags.sync ?? 'normal'
  if (sync !== 'full' && sync !== 'normal') throw new UsageError('--sync is full or normal')
  if (flags.db === ':memory:' || existsSync(flags.db)) throw new UsageError(`${flags.db} exists; generate writes a new file`)

  const store = openStore({ path: flags.db, sync })
  // A 256 MB page cache instead of SQLite's 2 MB: the index pages of a growing log stay in memory (a fifth faster).
  store.db.run('PRAGMA cache_size = -262144')
  const started = performance.now()
  const stream = createEventSource(seededRandom(seed)).next(() => store.log.lastSeq() + pending + 1)
  let pending = 0
  let written = 0
  while (written < total) {
    const size = Math.min(batch, total - written)
    await store.log.transact(() => {
      const events: DuoEvent[] = []
      pending = 0
      while (events.length < size) {
        events.push(stream.next().value as DuoEvent)
        pending = events.length
      }
      store.log.append(events)
    })
    written += size
  }
  await store.close()
  const seconds = (performance.now() - started) / 1000
  console.error(`generate: ${written} events in ${seconds.toFixed(2)} s (${Math.round(written / seconds)} events/s) into ${flags.db}`)
  return 0
}

if (import.meta.main) await runCli('generate', () => generate(Bun.argv.slice(2)))
