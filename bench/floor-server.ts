// The benchmark's floor: a bare Bun.serve that parses a talk body and answers, nothing else. No framework, no disk.
let seq = 0
const server = Bun.serve({
  hostname: '127.0.0.1',
  port: 0,
  reusePort: false,
  async fetch(request) {
    const body = (await request.json()) as { fromId?: string; to?: string; content?: string }
    seq++
    return Response.json({ success: true, conversationId: `direct_${body.fromId}_${body.to}`, messageId: seq, seq, notified: 0, queued: 1 })
  },
})
console.log(`floor listening on http://127.0.0.1:${server.port}`)
process.on('SIGTERM', () => {
  server.stop(true)
  process.exit(0)
})
