// Reads a view remembers between calls, forgotten by the events that change them, safe across rollbacks.

/**
 * Remembered reads by key, at most `max` of them (beyond, the memory starts over). `forget(key)` is called by
 * the view's `apply` for an event that changes what `read(key)` returns; a key forgotten inside a write
 * transaction is not remembered again until the log says that transaction ended (`settled`, committed or
 * rolled back), so what is remembered is always committed state. A `null` read is not remembered.
 */
export function rememberedReads<V>(read: (key: string) => V | null, max = 10_000) {
  const values = new Map<string, V>()
  const changed = new Set<string>()
  return {
    get(key: string): V | null {
      const known = values.get(key)
      if (known !== undefined) return known
      const value = read(key)
      if (value !== null && !changed.has(key)) {
        if (values.size >= max) values.clear()
        values.set(key, value)
      }
      return value
    },
    forget(key: string): void {
      values.delete(key)
      changed.add(key)
    },
    settled(): void {
      changed.clear()
    },
  }
}
