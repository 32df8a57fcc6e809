// One broker per SQLite file: a lock file beside the log names the broker process that serves it.
import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs'
import { hostname } from 'node:os'
import { resolve } from 'node:path'

/** Another live broker serves this file; the message is the one line the broker prints. */
export class LogInUseError extends Error {}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as { code?: string }).code === 'EPERM'
  }
}

/**
 * Takes `<db>.broker-lock` for this process, or throws LogInUseError when a live broker on this host holds
 * it. The file is created exclusively, so two brokers starting together cannot both win; a lock left by a
 * broker that was killed (its pid gone) is taken over. Returns the release, called when the broker stops.
 * Read-only tools (replay, audit, backup) take no lock and keep working beside the broker.
 */
export function lockLogFile(dbPath: string): () => void {
  const file = `${resolve(dbPath)}.broker-lock`
  // The nonce tells this opening from a later one of the same process: each release removes only its own lock.
  const me = `${process.pid} ${hostname()} ${Math.random().toString(36).slice(2)}\n`
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(file, 'wx', 0o600)
      writeSync(fd, me)
      closeSync(fd)
      return () => {
        try {
          if (readFileSync(file, 'utf8') === me) unlinkSync(file)
        } catch {}
      }
    } catch (error) {
      if ((error as { code?: string }).code !== 'EEXIST') throw error
    }
    let holder = ''
    try {
      holder = readFileSync(file, 'utf8')
    } catch {
      continue
    }
    const [pid, host] = holder.trim().split(' ')
    if (host === hostname() && Number(pid) > 0 && alive(Number(pid)))
      throw new LogInUseError(
        `another broker (pid ${pid}) is serving ${dbPath}; stop it first (several brokers can share one log on PostgreSQL: DUO_DB=postgres://…)`,
      )
    // Left by a broker that is gone (or unreadable): take it over.
    try {
      unlinkSync(file)
    } catch {}
  }
  throw new LogInUseError(`cannot take the lock ${file} for ${dbPath}`)
}
