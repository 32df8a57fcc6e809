// Binds a preact component to the console's store: it renders again whenever the state changes.
import { useEffect, useState } from 'preact/hooks'
import type { State, Store } from './store.ts'

export function useStore(store: Store): State {
  const [state, setState] = useState(store.get())
  useEffect(() => store.subscribe(() => setState(store.get())), [store])
  return state
}
