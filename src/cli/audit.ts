// `bun run audit`: verifies the log file (sequence, hash chain, schemas, projections) and prints a summary.
import { dbPathFrom, parseFlags, runCli } from './args.ts'
import { isPostgresUrl } from '../pg/schema.ts'
import { auditFile, formatReport } from './audit-core.ts'
import { auditShared } from './shared-log.ts'

const USAGE = 'usage: bun run audit [--db PATH|postgres://…]'

async function audit(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, { db: 'string', help: 'boolean' })
  if (flags.help) {
    console.log(USAGE)
    return 0
  }
  const db = dbPathFrom(flags.db)
  const report = isPostgresUrl(db) ? await auditShared(db) : await auditFile(db)
  console.log(formatReport(report))
  return report.ok ? 0 : 1
}

if (import.meta.main) await runCli('audit', () => audit(Bun.argv.slice(2)))
