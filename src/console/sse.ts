// A Server-Sent Events reader over fetch: every frame whatever its event name (EventSource only hands over names it was told), resumable by seq.

export type Frame = { id: string | null; event: string | null; data: string }

/**
 * Reads `url` as `text/event-stream` and calls `onFrame` for each frame with data, in order. Reconnects after
 * a drop with `Last-Event-ID` set to the last id seen, so nothing is missed or repeated. Resolves when `signal` aborts.
 */
export async function followStream(
  url: string,
  onFrame: (frame: Frame) => void,
  signal: AbortSignal,
  onState: (state: 'live' | 'reconnecting' | 'refused', detail?: string, status?: number) => void,
): Promise<void> {
  let lastId: string | null = null
  while (!signal.aborted) {
    try {
      const response = await fetch(url, {
        credentials: 'same-origin',
        headers: lastId === null ? {} : { 'last-event-id': lastId },
        signal,
      })
      if (!response.ok || !response.body) {
        const text = await response.text().catch(() => '')
        let detail = `HTTP ${response.status}`
        try {
          detail = (JSON.parse(text) as { error?: string }).error ?? detail
        } catch {}
        onState('refused', detail, response.status)
        if (response.status === 401 || response.status === 403) return
        throw new Error(detail)
      }
      onState('live')
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader()
      let buffer = ''
      for (;;) {
        const { done, value } = await reader.read()
        if (done) break
        buffer += value
        let end: number
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          const frame: Frame = { id: null, event: null, data: '' }
          const data: string[] = []
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) continue
            const colon = line.indexOf(':')
            const field = colon < 0 ? line : line.slice(0, colon)
            const text = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '')
            if (field === 'id') frame.id = text
            else if (field === 'event') frame.event = text
            else if (field === 'data') data.push(text)
          }
          if (data.length === 0) continue
          frame.data = data.join('\n')
          if (frame.id !== null) lastId = frame.id
          onFrame(frame)
        }
      }
    } catch (error) {
      if (signal.aborted) return
      onState('reconnecting', (error as Error).message)
    }
    if (signal.aborted) return
    onState('reconnecting')
    await new Promise((resolve) => setTimeout(resolve, 1000))
  }
}
