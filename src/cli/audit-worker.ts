// The audit's second thread: runs the log's own checks over events 1..lastSeq while the main thread rebuilds.
import { type LogCheck, type Finding, createLogVerifier, type StoredRow } from '../events/verify.ts'
import { openReadOnly } from '../store.ts'

export type LogChecksJob = { path: string; lastSeq: number; pageRows: number }
export type LogChecksResult = { checked: number; findings: Partial<Record<LogCheck, Finding>> }

declare const self: Worker

/**
 * Checks events 1..lastSeq through a connection of its own. Stored events never change, so any snapshot
 * that holds lastSeq holds the very rows the main thread rebuilds from.
 */
export function checkLog({ path, lastSeq, pageRows }: LogChecksJob): LogChecksResult {
  const db = openReadOnly(path)
  try {
    const page = db.query<StoredRow, [number, number, number]>(
      'SELECT seq, type, at, data, hash, conversation_id, partner_id FROM events WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT +?',
    )
    const verifier = createLogVerifier()
    for (let cursor = 0; cursor < lastSeq; ) {
      const rows = page.all(cursor, lastSeq, pageRows)
      if (rows.length === 0) break
      for (const row of rows) verifier.check(row)
      cursor = rows[rows.length - 1]!.seq
    }
    return { checked: verifier.checked(), findings: verifier.findings() }
  } finally {
    db.close()
  }
}

if (!Bun.isMainThread) {
  self.onmessage = (message: MessageEvent<LogChecksJob>) => {
    try {
      self.postMessage({ ok: true, result: checkLog(message.data) })
    } catch (error) {
      self.postMessage({ ok: false, error: (error as Error).message })
    }
  }
}
