// A virtualised list of fixed-height rows: only the rows in view (plus a margin) are in the DOM, so thousands cost nothing.
import type { ComponentChildren } from 'preact'
import { useEffect, useRef, useState } from 'preact/hooks'

type Props<T> = {
  items: T[]
  rowHeight: number
  keyOf: (item: T) => string | number
  render: (item: T) => ComponentChildren
  /** Called when the last rows come into view (to load more). */
  onEnd?: () => void
  /** Called with the items in view, after each scroll or change. */
  onVisible?: (items: T[]) => void
  class?: string
  label: string
}

const MARGIN = 8

export function VirtualList<T>({ items, rowHeight, keyOf, render, onEnd, onVisible, class: className, label }: Props<T>) {
  const box = useRef<HTMLDivElement>(null)
  const [view, setView] = useState({ top: 0, height: 600 })

  useEffect(() => {
    const el = box.current
    if (!el) return
    const update = () => setView({ top: el.scrollTop, height: el.clientHeight || 600 })
    update()
    el.addEventListener('scroll', update, { passive: true })
    const observer = new ResizeObserver(update)
    observer.observe(el)
    return () => {
      el.removeEventListener('scroll', update)
      observer.disconnect()
    }
  }, [])

  const first = Math.max(0, Math.floor(view.top / rowHeight) - MARGIN)
  const last = Math.min(items.length, Math.ceil((view.top + view.height) / rowHeight) + MARGIN)
  const shown = items.slice(first, last)

  useEffect(() => {
    if (onEnd && last >= items.length - 2 && items.length > 0) onEnd()
    onVisible?.(shown)
  }, [first, last, items])

  return (
    <div ref={box} class={`vlist ${className ?? ''}`} role="list" aria-label={label}>
      <div style={{ height: `${items.length * rowHeight}px`, position: 'relative' }}>
        {shown.map((item, i) => (
          <div
            key={keyOf(item)}
            role="listitem"
            class="vrow"
            style={{ position: 'absolute', top: `${(first + i) * rowHeight}px`, height: `${rowHeight}px`, left: 0, right: 0 }}
          >
            {render(item)}
          </div>
        ))}
      </div>
    </div>
  )
}
