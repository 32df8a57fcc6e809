// The store alone, in this process: what one group commit of 32 talks costs without HTTP, and what it writes.
import { statSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { blank, type Scenario } from '../context.ts'
import { ROOT } from '../procs.ts'
import { SENDERS } from './talk.ts'

/** A WAL frame: the page and its 24-byte header (the store's page size is SQLite's default, 4096). */
const FRAME_BYTES = 4096 + 24

/**
 * Talk's shape without the broker around it: SENDERS partners each talking to their own recipient, every round
 * one group commit of SENDERS talks. Checkpoints are off while it measures, so the WAL's growth is exactly what
 * the commits wrote: deterministic, unlike the timings of a shared machine. `BENCH_BROKER_ENTRY` (a patched copy)
 * takes its store from the same tree.
 */
export const store: Scenario = async (ctx) => {
  const out = blank('store')
  const entry = resolve(ROOT, process.env.BENCH_BROKER_ENTRY ? dirname(process.env.BENCH_BROKER_ENTRY) : 'src', 'store.ts')
  const { openStore } = (await import(entry)) as typeof import('../../src/store.ts')
  const path = join(ctx.tmp, 'store-alone.db')
  const opened = openStore({ path, sync: ctx.sync, rules: { maxHops: 0 } })
  try {
    for (let i = 0; i < SENDERS; i++) {
      for (const partnerId of [`s${i}`, `r${i}`]) {
        const registered = await opened.commands.execute({ kind: 'register', partnerId })
        if (!registered.ok) throw new Error(`register ${partnerId}: ${registered.rejection.reason}`)
      }
    }
    let errors = 0
    let round = 0
    const commit = async () => {
      const results = await Promise.all(
        Array.from({ length: SENDERS }, (_, i) =>
          opened.commands.execute({ kind: 'talk', fromId: `s${i}`, to: `r${i}`, content: `round ${round} from s${i} to r${i}: a line of an ordinary length` }),
        ),
      )
      round++
      errors += results.filter((r) => !r.ok).length
    }
    // Warm: every conversation exists and the tables and indexes span many pages, as on a broker that has run a while.
    for (let k = 0; k < (ctx.quick ? 100 : 300); k++) await commit()
    opened.db.run('PRAGMA wal_checkpoint(TRUNCATE)')
    opened.db.run('PRAGMA wal_autocheckpoint = 0')
    const rounds = ctx.quick ? 100 : 400
    const seq0 = opened.log.lastSeq()
    const cpu0 = process.cpuUsage()
    const t0 = performance.now()
    for (let k = 0; k < rounds; k++) await commit()
    const wallMs = performance.now() - t0
    const cpu = process.cpuUsage(cpu0)
    const talks = rounds * SENDERS
    const frames = statSync(`${path}-wal`).size / FRAME_BYTES / rounds
    // Each talk appends one event; anything else would be a lost or doubled message.
    const appended = opened.log.lastSeq() - seq0
    out.lost = Math.max(0, talks - errors - appended)
    out.duplicated = Math.max(0, appended - (talks - errors))
    out.errors = errors
    out.figures.push(
      { metric: 'CPU per talk, no HTTP', value: ((cpu.user + cpu.system) / talks), unit: 'µs' },
      { metric: 'wall per talk, no HTTP', value: (wallMs * 1000) / talks, unit: 'µs' },
      { metric: `WAL frames per commit of ${SENDERS}`, value: frames, unit: 'count' },
    )
    out.notes.push(
      `${rounds} group commits of ${SENDERS} talks between ${SENDERS} pairs, in this process on a warm file (DUO_SYNC=${ctx.sync}); frames counted from the WAL's growth with checkpoints off`,
    )
  } finally {
    await opened.close()
  }
  return out
}
