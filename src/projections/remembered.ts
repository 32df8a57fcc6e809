// Reads a view remembers between calls, forgotten by the events that change them, safe across rollbacks.

/**
 * Remembered reads by key (one string or several: ids, which hold no newline), at most `max` of them (beyond,
 * the memory starts over). `forget(...key)` is called by the view's `apply` for an event that changes what
 * `read(...key)` returns; a key forgotten inside a write transaction is not remembered again until the log says
 * that transaction ended (`settled`, committed or rolled back), so what is remembered is always committed state.
 * A `null` read is not remembered.
 */
export function rememberedReads<K extends string[], V>(read: (...key: K) => V | null, max = 10_000) {
  const values = new Map<string, V>()
  const changed = new Set<string>()
  const joined = (key: K): string => (key.length === 1 ? key[0]! : key.join('\n'))
  return {
    get(...key: K): V | null {
      const name = joined(key)
      const known = values.get(name)
      if (known !== undefined) return known
      const value = read(...key)
      if (value !== null && !changed.has(name)) {
        if (values.size >= max) values.clear()
        values.set(name, value)
      }
      return value
    },
    forget(...key: K): void {
      const name = joined(key)
      values.delete(name)
      changed.add(name)
    },
    settled(): void {
      changed.clear()
    },
  }
}
