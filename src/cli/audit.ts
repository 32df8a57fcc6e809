// `bun run audit`: verifies the log file (sequence, hash chain, schemas, projections) and prints a summary.
import { dbPathFrom, parseFlags, runCli } from './args.ts'
import { auditFile, formatReport } from './audit-core.ts'

const USAGE = 'usage: bun run audit [--db PATH]'

async function audit(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, { db: 'string', help: 'boolean' })
  if (flags.help) {
    console.log(USAGE)
    return 0
  }
  const report = await auditFile(dbPathFrom(flags.db))
  console.log(formatReport(report))
  return report.ok ? 0 : 1
}

if (import.meta.main) await runCli('audit', () => audit(Bun.argv.slice(2)))
