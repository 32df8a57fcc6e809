// The console with 10,000 messages in the log: first paint, the time until a busy conversation is on screen, and live-update latency.
import { join } from 'node:path'
import { launchChromium } from '../../scripts/chromium.ts'
import { pool, post, stats } from '../client.ts'
import { blank, type Scenario } from '../context.ts'

const AGENTS = 10

export const consoleView: Scenario = async (ctx) => {
  const out = blank('console')
  const messages = 10_000
  const broker = await ctx.broker('console')
  const browser = await launchChromium()
  try {
    const ids = Array.from({ length: AGENTS }, (_, i) => `agent${i}`)
    for (const partnerId of ids) await post(`${broker.url}/register`, { partnerId })
    // Most of the log in one conversation (the one opened), the rest spread over the others.
    const busy = 'direct_agent0_agent1'
    const seeded = performance.now()
    await pool(Array.from({ length: messages }, (_, i) => i), 64, async (i) => {
      const from = i % 5 === 4 ? ids[2 + (i % (AGENTS - 2))]! : ids[i % 2]!
      const to = i % 5 === 4 ? ids[0]! : ids[(i + 1) % 2]!
      const reply = await post(`${broker.url}/talk`, { fromId: from, to, content: `message ${i}: ${'lorem ipsum '.repeat(1 + (i % 12))}` })
      if (reply.status !== 200) {
        out.errors++
        throw new Error(`seeding talk ${i}: ${reply.status} ${JSON.stringify(reply.body)}`)
      }
    })
    out.notes.push(`${messages.toLocaleString('en-US')} messages seeded in ${((performance.now() - seeded) / 1000).toFixed(1)} s (open mode, ${AGENTS} agents)`)

    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } })
    const outside: string[] = []
    page.on('request', (r) => r.url().startsWith(broker.url) || r.url().startsWith('data:') || outside.push(r.url()))
    // One warm-up load (the browser's own caches and JIT), then the measured loads, each a fresh navigation.
    const loads = ctx.quick ? 3 : 7
    const paints: number[] = []
    const ready: number[] = []
    for (let i = 0; i <= loads; i++) {
      // From a blank page: a goto that changes only the hash would not load the page again.
      await page.goto('about:blank')
      await page.goto(`${broker.url}/#c=${busy}`)
      // Evaluated every animation frame: the time recorded is the first frame with the newest messages in the DOM.
      // Page code reaches the DOM through `globalThis as any`: this file is type-checked without the DOM's types
      // (and the console's CSP forbids evaluating strings; functions run in Playwright's own world).
      const shownAt = (await (
        await page.waitForFunction(() => (globalThis as any).document.querySelector('section.conversation .message') && performance.now(), undefined, {
          polling: 'raf',
          timeout: 30_000,
        })
      ).jsonValue()) as number
      // Chromium reports paint timing once the frame was presented, which can come after the frame above: wait for
      // the entry (its startTime is the paint's own time, whenever it is read).
      const fcp = (await (
        await page.waitForFunction(() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime, undefined, { polling: 'raf', timeout: 5_000 })
      ).jsonValue()) as number
      if (i === 0) continue
      paints.push(fcp)
      ready.push(shownAt)
    }
    await page.waitForSelector('[data-testid=stream-state]:text("live")')

    // Live updates: a message sent through the API, until the frame after it entered the DOM.
    await page.evaluate(() => {
      const w = (globalThis as any)
      w.duoSeen = {}
      new w.MutationObserver((records: any[]) => {
        for (const record of records)
          for (const node of record.addedNodes) {
            const seq = node.querySelector?.('[data-seq]')?.getAttribute('data-seq')
            if (seq) w.requestAnimationFrame(() => (w.duoSeen[Number(seq)] ??= performance.timeOrigin + performance.now()))
          }
      }).observe(w.document.querySelector('section.conversation .vlist'), { childList: true, subtree: true })
    })
    const updates = ctx.quick ? 20 : 50
    const latencies: number[] = []
    for (let i = 0; i < updates; i++) {
      const sentAt = performance.timeOrigin + performance.now()
      const reply = await post(`${broker.url}/talk`, { fromId: 'agent1', to: 'agent0', content: `live ${i}` })
      if (reply.status !== 200) {
        out.errors++
        continue
      }
      const seq = reply.body.seq as number
      const seenAt = (await (
        await page.waitForFunction((s) => (globalThis as any).duoSeen[s], seq, { timeout: 10_000 })
      ).jsonValue()) as number
      latencies.push(seenAt - sentAt)
    }
    const paint = stats(paints)
    const shown = stats(ready)
    const live = stats(latencies)
    out.figures.push(
      { metric: `first contentful paint, median of ${loads}`, value: paint.p50, unit: 'ms', target: { op: '<=', value: 500 } },
      { metric: 'busy conversation on screen (1,000 newest of 8,000), median', value: shown.p50, unit: 'ms', target: { op: '<=', value: 500 } },
      { metric: 'busy conversation on screen, worst', value: shown.max, unit: 'ms' },
      { metric: `live update, API send → painted, p50 of ${updates}`, value: live.p50, unit: 'ms', target: { op: '<=', value: 200 } },
      { metric: 'live update, max', value: live.max, unit: 'ms', target: { op: '<=', value: 200 } },
    )
    if (outside.length > 0) {
      out.errors += outside.length
      out.notes.push(`requests outside the broker: ${outside.slice(0, 3).join(', ')}`)
    }
    out.notes.push(`chromium ${browser.version()}; database ${join(ctx.tmp, 'console-*.db')}`)
  } finally {
    await browser.close()
    await broker.stop()
  }
  return out
}
