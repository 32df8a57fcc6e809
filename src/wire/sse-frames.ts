// Reading a `text/event-stream` body into frames, shared by the console (in the browser) and `bun run duo` (in Bun).

export type SseFrame = { id: string | null; event: string | null; data: string }

/** Each frame of an SSE body that carries data, in order (comments and keep-alives skipped); ends with the body. */
export async function* sseFrames(body: ReadableStream<Uint8Array>): AsyncGenerator<SseFrame> {
  // A TextDecoder rather than a TextDecoderStream: the DOM's and Bun's typings of the latter disagree.
  const reader = body.getReader()
  const decoder = new TextDecoder()
  let buffer = ''
  for (;;) {
    const { done, value } = await reader.read()
    if (done) return
    buffer += decoder.decode(value, { stream: true })
    let end: number
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end)
      buffer = buffer.slice(end + 2)
      const frame: SseFrame = { id: null, event: null, data: '' }
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
      yield frame
    }
  }
}
