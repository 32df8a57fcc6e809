// `bun run backup --out FILE [--db PATH]`: a consistent copy of the log and its views, taken while the broker runs.
import { existsSync, rmSync } from 'node:fs'
import { isPostgresUrl, redactUrl } from '../pg/schema.ts'
import { snapshotToSqlite } from '../pg/snapshot.ts'
import { ownerOnlyFile } from '../store.ts'
import { dbPathFrom, openLogFile, parseFlags, runCli, UsageError } from './args.ts'
import { openSharedLog } from './shared-log.ts'

const USAGE = 'usage: bun run backup --out FILE [--db PATH|postgres://…]'

await runCli('duo backup', async () => {
  const flags = parseFlags(process.argv.slice(2), { db: 'string', out: 'string', help: 'boolean' })
  if (flags.help) {
    console.log(`${USAGE}\nWrites a consistent copy of the log and its views while the broker keeps running.`)
    return 0
  }
  if (!flags.out) throw new UsageError(`--out FILE is required (${USAGE})`)
  if (existsSync(flags.out)) throw new UsageError(`${flags.out} exists; choose a new file`)
  const started = performance.now()
  const db = dbPathFrom(flags.db)
  if (isPostgresUrl(db)) {
    ownerOnlyFile(flags.out)
    // One snapshot of the shared log into an SQLite file with its views: auditable, and a broker can open it.
    const sql = await openSharedLog(db)
    const n = await snapshotToSqlite(sql, flags.out).finally(() => sql.close())
    console.log(`duo backup: ${n} events copied from ${redactUrl(db)} to ${flags.out} in ${Math.round(performance.now() - started)} ms`)
    return 0
  }
  const source = openLogFile(db)
  // VACUUM INTO copies one snapshot (a WAL read transaction): a running broker neither blocks nor tears the copy.
  // It fills an empty file it is given, keeping its mode: the copy is the owner's only, like the log (0600).
  ownerOnlyFile(flags.out)
  try {
    source.run('VACUUM INTO ?', [flags.out])
  } catch (error) {
    rmSync(flags.out, { force: true })
    throw error
  }
  const { n } = source.query<{ n: number }, []>('SELECT count(*) AS n FROM events').get()!
  source.close()
  console.log(`duo backup: ${n} events copied to ${flags.out} in ${Math.round(performance.now() - started)} ms`)
  return 0
})
