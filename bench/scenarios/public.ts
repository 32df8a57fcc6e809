// Public endpoints at scale: /health and the first /partners page with 50,000 registered partners.
import { blank, type Scenario } from '../context.ts'
import { get, registerAll, stats } from '../client.ts'

async function timedGets(url: string, n: number): Promise<{ ms: number[]; bytes: number; status: number }> {
  const ms: number[] = []
  let bytes = 0
  let status = 0
  for (let i = 0; i < n; i++) {
    const t0 = performance.now()
    const response = await fetch(url)
    const text = await response.text()
    ms.push(performance.now() - t0)
    bytes = text.length
    status = response.status
  }
  return { ms, bytes, status }
}

export const publicEndpoints: Scenario = async (ctx) => {
  const out = blank('public')
  const partners = ctx.quick ? 10_000 : 50_000
  const broker = await ctx.broker('public')
  try {
    const started = performance.now()
    await registerAll(broker.url, Array.from({ length: partners }, (_, i) => `partner-${i}`))
    out.notes.push(`${partners.toLocaleString('en-US')} partners registered in ${((performance.now() - started) / 1000).toFixed(1)} s`)
    const health = await timedGets(`${broker.url}/health`, 200)
    const reply = await get(`${broker.url}/health`)
    if (reply.body.partners !== partners) out.lost += Math.abs(partners - reply.body.partners)
    const list = await timedGets(`${broker.url}/partners`, 5)
    if (health.status !== 200 || list.status !== 200) out.errors++
    out.figures.push(
      { metric: `/health p50 with ${partners} partners`, value: stats(health.ms).p50, unit: 'ms' },
      { metric: `/health p99 with ${partners} partners`, value: stats(health.ms).p99, unit: 'ms', target: { op: '<=', value: 5 } },
      { metric: '/partners (first page) p50', value: stats(list.ms).p50, unit: 'ms' },
      { metric: '/partners (first page) size', value: list.bytes / 2 ** 20, unit: 'MB', target: { op: '<=', value: 1 } },
    )
  } finally {
    await broker.stop()
  }
  return out
}
