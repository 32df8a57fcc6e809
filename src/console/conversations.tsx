// Every conversation (the operator sees them all), newest activity first, and the form that creates a group.
import { useState } from 'preact/hooks'
import { api } from './api.ts'
import type { Store } from './store.ts'
import { useStore } from './use-store.ts'

export function ConversationList({ store }: { store: Store }) {
  const s = useStore(store)
  const [name, setName] = useState('')
  const [members, setMembers] = useState('')
  const list = [...s.conversations.values()].sort((a, b) => (b.last_message_seq ?? 0) - (a.last_message_seq ?? 0))
  return (
    <section class="conversations" aria-label="conversations">
      <h2>Conversations ({list.length})</h2>
      <ul>
        {list.map((c) => (
          <li key={c.id} class={c.id === s.selected ? 'selected' : ''} data-conversation={c.id}>
            <button type="button" class="link" onClick={() => void store.select(c.id)}>
              {c.type === 'group' ? `# ${c.name ?? c.id}` : c.participants.join(' ↔ ')}
            </button>
            <span class="count">{c.message_count}</span>
            {c.is_paused && <span class="badge paused">paused</span>}
            {c.is_archived && <span class="badge">archived</span>}
          </li>
        ))}
      </ul>
      <form
        class="new-group"
        onSubmit={async (e) => {
          e.preventDefault()
          const participants = members.split(',').map((m) => m.trim()).filter(Boolean)
          const ok = await store.act(`group "${name}"`, async (creatorId) => {
            const { conversation } = await api.createGroup(creatorId, name, participants)
            void store.select(conversation.id)
          })
          if (ok) {
            setName('')
            setMembers('')
          }
        }}
      >
        <h3>New group</h3>
        <input aria-label="group name" placeholder="name" value={name} onInput={(e) => setName(e.currentTarget.value)} />
        <input
          aria-label="group members"
          placeholder="members: alice, bob"
          value={members}
          onInput={(e) => setMembers(e.currentTarget.value)}
        />
        <button type="submit">Create group</button>
      </form>
    </section>
  )
}
