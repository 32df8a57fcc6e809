// `bun run bench [-- --quick] [-- --only floor,talk] [-- --sync normal] [-- --postgres]`: drives a broker process over loopback HTTP.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { cpus, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { createContext, type Scenario } from './context.ts'
import { killAll } from './procs.ts'
import { jsonLine, type Outcome, table } from './report.ts'
import { consoleView } from './scenarios/console.ts'
import { delivery, fanout20 } from './scenarios/delivery.ts'
import { flood } from './scenarios/flood.ts'
import { hostile } from './scenarios/hostile.ts'
import { postgres } from './scenarios/postgres.ts'
import { publicEndpoints } from './scenarios/public.ts'
import { scale } from './scenarios/scale.ts'
import { seedFanout20, seedPingPong } from './scenarios/seed-wire.ts'
import { fanoutSse, idle } from './scenarios/streams.ts'
import { store } from './scenarios/store.ts'
import { floor, talk } from './scenarios/talk.ts'
import { wake } from './scenarios/wake.ts'

const SCENARIOS: Record<string, Scenario> = {
  floor,
  talk,
  store,
  delivery,
  fanout20,
  'seed-fanout20': seedFanout20,
  'seed-pingpong': seedPingPong,
  'fanout-sse': fanoutSse,
  idle,
  scale,
  console: consoleView,
  hostile,
  public: publicEndpoints,
  flood,
  wake,
}
/** Run by `--postgres` (or `--only postgres`), not by default: it needs a PostgreSQL server. */
const OPTIONAL: Record<string, Scenario> = { postgres }
const USAGE = `usage: bun run bench [-- --quick] [--only ${Object.keys(SCENARIOS).join(',')}] [--sync full|normal] [--postgres]`
/** Hard bound per scenario; the whole full run stays within a few minutes. */
const SCENARIO_LIMIT_MS = 240_000

function parseArgs(argv: string[]) {
  let quick = false
  let only = Object.keys(SCENARIOS)
  let sync: 'full' | 'normal' = 'full'
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '--quick') quick = true
    else if (arg === '--postgres') only = ['postgres']
    else if (arg === '--only' || arg.startsWith('--only=')) only = (arg.includes('=') ? arg.split('=')[1]! : argv[++i] ?? '').split(',')
    else if (arg === '--sync' || arg.startsWith('--sync=')) sync = (arg.includes('=') ? arg.split('=')[1] : argv[++i]) as typeof sync
    else if (arg === '--help' || arg === '-h') {
      console.log(USAGE)
      process.exit(0)
    } else {
      console.error(`bench: unknown argument ${arg}\n${USAGE}`)
      process.exit(2)
    }
  }
  const unknown = only.filter((name) => !(name in SCENARIOS) && !(name in OPTIONAL))
  if (unknown.length > 0 || (sync !== 'full' && sync !== 'normal')) {
    console.error(`bench: ${unknown.length ? `unknown scenario ${unknown.join(', ')}` : '--sync is full or normal'}\n${USAGE}`)
    process.exit(2)
  }
  // Throughput is reported against the floor, so talk brings the floor along.
  if (only.includes('talk') && !only.includes('floor')) only.unshift('floor')
  return { quick, only: [...Object.keys(SCENARIOS), ...Object.keys(OPTIONAL)].filter((name) => only.includes(name)), sync }
}

function machine() {
  const model = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? cpus()[0]?.model
  return { cpus: cpus().length, model, memoryGB: Math.round(totalmem() / 2 ** 30), bun: Bun.version, platform: process.platform }
}

const { quick, only, sync } = parseArgs(Bun.argv.slice(2))
const tmp = mkdtempSync(join(tmpdir(), 'duo-bench-'))
const cleanup = () => {
  killAll()
  rmSync(tmp, { recursive: true, force: true })
}
process.on('SIGINT', () => {
  cleanup()
  process.exit(130)
})

const ctx = createContext(quick, tmp, sync)
const outcomes: Outcome[] = []
const m = machine()
console.log(`duo bench${quick ? ' (quick)' : ''}: ${only.join(', ')}; ${m.cpus} × ${m.model}, ${m.memoryGB} GB, bun ${m.bun}, DUO_SYNC=${sync}`)
try {
  for (const name of only) {
    const started = performance.now()
    process.stdout.write(`  ${name} ... `)
    let outcome: Outcome
    try {
      let timer: ReturnType<typeof setTimeout> | undefined
      const limit = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`over the ${SCENARIO_LIMIT_MS / 1000} s limit`)), SCENARIO_LIMIT_MS)
      })
      const result = await Promise.race([(SCENARIOS[name] ?? OPTIONAL[name])!(ctx), limit]).finally(() => clearTimeout(timer))
      outcome = { ...result, seconds: (performance.now() - started) / 1000 }
    } catch (error) {
      killAll()
      outcome = { scenario: name, figures: [], lost: 0, duplicated: 0, errors: 1, notes: [], seconds: (performance.now() - started) / 1000, failed: (error as Error).message }
    }
    outcomes.push(outcome)
    console.log(`${outcome.failed ? 'failed' : 'done'} in ${outcome.seconds.toFixed(1)} s`)
  }
} finally {
  cleanup()
}

const ok = outcomes.every((o) => !o.failed && o.lost === 0 && o.duplicated === 0)
console.log(`\n${table(outcomes)}\n`)
console.log(jsonLine(outcomes, m, ok))
process.exit(ok ? 0 : 1)
