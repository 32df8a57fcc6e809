// Binds a preact component to the console's store: it renders again whenever the state changes.
import { useEffect, useState } from 'preact/hooks'
import type { State, Store } from './store.ts'

export function useStore(store: Store): State {
  const [state, setState] = useState(store.get())
  useEffect(() => {
    const unsubscribe = store.subscribe(() => setState(store.get()))
    // The effect runs after the first paint: a change made before it subscribed (the first answer of the broker,
    // which boot awaits) would otherwise never reach the page, and it would stay blank.
    setState(store.get())
    return unsubscribe
  }, [store])
  return state
}
