// Each `bun run duo` command: its flags, its help text, and what it does through the broker's HTTP API.
import { integerFlag, UsageError } from '../args.ts'
import { type BrokerCaller, createBrokerCaller, sseEvents } from './client.ts'
import { eventLine, messageLines, type Paint, partnerTable } from './format.ts'
import { type Identity, identityPath, loadIdentity, requireIdentity, saveIdentity } from './identity.ts'

export type Context = {
  flags: Record<string, string | boolean>
  words: string[]
  json: boolean
  paint: Paint
  out: (line: string) => void
}

type Command = { flags: Record<string, 'string' | 'boolean'>; help: string; run: (c: Context) => Promise<number> }

type Envelope = { seq: number; type: string; at: string; data: Record<string, any>; hash: string }
type Message = { seq: number; conversation_id: string; from_id: string; from_kind?: string; content: string; created_at: string }

const COMMON = `Every command takes --json (machine-readable output), --broker URL (default: the identity's, else
BROKER_URL, else http://127.0.0.1:3210) and --help.`

export const USAGE = `usage: bun run duo <command> [options]

The human's seat in a terminal: you speak as a person (a partner of kind "human"), agents see that.

commands:
  login --as ID      register yourself as a human partner and keep the identity (file mode 0600)
  whoami             the identity in use (never its tokens)
  send TARGET TEXT   send to a partner id, or into a conversation (direct_… / group_… / --in ID)
  read CONVERSATION  a conversation's latest messages, oldest first
  watch              a live, readable tail of conversations (Ctrl-C to stop)
  partners           partners with their kind and how they can be reached
  log                the event log, readable, from a cursor (--follow stays live)
  pause CONVERSATION   stop the agents of a conversation until a person writes or resumes
  resume CONVERSATION  let agents talk again where the loop guard (or a person) paused them

${COMMON}
The identity lives in ${identityPath()} (DUO_CLI_FILE overrides it).`

const streamFailed = (c: Context, done: AbortSignal) => (error: unknown) => {
  if (done.aborted) return 0
  throw error
}

/** Stops on Ctrl-C or SIGTERM without a stack trace. */
function interruption(): AbortSignal {
  const stop = new AbortController()
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => stop.abort())
  return stop.signal
}

function brokerOf(c: Context, identity: Identity | null): string {
  const url = (c.flags.broker as string | undefined) ?? identity?.broker ?? process.env.BROKER_URL ?? 'http://127.0.0.1:3210'
  return url.replace(/\/+$/, '')
}

function session(c: Context): { identity: Identity; broker: BrokerCaller } {
  const identity = requireIdentity()
  return { identity, broker: createBrokerCaller(brokerOf(c, identity)) }
}

/** Reading beyond one's own conversations needs the operator token; without it, the human's own. */
const readerToken = (identity: Identity) => identity.operatorToken ?? identity.token

const asMessage = (m: Message) => ({
  seq: m.seq,
  conversationId: m.conversation_id,
  from: m.from_id,
  fromKind: m.from_kind,
  content: m.content,
  at: m.created_at,
})

const word = (c: Context, index: number, what: string): string => {
  const value = c.words[index]
  if (value === undefined) throw new UsageError(`give ${what} (see --help)`)
  return value
}

export const COMMANDS: Record<string, Command> = {
  login: {
    flags: { as: 'string', name: 'string', 'operator-token': 'string' },
    help: `usage: bun run duo login --as ID [--name NAME] [--operator-token TOKEN] [--broker URL]

Registers ID as a human partner (kind "human": agents are told a person is speaking) and keeps the
broker URL, the id and its token in ${identityPath()} (mode 0600). In token mode this needs the
operator token (--operator-token, else DUO_ADMIN_TOKEN); it is kept too, so that read, watch and log
can see every conversation. Logging in again refreshes the identity.
${COMMON}`,
    async run(c) {
      const id = c.flags.as as string | undefined
      if (!id) throw new UsageError('give your partner id with --as ID')
      const broker = brokerOf(c, null)
      const api = createBrokerCaller(broker)
      const operatorToken = (c.flags['operator-token'] as string | undefined) ?? process.env.DUO_ADMIN_TOKEN ?? null
      const health = await api.get<{ auth: 'token' | 'open'; broker_id?: string }>('/health', null)
      if (health.auth === 'token' && !operatorToken)
        throw new UsageError('this broker is in token mode: give the operator token with --operator-token (or DUO_ADMIN_TOKEN)')
      const registered = await api.post<{ token?: string; partner: { kind: string } }>('/register', operatorToken, {
        partnerId: id,
        kind: 'human',
        ...(c.flags.name ? { name: c.flags.name } : {}),
      })
      let token = registered.token ?? null
      // Already a human partner: its token was handed out before; the operator issues a fresh one for this file.
      if (health.auth === 'token' && token === null)
        token = (await api.post<{ token: string }>(`/partners/${encodeURIComponent(id)}/token`, operatorToken)).token
      const identity: Identity = { broker, brokerId: health.broker_id ?? null, partnerId: id, token, operatorToken }
      saveIdentity(identity)
      if (c.json) c.out(JSON.stringify({ partnerId: id, broker, file: identityPath() }))
      else c.out(`logged in as ${id} (human) on ${broker}; identity kept in ${identityPath()} (mode 0600)`)
      return 0
    },
  },

  whoami: {
    flags: {},
    help: `usage: bun run duo whoami\n\nThe identity in use: broker, partner id, and which tokens are kept (never their values).\n${COMMON}`,
    async run(c) {
      const identity = loadIdentity()
      if (!identity) {
        if (c.json) c.out(JSON.stringify({ loggedIn: false, file: identityPath() }))
        else c.out(`not logged in (no ${identityPath()}); run \`bun run duo login --as <your-id>\``)
        return 1
      }
      const summary = {
        loggedIn: true,
        partnerId: identity.partnerId,
        broker: identity.broker,
        partnerToken: identity.token !== null,
        operatorToken: identity.operatorToken !== null,
        file: identityPath(),
      }
      if (c.json) c.out(JSON.stringify(summary))
      else
        c.out(
          `${identity.partnerId} (human) on ${identity.broker}; tokens kept: ${[identity.token && 'partner', identity.operatorToken && 'operator'].filter(Boolean).join(', ') || 'none (open mode)'}`,
        )
      return 0
    },
  },

  send: {
    flags: { to: 'string', in: 'string' },
    help: `usage: bun run duo send TARGET TEXT…    (or --to PARTNER / --in CONVERSATION; TEXT "-" reads stdin)

Sends TEXT as you (a human). TARGET is a partner id (the direct conversation is made on first use), or a
conversation id (direct_… or group_…): a person may post into any conversation without joining it.
${COMMON}`,
    async run(c) {
      const { identity, broker } = session(c)
      let target = { to: c.flags.to as string | undefined, conversationId: c.flags.in as string | undefined }
      let words = c.words
      if (!target.to && !target.conversationId) {
        const first = word(c, 0, 'a partner id or a conversation id, then the text')
        target = /^(direct|group)_/.test(first) ? { to: undefined, conversationId: first } : { to: first, conversationId: undefined }
        words = words.slice(1)
      }
      let content = words.join(' ')
      if (content === '-') content = (await new Response(Bun.stdin.stream()).text()).replace(/\n$/, '')
      if (content === '') throw new UsageError('give the text to send (or "-" to read it from stdin)')
      const sent = await broker.post<{ conversationId: string; seq: number }>('/talk', identity.token ?? identity.operatorToken, {
        fromId: identity.partnerId,
        ...(target.conversationId ? { conversationId: target.conversationId } : { to: target.to }),
        content,
      })
      if (c.json) c.out(JSON.stringify(sent))
      else c.out(`sent #${sent.seq} into ${sent.conversationId}`)
      return 0
    },
  },

  read: {
    flags: { limit: 'string' },
    help: `usage: bun run duo read CONVERSATION [--limit N]\n\nThe latest N messages (default 20, at most 1000) of a conversation, oldest first.\n${COMMON}`,
    async run(c) {
      const { identity, broker } = session(c)
      const id = word(c, 0, 'a conversation id')
      const limit = integerFlag('limit', c.flags.limit as string | undefined, 1) ?? 20
      const { messages } = await broker.get<{ messages: Message[] }>(
        `/conversations/${encodeURIComponent(id)}/messages?limit=${limit}`,
        readerToken(identity),
      )
      if (c.json) for (const m of messages) c.out(JSON.stringify(m))
      else if (messages.length === 0) c.out(c.paint.dim(`no messages in ${id} yet`))
      else for (const m of messages) c.out(messageLines(asMessage(m), c.paint))
      return 0
    },
  },

  watch: {
    flags: { in: 'string', after: 'string' },
    help: `usage: bun run duo watch [--in CONVERSATION] [--after SEQ]

A live tail of messages as they are sent, readable (colours on a terminal), until Ctrl-C. With the
operator token (kept by login) it shows every conversation, and new conversations too; otherwise
yours. --after replays from that seq first (default: only new ones). --json prints one message per line.
${COMMON}`,
    async run(c) {
      const { identity, broker } = session(c)
      const only = c.flags.in as string | undefined
      const done = interruption()
      const after = integerFlag('after', c.flags.after as string | undefined) ?? (await broker.get<{ last_seq: number }>('/health', null)).last_seq
      if (!c.json) c.out(c.paint.dim(`watching ${only ?? 'every conversation'} on ${identity.broker} from seq ${after} (Ctrl-C to stop)`))
      if (identity.operatorToken) {
        const response = await broker.stream(`/events/stream?after=${after}`, identity.operatorToken, done)
        try {
          for await (const e of sseEvents<Envelope>(response)) {
            if (only && e.data.conversationId !== only) continue
            if (e.type === 'MessageSent') {
              const m = { seq: e.seq, conversationId: e.data.conversationId, from: e.data.fromId, fromKind: e.data.fromKind, content: e.data.content, at: e.at }
              c.out(c.json ? JSON.stringify(m) : messageLines(m, c.paint))
            } else if (!c.json && (e.type.startsWith('Conversation') || e.type.startsWith('Participant')))
              c.out(c.paint.dim(eventLine(e, c.paint)))
          }
        } catch (error) {
          return streamFailed(c, done)(error)
        }
        return 0
      }
      const scope = only ? `&conversationId=${encodeURIComponent(only)}` : ''
      const response = await broker.stream(`/listen/${encodeURIComponent(identity.partnerId)}/stream?after=${after}${scope}`, identity.token, done)
      try {
        for await (const m of sseEvents<Message>(response)) c.out(c.json ? JSON.stringify(asMessage(m)) : messageLines(asMessage(m), c.paint))
      } catch (error) {
        return streamFailed(c, done)(error)
      }
      return 0
    },
  },

  partners: {
    flags: {},
    help: `usage: bun run duo partners\n\nEvery partner with its kind (agent or human), how it can be reached now, its name and status.\n${COMMON}`,
    async run(c) {
      const { identity, broker } = session(c)
      const { partners } = await broker.get<{ partners: any[] }>('/partners', readerToken(identity))
      if (c.json) c.out(JSON.stringify(partners))
      else c.out(partnerTable(partners, c.paint))
      return 0
    },
  },

  log: {
    flags: { after: 'string', limit: 'string', type: 'string', follow: 'boolean' },
    help: `usage: bun run duo log [--after SEQ] [--limit N] [--type TYPE] [--follow]

The event log in readable lines, oldest first, from the broker (the operator token, kept by login, in
token mode). Without --after it shows the last N events (default 50); --follow then stays live.
--json prints the envelopes as JSON Lines, like \`bun run replay\`.
${COMMON}`,
    async run(c) {
      const { identity, broker } = session(c)
      const token = identity.operatorToken
      const limit = Math.min(integerFlag('limit', c.flags.limit as string | undefined, 1) ?? 50, 1000)
      const type = c.flags.type as string | undefined
      const lastSeq = (await broker.get<{ last_seq: number }>('/health', null)).last_seq
      let after = integerFlag('after', c.flags.after as string | undefined) ?? Math.max(0, lastSeq - limit)
      const print = (e: Envelope) => c.out(c.json ? JSON.stringify(e) : eventLine(e, c.paint))
      for (let shown = 0; shown < limit; ) {
        const page = await broker.get<{ events: Envelope[]; next: number }>(
          `/events?after=${after}&limit=${Math.min(1000, limit - shown)}${type ? `&type=${encodeURIComponent(type)}` : ''}`,
          token,
        )
        for (const e of page.events) print(e)
        shown += page.events.length
        if (page.next <= after || page.events.length === 0) break
        after = page.next
      }
      if (!c.flags.follow) return 0
      const done = interruption()
      const response = await broker.stream(`/events/stream?after=${after}`, token, done)
      try {
        for await (const e of sseEvents<Envelope>(response)) if (!type || e.type === type) print(e)
      } catch (error) {
        return streamFailed(c, done)(error)
      }
      return 0
    },
  },

  pause: {
    flags: {},
    help: `usage: bun run duo pause CONVERSATION

Pauses a conversation as the loop guard does: its agents' talk is refused (409 conversation_paused)
until a person writes there or resumes it.
${COMMON}`,
    async run(c) {
      const { identity, broker } = session(c)
      const id = word(c, 0, 'a conversation id')
      const answer = await broker.post<{ paused: boolean }>(
        `/conversations/${encodeURIComponent(id)}/pause`,
        identity.token ?? identity.operatorToken,
        { partnerId: identity.partnerId },
      )
      if (c.json) c.out(JSON.stringify(answer))
      else c.out(answer.paused ? `paused ${id}: its agents wait for a person` : `${id} was paused already`)
      return 0
    },
  },

  resume: {
    flags: {},
    help: `usage: bun run duo resume CONVERSATION

Resumes a conversation the loop guard paused (DUO_MAX_HOPS agent messages in a row with no human
message): its agents may talk again. Sending a message into it as yourself resumes it too.
${COMMON}`,
    async run(c) {
      const { identity, broker } = session(c)
      const id = word(c, 0, 'a conversation id')
      const answer = await broker.post<{ resumed: boolean }>(
        `/conversations/${encodeURIComponent(id)}/resume`,
        identity.token ?? identity.operatorToken,
        { partnerId: identity.partnerId },
      )
      if (c.json) c.out(JSON.stringify(answer))
      else c.out(answer.resumed ? `resumed ${id}` : `${id} was not paused; its count of agent messages starts over`)
      return 0
    },
  },
}
