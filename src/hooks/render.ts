// What the hooks put in front of the model: other partners' messages, framed as their words (untrusted.ts), within a budget.
import type { MessageView } from '../partner/broker-client.ts'
import { renderMessages as frameMessages } from '../partner/untrusted.ts'

/** Claude Code's limit for a hook's added context. */
export const CONTEXT_MAX_CHARS = 10_000

export type Rendered = {
  text: string
  /** The messages shown whole, which are what may be reported as surfaced or pushed. */
  shown: MessageView[]
}

/** Which of `messages` appear whole in a rendering: their closing frame line is there, not cut. */
function shownIn(text: string, messages: MessageView[]): MessageView[] {
  const tag = /--- duo:([a-z0-9]+) message #/.exec(text)?.[1]
  if (!tag) return []
  return messages.filter((m) => text.includes(`\n--- duo:${tag} end of #${m.seq} ---`))
}

/**
 * Duo's lead line, the messages framed by the partner's one framing of untrusted text, and Duo's closing line,
 * at most `maxChars` long. Oldest first when everything fits; when it does not, the newest messages are kept,
 * newest first, and a line says how many more `listen` has.
 */
export function renderMessages(messages: MessageView[], lead: string, tail: string, maxChars = CONTEXT_MAX_CHARS): Rendered {
  const budget = maxChars - lead.length - tail.length - 4
  const whole = frameMessages(messages)
  if (whole.length <= budget) return { text: [lead, whole, tail].join('\n\n'), shown: messages }
  const newestFirst = [...messages].sort((a, b) => b.seq - a.seq)
  const framed = frameMessages(newestFirst, { maxChars: budget })
  return { text: [lead, framed, tail].join('\n\n'), shown: shownIn(framed, newestFirst) }
}

/** Per conversation, the seq up to which every message given was shown: nothing for one with a gap. */
export function shownMarks(all: MessageView[], shown: MessageView[]): Array<{ conversationId: string; seq: number }> {
  const seen = new Set(shown.map((m) => m.seq))
  const marks = new Map<string, number>()
  const broken = new Set<string>()
  for (const m of [...all].sort((a, b) => a.seq - b.seq)) {
    if (broken.has(m.conversation_id)) continue
    if (seen.has(m.seq)) marks.set(m.conversation_id, m.seq)
    else broken.add(m.conversation_id)
  }
  return [...marks].map(([conversationId, seq]) => ({ conversationId, seq }))
}
