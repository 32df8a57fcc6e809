// The event log as it grows, newest first, filterable by type, partner and conversation.
import { useMemo, useState } from 'preact/hooks'
import type { Envelope } from './api.ts'
import type { State, Store } from './store.ts'
import { useStore } from './use-store.ts'
import { VirtualList } from './virtual-list.tsx'

/** Whether an event concerns `partner`: it names it as actor, sender, creator or participant, or happens in one of its conversations. */
function touches(event: Envelope, partner: string, conversations: State['conversations']): boolean {
  const d = event.data as Record<string, unknown>
  return (
    d.partnerId === partner ||
    (typeof d.conversationId === 'string' && conversations.get(d.conversationId)?.participants.includes(partner) === true) ||
    d.fromId === partner ||
    d.createdBy === partner ||
    (Array.isArray(d.participants) && d.participants.includes(partner))
  )
}

const summary = (event: Envelope): string => {
  const { content, ...rest } = event.data as Record<string, unknown>
  const text = JSON.stringify(rest)
  return typeof content === 'string' ? `${text} “${content.slice(0, 200)}”` : text
}

export function EventLog({ store }: { store: Store }) {
  const s = useStore(store)
  const [type, setType] = useState('')
  const [partner, setPartner] = useState('')
  const [conversation, setConversation] = useState('')
  const types = useMemo(() => [...new Set(s.events.map((e) => e.type))].sort(), [s.events.length])
  const shown = useMemo(() => {
    const list: Envelope[] = []
    for (let i = s.events.length - 1; i >= 0; i--) {
      const e = s.events[i]!
      if (type && e.type !== type) continue
      if (partner && !touches(e, partner.trim(), s.conversations)) continue
      if (conversation && (e.data as { conversationId?: string }).conversationId !== conversation.trim()) continue
      list.push(e)
    }
    return list
  }, [s.events, s.conversations, type, partner, conversation])
  return (
    <section class="events" aria-label="event log">
      <h2>Event log</h2>
      <div class="filters">
        <select aria-label="filter by type" value={type} onChange={(e) => setType(e.currentTarget.value)}>
          <option value="">every type</option>
          {types.map((t) => (
            <option key={t} value={t}>
              {t}
            </option>
          ))}
        </select>
        <input aria-label="filter by partner" placeholder="partner" value={partner} onInput={(e) => setPartner(e.currentTarget.value)} size={8} />
        <input
          aria-label="filter by conversation"
          placeholder="conversation"
          value={conversation}
          onInput={(e) => setConversation(e.currentTarget.value)}
          size={10}
        />
      </div>
      <VirtualList
        label="events"
        class="event-rows"
        items={shown}
        rowHeight={22}
        keyOf={(e) => e.seq}
        onEnd={() => void store.olderEvents()}
        render={(e) => (
          <div class="event" data-seq={e.seq} title={JSON.stringify(e, null, 1)}>
            <span class="seq">{e.seq}</span>
            <span class={`type t-${e.type}`}>{e.type}</span>
            <span class="data">{summary(e)}</span>
          </div>
        )}
      />
    </section>
  )
}
