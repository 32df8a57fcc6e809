// The Stop hook's wake-up: message sent → hook exits (code 2), and what 100 waiting hooks cost while idle.
import { mkdirSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { blank, type Scenario } from '../context.ts'
import { get, post, registerAll, stats } from '../client.ts'
import { ROOT, rssOf, track } from '../procs.ts'

const HOOK = join(ROOT, 'src/hooks/index.ts')
const PARK_MS = 15_000
const IDLE_HOOKS = 100
/** When the steady-state window starts, counted from the moment the last hook parked. */
const STEADY_AFTER_MS = 45_000

/** A Stop hook as Claude Code starts it: the hook JSON on stdin, in the project, waiting in the background. */
function startStopHook(brokerUrl: string, project: string, session: string) {
  const input = {
    session_id: session,
    transcript_path: join(project, `${session}.jsonl`),
    cwd: project,
    permission_mode: 'default',
    hook_event_name: 'Stop',
    stop_hook_active: false,
  }
  const proc = track(
    Bun.spawn([process.execPath, HOOK], {
      cwd: project,
      env: { PATH: process.env.PATH ?? '', HOME: project, CLAUDE_PROJECT_DIR: project, BROKER_URL: brokerUrl, DUO_CONFIG: join(project, 'none.json') },
      stdin: new Blob([JSON.stringify(input)]),
      stdout: 'ignore',
      stderr: 'pipe',
    }),
  )
  let exitedAt = 0
  const done = proc.exited.then((code) => {
    exitedAt = performance.now()
    return code
  })
  return { proc, done, exitedAt: () => exitedAt }
}

/** Waits until `n` partners are reachable by their wake hook (or better) on the broker. */
async function untilHooked(base: string, ids: Set<string>, n: number, deadline: number): Promise<boolean> {
  while (performance.now() < deadline) {
    const { body } = await get<{ partners: Array<{ id: string; reachability: string }> }>(`${base}/partners`)
    if (body.partners.filter((p) => ids.has(p.id) && p.reachability === 'hook').length >= n) return true
    await Bun.sleep(2)
  }
  return false
}

/**
 * CPU time each thread of a process has run, in ns, from the scheduler's own count
 * (/proc/<pid>/task/<tid>/schedstat): exact, where /proc/<pid>/stat counts 10 ms ticks and charges a whole
 * tick to whoever runs at its edge.
 */
function threadTimes(pid: number): Map<string, number> {
  const times = new Map<string, number>()
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      times.set(tid, Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]))
    } catch {
      // The thread ended meanwhile.
    }
  }
  return times
}

/** CPU ms a process used since `before` (threads that ended meanwhile lose their share; none counts twice). */
const cpuMsSince = (pid: number, before: Map<string, number>): number =>
  [...threadTimes(pid)].reduce((sum, [tid, ns]) => sum + Math.max(0, ns - (before.get(tid) ?? 0)), 0) / 1e6

/** Proportional set size of a process (its private memory plus its share of what it shares), in bytes. */
function pssOf(pid: number): number {
  const kb = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))
  return kb ? Number(kb[1]) * 1024 : Number.NaN
}

export const wake: Scenario = async (ctx) => {
  const out = blank('wake-hook')
  const broker = await ctx.broker('wake')
  const projects = join(ctx.tmp, 'wake-projects')
  const hooks: Array<ReturnType<typeof startStopHook>> = []
  try {
    // 1. Latency: one idle session's Stop hook parked; a message; the time until the hook has exited with it.
    const sleeper = join(projects, 'sleeper')
    mkdirSync(sleeper, { recursive: true })
    await registerAll(broker.url, ['sender', 'sleeper'])
    const rounds = ctx.quick ? 20 : 100
    const latencies: number[] = []
    for (let i = 0; i < rounds; i++) {
      const hook = startStopHook(broker.url, sleeper, `session-${i}`)
      if (!(await untilHooked(broker.url, new Set(['sleeper']), 1, performance.now() + PARK_MS))) throw new Error('the hook never parked')
      const t0 = performance.now()
      const reply = await post(`${broker.url}/talk`, { fromId: 'sender', to: 'sleeper', content: `wake up ${i}` })
      if (reply.status !== 200) out.errors++
      const code = await hook.done
      const stderr = await new Response(hook.proc.stderr as ReadableStream).text()
      if (code !== 2 || !stderr.includes(`wake up ${i}`)) out.lost++
      else latencies.push(hook.exitedAt() - t0)
    }
    const s = stats(latencies)
    out.figures.push(
      { metric: 'message sent → hook exits p50', value: s.p50, unit: 'ms' },
      { metric: 'message sent → hook exits p99', value: s.p99, unit: 'ms', target: { op: '<=', value: 50 } },
      { metric: 'message sent → hook exits max', value: s.max, unit: 'ms' },
    )

    // 2. Idle cost: 100 sessions (one project each) with their Stop hook waiting; nothing arrives for a while.
    const ids = Array.from({ length: IDLE_HOOKS }, (_, i) => `idle-session-${i}`)
    await registerAll(broker.url, ids)
    for (const id of ids) {
      const project = join(projects, id)
      mkdirSync(project, { recursive: true })
      hooks.push(startStopHook(broker.url, project, 'idle'))
    }
    if (!(await untilHooked(broker.url, new Set(ids), IDLE_HOOKS, performance.now() + 60_000))) throw new Error('not every idle hook parked')
    const parkedAt = performance.now()
    const pids = hooks.map((h) => h.proc.pid)
    const windowS = ctx.quick ? 3 : 10
    /** The hooks' CPU (ms) and the broker's (s) over one window of `windowS` seconds. */
    const measure = async () => {
      const before = pids.map(threadTimes)
      const brokerBefore = broker.cpu()
      await Bun.sleep(windowS * 1000)
      return { hooks: pids.reduce((sum, pid, i) => sum + cpuMsSince(pid, before[i]!), 0), broker: broker.cpu() - brokerBefore }
    }
    // Right after parking, Bun's runtime still finishes start-up work (timers of its JIT and collector) for
    // about half a minute; then a parked hook's threads do not wake at all. Both are shown.
    const early = await measure()
    let steady: typeof early | undefined
    if (!ctx.quick) {
      await Bun.sleep(Math.max(0, parkedAt + STEADY_AFTER_MS - performance.now()))
      steady = await measure()
    }
    const rss = pids.reduce((sum, pid) => sum + rssOf(pid), 0)
    const pss = pids.reduce((sum, pid) => sum + pssOf(pid), 0)
    const alive = hooks.filter((h) => h.proc.exitCode === null).length
    if (alive !== IDLE_HOOKS) out.errors += IDLE_HOOKS - alive
    out.figures.push(
      { metric: `${IDLE_HOOKS} waiting hooks: CPU, first ${windowS} s after parking`, value: early.hooks / windowS, unit: 'ms per s' },
      ...(steady
        ? [
            { metric: `${IDLE_HOOKS} waiting hooks: CPU, ${STEADY_AFTER_MS / 1000} s later`, value: steady.hooks / windowS, unit: 'ms per s' },
            { metric: 'one waiting hook: CPU, then', value: (steady.hooks / windowS / IDLE_HOOKS) * 1000, unit: 'µs per s' },
          ]
        : []),
      { metric: `${IDLE_HOOKS} waiting hooks: broker CPU`, value: ((steady ?? early).broker / windowS) * 100, unit: '% of a core' },
      { metric: `${IDLE_HOOKS} waiting hooks: RSS, summed`, value: rss / 2 ** 20, unit: 'MiB' },
      { metric: `${IDLE_HOOKS} waiting hooks: PSS, summed`, value: pss / 2 ** 20, unit: 'MiB' },
      { metric: 'one waiting hook: PSS', value: pss / IDLE_HOOKS / 2 ** 20, unit: 'MiB' },
      { metric: 'broker RSS with them parked', value: broker.rss() / 2 ** 20, unit: 'MiB' },
    )
    out.notes.push(
      `${rounds} rounds: a Stop hook process (bun src/hooks/index.ts, the hook JSON on stdin) parks on /listen/:id/unseen; once /partners shows the partner as "hook", send; time until the hook exits with code 2 and the message on stderr`,
      `then ${IDLE_HOOKS} projects, each with its Stop hook waiting, idle: ${windowS} s right after the last parked${ctx.quick ? '' : `, and ${windowS} s from ${STEADY_AFTER_MS / 1000} s after`}; the hooks' CPU from the scheduler's per-thread schedstat (the broker's from /proc/<pid>/stat ticks), RSS and PSS (smaps_rollup; RSS counts the shared bun binary in every process, PSS splits it)`,
    )
  } finally {
    for (const h of hooks) h.proc.kill('SIGTERM')
    await Promise.all(hooks.map((h) => h.done))
    await broker.stop()
  }
  return out
}
