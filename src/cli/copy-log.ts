// `bun run copy-log --from FILE --to postgres://…`: copies an SQLite log into PostgreSQL, every seq and hash unchanged.
import { connect, isPostgresUrl, migrateShared, redactUrl } from '../pg/schema.ts'
import { copySqliteToPg } from '../pg/snapshot.ts'
import { openLogFile, parseFlags, runCli, UsageError } from './args.ts'

const USAGE = 'usage: bun run copy-log --from FILE --to postgres://…'

await runCli('duo copy-log', async () => {
  const flags = parseFlags(process.argv.slice(2), { from: 'string', to: 'string', help: 'boolean' })
  if (flags.help) {
    console.log(
      `${USAGE}\nCopies the SQLite log FILE (read-only; a broker may keep running on it) into the PostgreSQL database,\n` +
        'which must be new or hold the beginning of the same log (an interrupted copy resumes). Then run\n' +
        '`bun run audit --db postgres://…` and start the brokers with DUO_DB=postgres://….',
    )
    return 0
  }
  if (!flags.from) throw new UsageError(`--from FILE is required (${USAGE})`)
  if (!flags.to || !isPostgresUrl(flags.to)) throw new UsageError(`--to needs a postgres:// URL (${USAGE})`)
  const started = performance.now()
  const source = openLogFile(flags.from)
  const sql = connect(flags.to, 1)
  try {
    await migrateShared(sql).catch((error) => {
      throw new UsageError(`cannot prepare ${redactUrl(flags.to!)}: ${(error as Error).message}`)
    })
    const { added, present } = await copySqliteToPg(source, sql).catch((error) => {
      throw new UsageError((error as Error).message)
    })
    // A first copy makes the shared log the same log as the file: it takes the file's broker id (a file from
    // before broker ids has none to give). Partners then keep their tokens when they move over.
    const identity = (() => {
      try {
        return source.query<{ broker_id: string }, []>('SELECT broker_id FROM log_identity').get()
      } catch {
        return null
      }
    })()
    if (identity && present === 0) await sql`UPDATE log_identity SET broker_id = ${identity.broker_id}`
    const ms = Math.round(performance.now() - started)
    console.log(
      `duo copy-log: ${added} events copied from ${flags.from} to ${redactUrl(flags.to)} in ${ms} ms` +
        (present > 0 ? ` (${present} were there already)` : ''),
    )
    return 0
  } finally {
    await sql.close()
    source.close()
  }
})
