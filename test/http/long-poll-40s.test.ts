// Long waits are answered normally: no idle timeout of the server cuts a long-poll or a quiet stream.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { slowDescribe } from '../slow.ts'
import { type TestBroker, readSse, startTestBroker } from './helpers.ts'

slowDescribe('a broker with its default idle settings', () => {
  let broker: TestBroker
  beforeAll(async () => {
    broker = await startTestBroker() // keep-alive every 15 s, as configured by default
    await broker.register('patient', 'legacy', 'streamer')
  })
  afterAll(() => broker.close())

  test(
    'a 40-second long-poll with nothing arriving is answered with 200 after 40 s, as is a legacy one and a quiet stream',
    async () => {
      const cursor = await broker.lastSeq()
      const started = performance.now()
      const stream = readSse(await fetch(`${broker.url}/listen/streamer/stream?after=${cursor}`))
      const [cursorReply, legacyReply] = await Promise.all([
        broker.get(`/listen/patient?after=${cursor}&wait=40`).then((r) => ({ ...r, at: performance.now() - started })),
        broker.get('/listen/legacy?timeout=0.67').then((r) => ({ ...r, at: performance.now() - started })), // 40.2 s
      ])
      expect(cursorReply.status).toBe(200)
      expect(cursorReply.body).toEqual({ hasMessages: false, messages: [], cursor: expect.any(Number) })
      expect(cursorReply.at).toBeGreaterThanOrEqual(39_900)
      expect(cursorReply.at).toBeLessThan(45_000)
      expect(legacyReply.status).toBe(200)
      expect(legacyReply.body).toEqual({ hasMessages: false, messages: [] })
      expect(legacyReply.at).toBeGreaterThanOrEqual(40_000)

      // The stream stayed open the whole time, kept alive by comments, and still delivers.
      expect(stream.state.done).toBe(false)
      expect(stream.state.frames.filter((f) => f.comment === 'keep-alive').length).toBeGreaterThanOrEqual(2)
      const sent = await broker.talk('patient', { to: 'streamer' }, 'still there?')
      await stream.until((frames) => frames.some((f) => f.id === String(sent.messageId)))
      await stream.cancel()
    },
    60_000,
  )
})
