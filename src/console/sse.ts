// A Server-Sent Events reader over fetch: every frame whatever its event name (EventSource only hands over names it was told), resumable by seq.
import { type SseFrame, sseFrames } from '../wire/sse-frames.ts'

export type Frame = SseFrame

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
      for await (const frame of sseFrames(response.body)) {
        if (frame.id !== null) lastId = frame.id
        onFrame(frame)
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
