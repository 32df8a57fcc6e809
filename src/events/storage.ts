// Storage failures of the SQLite log, in one place: which errors are the disk's fault, and whether the file is still ours.
import { accessSync, constants, statSync } from 'node:fs'

/**
 * The log cannot be read or written right now (the disk is full, the file read-only, an I/O error, the file
 * deleted or replaced under the broker): nothing of the request was stored, and it may be retried. The
 * broker answers it with 503 `storage_unavailable` and logs one line, never a stack trace per request.
 */
export class StorageError extends Error {}

// SQLite's primary codes for "the storage failed" (extended codes such as SQLITE_IOERR_WRITE share the prefix).
const STORAGE_CODES = /^SQLITE_(FULL|IOERR|READONLY|CANTOPEN|CORRUPT|NOTADB|PERM|BUSY|LOCKED|PROTOCOL)/

/** `error` as a StorageError when the storage caused it, else null (a bug, which stays a 500). */
export function asStorageError(error: unknown): StorageError | null {
  if (error instanceof StorageError) return error
  const code = (error as { code?: unknown })?.code
  if (typeof code !== 'string' || !STORAGE_CODES.test(code)) return null
  return new StorageError(`the database cannot be written (${code}: ${(error as Error).message})`)
}

/** Which file is at `path` (device and inode), or null when there is none. */
export function fileIdentity(path: string): string | null {
  try {
    const { dev, ino } = statSync(path)
    return `${dev}:${ino}`
  } catch {
    return null
  }
}

/**
 * Why the log file at `path` cannot be written now (an immutable file, a read-only filesystem), or null.
 * Checked before SQLite touches the files: SQLite maps the `-shm` file into memory, and writing to that
 * memory when the file has become immutable or read-only kills the process with SIGBUS, which no error
 * handling catches. `access(W_OK)` sees both (even for root), and costs about a microsecond per file.
 */
export function unwritable(path: string): string | null {
  for (const file of [path, `${path}-wal`, `${path}-shm`]) {
    try {
      accessSync(file, constants.W_OK)
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      if (code === 'ENOENT') continue
      return `${file} cannot be written (${code}: ${code === 'EROFS' ? 'read-only filesystem' : code === 'EPERM' ? 'immutable or not permitted' : 'permission denied'})`
    }
  }
  return null
}
