// `bun run backup --out FILE [--db PATH]`: a consistent copy of the log and its views, taken while the broker runs.
import { existsSync } from 'node:fs'
import { dbPathFrom, openLogFile, parseFlags, runCli, UsageError } from './args.ts'

const USAGE = 'usage: bun run backup --out FILE [--db PATH]'

await runCli('duo backup', async () => {
  const flags = parseFlags(process.argv.slice(2), { db: 'string', out: 'string', help: 'boolean' })
  if (flags.help) {
    console.log(`${USAGE}\nWrites a consistent copy of the log and its views while the broker keeps running.`)
    return 0
  }
  if (!flags.out) throw new UsageError(`--out FILE is required (${USAGE})`)
  if (existsSync(flags.out)) throw new UsageError(`${flags.out} exists; choose a new file`)
  const started = performance.now()
  const source = openLogFile(dbPathFrom(flags.db))
  // VACUUM INTO copies one snapshot (a WAL read transaction): a running broker neither blocks nor tears the copy.
  source.run('VACUUM INTO ?', [flags.out])
  const { n } = source.query<{ n: number }, []>('SELECT count(*) AS n FROM events').get()!
  source.close()
  console.log(`duo backup: ${n} events copied to ${flags.out} in ${Math.round(performance.now() - started)} ms`)
  return 0
})
