// One broker per SQLite file: an OS-level lock on a file beside the log, held for the broker's lifetime.
import { Database } from 'bun:sqlite'
import { readFileSync, statSync } from 'node:fs'
import { resolve } from 'node:path'
import { ownerOnlyFile } from './store.ts'

/** Another live broker serves this file; the message is the one line the broker prints. */
export class LogInUseError extends Error {}

/** The process holding a POSIX lock on `file`, from /proc/locks (Linux); undefined where that is not known. */
function lockHolder(file: string): number | undefined {
  try {
    const { ino } = statSync(file)
    for (const line of readFileSync('/proc/locks', 'utf8').split('\n')) {
      const fields = line.trim().split(/\s+/)
      // "1: POSIX  ADVISORY  WRITE 4242 08:01:1234 1073741824 1073742335"
      if (fields[1] === 'POSIX' && fields[5]?.endsWith(`:${ino}`)) return Number(fields[4])
    }
  } catch {}
  return undefined
}

/**
 * Holds `<db>.lock` with an exclusive SQLite lock (an fcntl lock of the OS) until the returned release is
 * called or the process ends, however it ends (SIGKILL included): a second broker on the same log file,
 * in this process or another, is refused with LogInUseError. The log file itself is not locked, so the
 * read-only tools (replay, audit, backup) keep working beside the broker.
 */
export function lockLogFile(dbPath: string): () => void {
  const file = `${resolve(dbPath)}.lock`
  ownerOnlyFile(file)
  const lock = new Database(file, { strict: true })
  try {
    lock.run('PRAGMA busy_timeout = 0')
    // The lock file holds nothing: no journal beside it.
    lock.run('PRAGMA journal_mode = OFF')
    lock.run('PRAGMA locking_mode = EXCLUSIVE')
    // In exclusive locking mode the lock this write transaction takes is kept after its commit.
    lock.run('BEGIN EXCLUSIVE')
    lock.run('COMMIT')
  } catch (error) {
    lock.close()
    if ((error as { code?: string }).code !== 'SQLITE_BUSY') throw error
    const pid = lockHolder(file)
    throw new LogInUseError(
      `another broker${pid ? ` (pid ${pid})` : ''} is serving ${dbPath}; stop it first (several brokers can share one log on PostgreSQL: DUO_DB=postgres://…)`,
    )
  }
  return () => lock.close()
}
