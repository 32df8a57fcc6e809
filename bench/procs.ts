// Child processes of the benchmark: the broker and the floor server, each on a free loopback port, always stopped.
import type { Subprocess } from 'bun'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

export const ROOT = join(import.meta.dir, '..')
export const ADMIN_TOKEN = 'bench-operator-token-0123456789'

export type Child = {
  url: string
  pid: number
  /** Wall time from spawn to the printed listening line. */
  startMs: number
  /** Resident memory of the process now, in bytes (from /proc/<pid>/status). */
  rss(): number
  /** CPU time (user + system) the process has used so far, in seconds. */
  cpu(): number
  stop(): Promise<void>
}

const running = new Set<Subprocess>()

/** Registers a child so that killAll ends it too; returns it. */
export function track<T extends Subprocess>(proc: T): T {
  running.add(proc)
  void proc.exited.then(() => running.delete(proc))
  return proc
}

/** Kills every child still running (on exit, on SIGINT, after a failed scenario). */
export function killAll(): void {
  for (const child of running) child.kill('SIGKILL')
  running.clear()
}
process.on('exit', killAll)

/** utime + stime of a process from /proc/<pid>/stat, in seconds (clock ticks of 1/100 s). */
export function cpuOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100
}

export function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = /VmRSS:\s+(\d+)\s+kB/.exec(status)
  return kb ? Number(kb[1]) * 1024 : Number.NaN
}

/** Spawns `argv`, waits (at most `timeoutMs`) for a line matching `ready`, whose first group is the URL. */
export async function spawnServer(argv: string[], env: Record<string, string>, ready: RegExp, timeoutMs = 30_000): Promise<Child> {
  const started = performance.now()
  const proc = Bun.spawn(argv, { cwd: ROOT, env: { ...process.env, ...env }, stdout: 'pipe', stderr: 'pipe' })
  running.add(proc)
  let output = ''
  const stderr = new Response(proc.stderr).text()
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "${ready}" line within ${timeoutMs} ms from ${argv.join(' ')}`)), timeoutMs)
    void (async () => {
      const decoder = new TextDecoder()
      for await (const chunk of proc.stdout as ReadableStream<Uint8Array>) {
        output += decoder.decode(chunk, { stream: true })
        const match = ready.exec(output)
        if (match) {
          clearTimeout(timer)
          resolve(match[1]!)
          // Keep draining, so a chatty child never blocks on a full pipe.
        }
      }
      clearTimeout(timer)
      reject(new Error(`${argv.join(' ')} exited before listening: ${output}${await stderr}`))
    })()
  })
  const startMs = performance.now() - started
  return {
    url,
    pid: proc.pid,
    startMs,
    rss: () => rssOf(proc.pid),
    cpu: () => cpuOf(proc.pid),
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM')
        const exited = await Promise.race([proc.exited.then(() => true), Bun.sleep(5000).then(() => false)])
        if (!exited) proc.kill('SIGKILL')
        await proc.exited
      }
      running.delete(proc)
    },
  }
}

/** `rateLimits`: keep the broker's default rate limits (every other scenario turns them off). */
export type BrokerOptions = { db: string; sync?: 'full' | 'normal'; auth?: 'open' | 'token'; rateLimits?: boolean }

/**
 * `bun src/broker.ts` on a free loopback port, open auth, a known operator token, loop guard and rate limits off. `BENCH_BROKER_FLAGS`
 * adds Bun flags, e.g. `--cpu-prof-md --cpu-prof-dir=/tmp/prof` to profile the broker under load;
 * `BENCH_BROKER_ENTRY` runs another broker entry (a patched copy, for before/after comparisons).
 */
export function spawnBroker({ db, sync = 'full', auth = 'open', rateLimits = false }: BrokerOptions): Promise<Child> {
  const flags = process.env.BENCH_BROKER_FLAGS?.split(' ').filter(Boolean) ?? []
  return spawnServer(
    [process.execPath, ...flags, process.env.BENCH_BROKER_ENTRY ?? 'src/broker.ts'],
    {
      BROKER_PORT: '0',
      BROKER_HOST: '127.0.0.1',
      DUO_DB: db,
      DUO_AUTH: auth,
      DUO_SYNC: sync,
      DUO_ADMIN_TOKEN: ADMIN_TOKEN,
      // The loads are thousands of messages between the same agents from one address: no loop guard, no limits.
      DUO_MAX_HOPS: '0',
      DUO_RATE_LIMITS: rateLimits ? 'on' : 'off',
    },
    /listening on (http:\/\/\S+)/,
  )
}

/** The floor: a bare Bun.serve that parses the same JSON body and answers. */
export function spawnFloor(): Promise<Child> {
  return spawnServer([process.execPath, join(import.meta.dir, 'floor-server.ts')], {}, /listening on (http:\/\/\S+)/)
}
