// `bun run replay`: prints the event log as JSON Lines, oldest first, read-only beside a running broker.
import type { Database } from 'bun:sqlite'
import { dbPathFrom, integerFlag, openLogFile, parseFlags, runCli } from './args.ts'

const USAGE = 'usage: bun run replay [--after N] [--follow] [--db PATH]'
const PAGE_ROWS = 5000
const POLL_MS = 150

type Row = [seq: number, type: string, at: string, data: string, hash: string]

/**
 * One envelope per line, keys in the contract's order. `data` is the stored canonical JSON text, copied
 * as is: re-serialising a million objects would cost more than everything else together.
 */
export function formatPage(rows: Row[]): string {
  let out = ''
  for (const [seq, type, at, data, hash] of rows)
    out += `{"seq":${seq},"type":${JSON.stringify(type)},"at":${JSON.stringify(at)},"data":${data},"hash":${JSON.stringify(hash)}}\n`
  return out
}

async function replay(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, { after: 'string', follow: 'boolean', db: 'string', help: 'boolean' })
  if (flags.help) {
    console.log(USAGE)
    return 0
  }
  const after = integerFlag('after', flags.after) ?? 0
  const db = openLogFile(dbPathFrom(flags.db))
  const follow = flags.follow === true

  let stopping = false
  let wake: (() => void) | undefined
  const stop = () => {
    stopping = true
    wake?.()
  }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)

  const out = Bun.stdout.writer({ highWaterMark: 1 << 20 })
  try {
    await copyLog(db, out, after, follow, () => stopping, (ms) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, ms)
        wake = () => {
          clearTimeout(timer)
          resolve()
        }
      }),
    )
    await out.flush()
  } catch (error) {
    // The reader went away (`replay | head`): that is the end of the job, not a failure.
    if ((error as { code?: string }).code === 'EPIPE') return 0
    throw error
  } finally {
    db.close()
  }
  return 0
}

async function copyLog(
  db: Database,
  out: Bun.FileSink,
  after: number,
  follow: boolean,
  stopping: () => boolean,
  sleep: (ms: number) => Promise<void>,
): Promise<void> {
  const page = db.query<Row, [number, number]>('SELECT seq, type, at, data, hash FROM events WHERE seq > ? ORDER BY seq LIMIT ?')
  let cursor = after
  while (!stopping()) {
    // Each page is its own read transaction: a broker committing meanwhile is neither blocked nor torn.
    const rows = page.values(cursor, PAGE_ROWS) as Row[]
    if (rows.length > 0) {
      out.write(formatPage(rows))
      cursor = rows[rows.length - 1]![0]
      await out.flush()
    }
    if (rows.length === PAGE_ROWS) continue
    if (!follow) return
    await sleep(POLL_MS)
  }
}

if (import.meta.main) await runCli('replay', () => replay(Bun.argv.slice(2)))
