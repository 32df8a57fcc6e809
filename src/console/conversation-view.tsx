// One conversation: its members (add, remove), pause and resume (the loop guard's), a box to post as a human, and its messages newest first with delivery state.
import { useMemo, useState } from 'preact/hooks'
import { api, type Conversation, type Message } from './api.ts'
import type { ReceiptState, Store } from './store.ts'
import { useStore } from './use-store.ts'
import { VirtualList } from './virtual-list.tsx'

const ROW = 76

function Delivery({ receipt, available }: { receipt: ReceiptState | undefined; available: boolean | null }) {
  if (available === false || receipt === 'unavailable') return <span class="muted">stored</span>
  if (receipt === undefined || receipt === 'loading') return <span class="muted">…</span>
  if ('error' in receipt) return <span class="bad">{receipt.error}</span>
  return (
    <span class="receipts" data-testid="receipts">
      {receipt.recipients.map((r) => (
        <span key={r.partnerId} class={`state ${r.state}`} title={r.at ?? ''}>
          {r.partnerId}: {r.state}
        </span>
      ))}
    </span>
  )
}

function MessageRow({ m, receipt, available }: { m: Message; receipt: ReceiptState | undefined; available: boolean | null }) {
  return (
    <div class={`message ${m.from_kind === 'human' ? 'from-human' : ''}`} data-seq={m.seq}>
      <div class="meta">
        <span class="seq">#{m.seq}</span>
        <span class="from">{m.from_id}</span>
        {m.from_kind === 'human' && <span class="badge human">human</span>}
        <time>{m.created_at.slice(11, 19)}</time>
        <Delivery receipt={receipt} available={available} />
      </div>
      <div class="content" title={m.content}>
        {m.content}
      </div>
    </div>
  )
}

function Members({ store, c }: { store: Store; c: Conversation }) {
  const [adding, setAdding] = useState('')
  return (
    <div class="members">
      {c.participants.map((id) => (
        <span class="member" key={id}>
          {id}
          {c.type === 'group' && (
            <button
              type="button"
              class="small"
              aria-label={`remove ${id}`}
              onClick={() => void store.act(`remove ${id}`, (byId) => api.removeMember(c.id, byId, id))}
            >
              ×
            </button>
          )}
        </span>
      ))}
      {c.type === 'group' && (
        <form
          class="inline"
          onSubmit={async (e) => {
            e.preventDefault()
            if (await store.act(`add ${adding}`, (byId) => api.addMember(c.id, byId, adding.trim()))) setAdding('')
          }}
        >
          <input aria-label="add member" placeholder="add member" value={adding} onInput={(e) => setAdding(e.currentTarget.value)} size={10} />
          <button type="submit" class="small">
            add
          </button>
        </form>
      )}
    </div>
  )
}

export function ConversationView({ store }: { store: Store }) {
  const s = useStore(store)
  const [text, setText] = useState('')
  const c = s.selected ? s.conversations.get(s.selected) : undefined
  const loaded = s.selected ? s.messages.get(s.selected) : undefined
  const newestFirst = useMemo(() => (loaded ? loaded.list.slice().reverse() : []), [loaded])
  if (!c)
    return (
      <section class="conversation empty" aria-label="conversation">
        <p class="muted">Choose a conversation, or message a partner.</p>
      </section>
    )
  return (
    <section class="conversation" aria-label="conversation">
      <div class="conversation-head">
        <h2>{c.type === 'group' ? `# ${c.name ?? c.id}` : c.participants.join(' ↔ ')}</h2>
        <code class="muted">{c.id}</code>
        {c.is_paused ? (
          <>
            <span class="badge paused" data-testid="paused">
              paused: agents wait for a human
            </span>
            <button type="button" class="small" onClick={() => void store.act('resume', () => api.resume(c.id))}>
              Resume
            </button>
          </>
        ) : (
          <>
            {c.hops !== undefined && (
              <span class="muted small" title="agent messages in a row since the last human message or resume (the loop guard pauses at DUO_MAX_HOPS)">
                {c.hops === 1 ? '1 hop' : `${c.hops} hops`}
              </span>
            )}
            <button type="button" class="small" onClick={() => void store.act('pause', () => api.pause(c.id))}>
              Pause
            </button>
          </>
        )}
      </div>
      <Members store={store} c={c} />
      <form
        class="compose"
        onSubmit={async (e) => {
          e.preventDefault()
          if (await store.act('post', (fromId) => api.talk({ fromId, conversationId: c.id, content: text }))) setText('')
        }}
      >
        <textarea
          aria-label="message"
          placeholder={`post into ${c.id} as ${s.humanId} (human)`}
          value={text}
          rows={2}
          onInput={(e) => setText(e.currentTarget.value)}
          onKeyDown={(e) => {
            if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) e.currentTarget.form?.requestSubmit()
          }}
        />
        <button type="submit">Post</button>
      </form>
      {s.receiptsAvailable === false && (
        <p class="muted small" data-testid="receipts-unavailable">
          Delivery per recipient is not available from this broker (no GET /messages/:seq/receipts): messages show as stored.
        </p>
      )}
      <VirtualList
        label="messages"
        class="messages"
        items={newestFirst}
        rowHeight={ROW}
        keyOf={(m) => m.seq}
        render={(m) => <MessageRow m={m} receipt={s.receipts.get(m.seq)} available={s.receiptsAvailable} />}
        onEnd={() => void store.older(c.id)}
        onVisible={(shown) => store.wantReceipts(shown.map((m) => m.seq))}
      />
    </section>
  )
}
