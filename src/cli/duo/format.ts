// `bun run duo`'s readable output: one line per event or message, colours only on a terminal, and other agents' text made harmless for it.

export type Paint = {
  dim: (s: string) => string
  bold: (s: string) => string
  cyan: (s: string) => string
  yellow: (s: string) => string
  green: (s: string) => string
  red: (s: string) => string
}

const code = (open: number, close: number) => (s: string) => `\x1b[${open}m${s}\x1b[${close}m`
const plain = (s: string) => s

/** Colours when stdout is a terminal and NO_COLOR is unset (https://no-color.org); plain text otherwise. */
export function paintFor(tty: boolean, env: Record<string, string | undefined> = process.env): Paint {
  const on = tty && !env.NO_COLOR && env.TERM !== 'dumb'
  return on
    ? { dim: code(2, 22), bold: code(1, 22), cyan: code(36, 39), yellow: code(33, 39), green: code(32, 39), red: code(31, 39) }
    : { dim: plain, bold: plain, cyan: plain, yellow: plain, green: plain, red: plain }
}

/**
 * Text written by others, safe to print on a terminal: escape sequences (which could move the cursor, retitle
 * the window or fake Duo's own lines) and other control characters are shown as visible `\xNN` codes.
 */
export const harmless = (text: string): string =>
  text.replace(/[\u0000-\u0008\u000B-\u001F\u007F-\u009F\u202A-\u202E\u2066-\u2069\u200B-\u200F]/g, (c) => `\\u{${c.codePointAt(0)!.toString(16)}}`)

const one = (text: string) => harmless(text).replace(/\s*\n\s*/g, ' ⏎ ')

export type MessageLike = { seq: number; conversationId: string; from: string; fromKind?: string; content: string; at: string }

/** A message as `read` and `watch` print it: time, seq, conversation, sender (a person marked), then the text, indented. */
export function messageLines(m: MessageLike, p: Paint): string {
  const who = m.fromKind === 'human' ? `${p.yellow(harmless(m.from))} ${p.dim('(human)')}` : p.bold(harmless(m.from))
  const head = `${p.dim(m.at.slice(11, 19))} ${p.dim(`#${m.seq}`)} ${p.cyan(harmless(m.conversationId))} ${who}:`
  const body = harmless(m.content).split('\n').join('\n    ')
  return `${head}\n    ${body}`
}

type Envelope = { seq: number; type: string; at: string; data: Record<string, any> }

/** An event as `log` prints it: one line, what happened in words, then the fields that say to whom. */
export function eventLine(e: Envelope, p: Paint): string {
  const d = e.data
  const head = `${p.dim(`#${e.seq}`)} ${p.dim(e.at.replace('T', ' ').slice(0, 19))} ${p.bold(e.type)}`
  let what: string
  switch (e.type) {
    case 'PartnerRegistered':
      what = `${one(d.partnerId)} registered as "${one(d.name)}"${d.kind === 'human' ? ' (human)' : ''}${d.tokenHash ? ', token issued' : ''}`
      break
    case 'MessageSent':
      what = `${one(d.fromId)}${d.fromKind === 'human' ? ' (human)' : ''} → ${p.cyan(one(d.conversationId))}: ${one(String(d.content)).slice(0, 200)}`
      break
    case 'ConversationCreated':
      what = `${p.cyan(one(d.conversationId))} ${d.kind}${d.name ? ` "${one(d.name)}"` : ''} by ${one(d.createdBy)}: ${(d.participants as string[]).map(one).join(', ')}`
      break
    case 'ReadPositionAdvanced':
      what = `${one(d.partnerId)} read ${p.cyan(one(d.conversationId))} up to #${d.seq}`
      break
    default:
      what = Object.entries(d)
        .filter(([key]) => key !== 'tokenHash')
        .map(([key, value]) => `${key}=${one(typeof value === 'string' ? value : JSON.stringify(value))}`)
        .join(' ')
  }
  return `${head} ${what}`
}

export type PartnerLike = {
  id: string
  name: string
  kind?: string
  status: string
  status_message: string | null
  isListening: boolean
  reachability?: string
}

/** The partners as a small table: id, kind, how to reach it, status message. */
export function partnerTable(partners: PartnerLike[], p: Paint): string {
  if (partners.length === 0) return p.dim('no partners yet')
  const width = Math.max(2, ...partners.map((x) => harmless(x.id).length))
  return partners
    .map((x) => {
      const reach = x.reachability ?? (x.isListening ? 'listening' : x.status)
      const paintReach = reach === 'offline' ? p.dim : p.green
      return `${harmless(x.id).padEnd(width)}  ${(x.kind ?? 'agent').padEnd(5)}  ${paintReach(reach.padEnd(9))}  ${one(x.name)}${x.status_message ? p.dim(` — ${one(x.status_message)}`) : ''}`
    })
    .join('\n')
}
