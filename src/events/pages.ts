// Pages cut by bytes as well as by count: the one rule the log and every view use, so a cursor resumes exactly.

/** Estimated bytes of one item's JSON beyond its content (ids, times, field names, escaping slack). */
export const ITEM_OVERHEAD = 256

/** A page of items picked by their seqs: what to send, and whether the byte cap cut it short of `limit`. */
export type SeqPage = { seqs: number[]; truncated: boolean }

/**
 * The longest prefix of `rows` (in answer order, each with its content's byte length) whose estimated
 * size fits in `maxBytes`, and always at least one row, so a page can never be empty for want of room.
 * A reader resumes right after the prefix's last seq (or before its first, paging backwards): nothing
 * is skipped.
 */
export function fitByBytes(rows: Array<{ seq: number; bytes: number }>, maxBytes: number): SeqPage {
  let total = 0
  for (let i = 0; i < rows.length; i++) {
    total += rows[i]!.bytes + ITEM_OVERHEAD
    if (total > maxBytes && i > 0) return { seqs: rows.slice(0, i).map((r) => r.seq), truncated: true }
  }
  return { seqs: rows.map((r) => r.seq), truncated: false }
}
