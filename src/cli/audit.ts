// `bun run audit`: verifies the log file (sequence, hash chain, schemas, projections) and prints a summary.
import { dbPathFrom, parseFlags, runCli } from './args.ts'
import { isPostgresUrl } from '../pg/schema.ts'
import { auditFile, DamagedLogError, formatReport } from './audit-core.ts'
import { auditShared } from './shared-log.ts'

const USAGE = 'usage: bun run audit [--db PATH|postgres://…]'

async function audit(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, { db: 'string', help: 'boolean' })
  if (flags.help) {
    console.log(USAGE)
    return 0
  }
  const path = dbPathFrom(flags.db)
  let report
  try {
    report = isPostgresUrl(path) ? await auditShared(path) : await auditFile(path)
  } catch (error) {
    // A file that exists but cannot be read as a log (corrupt, truncated, not SQLite) is a failed audit (exit 1),
    // not a mistake in the command (exit 2, which runCli gives to usage errors).
    if (!isPostgresUrl(path) && (error instanceof DamagedLogError || (error as Error)?.name === 'SQLiteError'))
      throw new Error(`${path} is damaged: ${(error as Error).message.replace(/^cannot read [^:]*: /, '')}`)
    throw error
  }
  console.log(formatReport(report))
  return report.ok ? 0 : 1
}

if (import.meta.main) await runCli('audit', () => audit(Bun.argv.slice(2)))
