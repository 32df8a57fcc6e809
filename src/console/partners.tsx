// Partners with their kind, reachability and status; a person can message any of them from here.
import { useState } from 'preact/hooks'
import { api, type Partner } from './api.ts'
import type { Store } from './store.ts'
import { useStore } from './use-store.ts'

/** The best way to reach the partner now: the broker's `reachability` when it gives one, else what presence says. */
export const reachOf = (p: Partner): string => p.reachability ?? (p.isListening ? 'listening' : p.status)

export function PartnerList({ store }: { store: Store }) {
  const s = useStore(store)
  const [to, setTo] = useState<string | null>(null)
  const [text, setText] = useState('')
  return (
    <section class="partners" aria-label="partners">
      <h2>Partners ({s.partners.length})</h2>
      <ul>
        {s.partners.map((p) => (
          <li key={p.id} data-partner={p.id}>
            <span class={`dot ${reachOf(p)}`} title={reachOf(p)} />
            <span class="pid">{p.id}</span>
            {p.kind === 'human' && <span class="badge human">human</span>}
            <span class="reach" data-testid="reachability">
              {reachOf(p)}
              {p.sessions !== undefined && p.sessions > 1 ? ` ×${p.sessions}` : ''}
            </span>
            {p.status_message && <span class="status">{p.status_message}</span>}
            {p.id !== s.humanId && (
              <button type="button" class="small" onClick={() => setTo(to === p.id ? null : p.id)}>
                message
              </button>
            )}
          </li>
        ))}
      </ul>
      {to && (
        <form
          class="compose"
          onSubmit={async (e) => {
            e.preventDefault()
            if (await store.act(`message to ${to}`, async (fromId) => {
                const sent = await api.talk({ fromId, to, content: text })
                void store.select(sent.conversationId)
              })) setText('')
          }}
        >
          <textarea aria-label={`message to ${to}`} value={text} onInput={(e) => setText(e.currentTarget.value)} rows={2} />
          <button type="submit">Send to {to}</button>
        </form>
      )}
    </section>
  )
}
