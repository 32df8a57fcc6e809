// A registration flood against the default rate limits: refused at the door, while /health and a talking partner are served as usual.
import { blank, type Scenario } from '../context.ts'
import { get, post, registerAll, stats } from '../client.ts'

const FLOODERS = 32
/** The default of DUO_RATE_REGISTER_PER_MIN: the burst, refilled at one a second. */
const REGISTER_PER_MIN = 60

/** Samples /health and one partner's talk every 50 ms (20 messages a second stays under its own limit) until `until` resolves. */
async function probe(base: string, until: Promise<unknown>) {
  let done = false
  void until.then(() => (done = true))
  const health: number[] = []
  const talk: number[] = []
  let errors = 0
  while (!done) {
    let t0 = performance.now()
    if ((await get(`${base}/health`)).status !== 200) errors++
    health.push(performance.now() - t0)
    t0 = performance.now()
    if ((await post(`${base}/talk`, { fromId: 'alice', to: 'bob', content: 'still here' })).status !== 200) errors++
    talk.push(performance.now() - t0)
    await Bun.sleep(50)
  }
  return { health: stats(health), talk: stats(talk), errors }
}

export const flood: Scenario = async (ctx) => {
  const out = blank('flood')
  let statuses = ''
  const seconds = ctx.quick ? 3 : 8
  const broker = await ctx.broker('flood', { rateLimits: true })
  try {
    await registerAll(broker.url, ['alice', 'bob'])
    const quiet = await probe(broker.url, Bun.sleep(seconds * 500))

    let attempts = 0
    let accepted = 0
    let refused = 0
    let other = 0
    const deadline = performance.now() + seconds * 1000
    const flooding = Promise.all(
      Array.from({ length: FLOODERS }, async (_, w) => {
        for (let i = 0; performance.now() < deadline; i++) {
          const reply = await fetch(`${broker.url}/register`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ partnerId: `bot${w}_${i}` }),
          })
          await reply.arrayBuffer()
          attempts++
          if (reply.status === 200) accepted++
          else if (reply.status === 429 && reply.headers.get('retry-after')) refused++
          else other++
        }
      }),
    )
    const during = await probe(broker.url, flooding)
    await flooding

    // The bucket held 60 and refills one a second; alice and bob took two.
    const allowed = REGISTER_PER_MIN - 2 + Math.ceil(seconds * 1.5)
    if (accepted > allowed) out.errors += accepted - allowed
    out.errors += other + quiet.errors + during.errors
    statuses = `${accepted} × 200, ${refused} × 429, ${other} other`
    out.figures.push(
      { metric: `registration attempts/s (${FLOODERS} clients, one address)`, value: attempts / seconds, unit: 'req/s' },
      { metric: 'registrations accepted', value: accepted, unit: 'count', target: { op: '<=', value: allowed } },
      { metric: 'refused 429 with Retry-After', value: refused, unit: 'count' },
      { metric: '/health p50, quiet', value: quiet.health.p50, unit: 'ms' },
      { metric: '/health p99, quiet', value: quiet.health.p99, unit: 'ms' },
      { metric: '/health p50 during the flood', value: during.health.p50, unit: 'ms' },
      { metric: '/health p99 during the flood', value: during.health.p99, unit: 'ms', target: { op: '<=', value: 50 } },
      { metric: 'talk p99, quiet', value: quiet.talk.p99, unit: 'ms' },
      { metric: 'talk p99 during the flood', value: during.talk.p99, unit: 'ms', target: { op: '<=', value: 100 } },
    )
    out.notes.push(
      `a broker with the default rate limits; ${FLOODERS} clients register new ids for ${seconds} s while one client alternates /health and a talk; the flooders share the probe's two cores`,
      `registrations: ${statuses}`,
    )
  } finally {
    await broker.stop()
  }
  return out
}
