// What this partner has handed to the model (its listen position) and what arrived since (unread).
import type { MessageView } from './broker-client.ts'
import type { ListenPosition } from './state-file.ts'

export const START: ListenPosition = { cursor: 0, conversations: {} }

export function isDelivered(position: ListenPosition, message: Pick<MessageView, 'seq' | 'conversation_id'>): boolean {
  return message.seq <= position.cursor || (position.conversations[message.conversation_id] ?? 0) >= message.seq
}

/** The `after` to ask the broker with: past everything already delivered in the scope asked for. */
export function resumeAfter(position: ListenPosition, conversationId?: string): number {
  if (!conversationId) return position.cursor
  return Math.max(position.cursor, position.conversations[conversationId] ?? 0)
}

/**
 * The position once a listen answer was handed over: everything the broker covered up to `cursor`
 * (in one conversation when `conversationId` is given) counts as delivered.
 */
export function advance(position: ListenPosition, cursor: number, conversationId?: string): ListenPosition {
  if (conversationId) {
    if (cursor <= resumeAfter(position, conversationId)) return position
    return { cursor: position.cursor, conversations: { ...position.conversations, [conversationId]: cursor } }
  }
  const next = Math.max(position.cursor, cursor)
  const conversations = Object.fromEntries(Object.entries(position.conversations).filter(([, seq]) => seq > next))
  return { cursor: next, conversations }
}

/** The furthest of two positions (each part moves only forward); `a` itself when `b` adds nothing. */
export function mergePositions(a: ListenPosition, b: ListenPosition): ListenPosition {
  let next = advance(a, b.cursor)
  for (const [conversationId, seq] of Object.entries(b.conversations)) next = advance(next, seq, conversationId)
  return next
}

/** Unread messages: seen arriving (by the follower), not yet handed over by `listen`. Ordered by seq. */
export class Unread {
  private readonly bySeq = new Map<number, MessageView>()
  private readonly listeners: Array<() => void> = []

  onChange(listener: () => void): void {
    this.listeners.push(listener)
  }

  /** Records an arrival; returns false for one already known or already delivered. */
  add(position: ListenPosition, message: MessageView): boolean {
    if (isDelivered(position, message) || this.bySeq.has(message.seq)) return false
    this.bySeq.set(message.seq, message)
    this.changed()
    return true
  }

  /** Forgets what `position` now covers. */
  prune(position: ListenPosition): void {
    let removed = false
    for (const message of this.bySeq.values()) {
      if (isDelivered(position, message)) removed = this.bySeq.delete(message.seq)
    }
    if (removed) this.changed()
  }

  clear(): void {
    if (this.bySeq.size === 0) return
    this.bySeq.clear()
    this.changed()
  }

  list(): MessageView[] {
    return [...this.bySeq.values()].sort((a, b) => a.seq - b.seq)
  }

  get size(): number {
    return this.bySeq.size
  }

  private changed(): void {
    for (const listener of this.listeners) listener()
  }
}
