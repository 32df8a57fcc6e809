// The console's entry: sign-in gate, header with the log's health, and the live views side by side.
import './style.css'
import { render } from 'preact'
import { useState } from 'preact/hooks'
import { ConversationList } from './conversations.tsx'
import { ConversationView } from './conversation-view.tsx'
import { EventLog } from './event-log.tsx'
import { PartnerList } from './partners.tsx'
import { createStore, type Store } from './store.ts'
import { useStore } from './use-store.ts'

function SignIn({ store }: { store: Store }) {
  const [token, setToken] = useState('')
  return (
    <form
      class="signin"
      onSubmit={(e) => {
        e.preventDefault()
        void store.signIn(token.trim())
      }}
    >
      <h1>Duo console</h1>
      <p>Sign in with the operator token (DUO_ADMIN_TOKEN, or the file the broker printed at start).</p>
      <input
        type="password"
        name="token"
        aria-label="operator token"
        autocomplete="current-password"
        value={token}
        onInput={(e) => setToken(e.currentTarget.value)}
      />
      <button type="submit">Sign in</button>
    </form>
  )
}

function Header({ store }: { store: Store }) {
  const s = useStore(store)
  const h = s.health
  const last = Math.max(s.lastSeq, h?.last_seq ?? 0)
  return (
    <header>
      <strong>Duo</strong>
      <span class={`pill ${s.stream.state}`} data-testid="stream-state" title={s.stream.detail ?? ''}>
        {s.stream.state === 'live' ? 'live' : s.stream.state}
      </span>
      <span data-testid="log-health">
        log: last seq {last}
        {h && (h.problem ? <em class="bad"> · chain broken: {h.problem}</em> : <> · chain verified through seq {h.verified_through}</>)}
      </span>
      <label class="speak-as">
        speak as
        <input
          aria-label="speak as"
          value={s.humanId}
          onChange={(e) => store.setHuman(e.currentTarget.value)}
          size={12}
        />
        <span class="badge human">human</span>
      </label>
      {s.session?.auth === 'token' ? (
        <button type="button" onClick={() => void store.signOut()}>
          Sign out
        </button>
      ) : (
        <span class="muted" title="DUO_AUTH=open: anyone who reaches the port can read and act">open mode</span>
      )}
    </header>
  )
}

function Notice({ store }: { store: Store }) {
  const { notice } = useStore(store)
  if (!notice) return null
  return (
    <div class={`notice ${notice.error ? 'error' : ''}`} role={notice.error ? 'alert' : 'status'} data-testid="notice">
      {notice.text}
      <button type="button" aria-label="dismiss" onClick={store.dismiss}>
        ×
      </button>
    </div>
  )
}

function App({ store }: { store: Store }) {
  const s = useStore(store)
  if (s.session === null) return <Notice store={store} />
  if (!s.session.signedIn)
    return (
      <>
        <SignIn store={store} />
        <Notice store={store} />
      </>
    )
  return (
    <div class="app">
      <Header store={store} />
      <Notice store={store} />
      <main>
        <aside>
          <PartnerList store={store} />
          <ConversationList store={store} />
        </aside>
        <ConversationView store={store} />
        <EventLog store={store} />
      </main>
    </div>
  )
}

const store = createStore()
render(<App store={store} />, document.getElementById('app')!)
void store.boot()
