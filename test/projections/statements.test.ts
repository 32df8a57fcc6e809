// Every statement the store prepares writes a value it looks up by, or a LIMIT, as `+?`, not as a bare `?`.
// The SQLite inside Bun 1.4 (3.54) reads a bare parameter's value while it plans a statement that has a
// choice of plans (`col = ?` that some plan would filter on, `LIMIT ?`), and then prepares that statement
// again on every new binding: 7-150 µs a run instead of 1-3 (seen in `bun run bench`, the delivery-state
// query alone at 55 µs a talk). A unary plus is the same value without the look, and indexes still serve it.
import { Database } from 'bun:sqlite'
import { afterAll, expect, test } from 'bun:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openStore } from '../../src/store.ts'

const dir = mkdtempSync(join(tmpdir(), 'duo-statements-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** The SQL of every statement prepared while `fn` runs. */
function preparedDuring(fn: () => void): string[] {
  const seen = new Set<string>()
  const { query, prepare } = Database.prototype
  Database.prototype.query = function (this: Database, sql: string) {
    seen.add(sql)
    return query.call(this, sql)
  } as typeof query
  Database.prototype.prepare = function (this: Database, sql: string, ...rest: unknown[]) {
    seen.add(sql)
    return (prepare as (...args: unknown[]) => unknown).call(this, sql, ...rest)
  } as typeof prepare
  try {
    fn()
  } finally {
    Database.prototype.query = query
    Database.prototype.prepare = prepare
  }
  return [...seen]
}

/** Bare parameters a planner may read: after `=`, `IS`, `LIMIT` or `OFFSET`, outside a SET or VALUES list. */
function bareLookups(sql: string): string[] {
  const found: string[] = []
  for (const match of sql.matchAll(/((?<![<>!])=|\bIS|\bLIMIT|\bOFFSET)\s*\?\d*/gi)) {
    const before = sql.slice(0, match.index)
    const clause = [...before.matchAll(/\b(SET|WHERE|ON|VALUES|LIMIT|WHEN)\b/gi)].at(-1)?.[1]?.toUpperCase()
    if (clause === 'SET' || clause === 'VALUES') continue
    found.push(sql.slice(Math.max(0, match.index - 40), match.index + match[0].length).replace(/\s+/g, ' '))
  }
  return found
}

test('the rule catches what it is about, and passes assignments and +?', () => {
  expect(bareLookups('SELECT * FROM t WHERE id = ?')).toHaveLength(1)
  expect(bareLookups('SELECT * FROM t WHERE a = ?1 AND b = ?2 ORDER BY a LIMIT ?3')).toHaveLength(3)
  expect(bareLookups('SELECT * FROM t WHERE id = +? LIMIT +?2')).toEqual([])
  expect(bareLookups('UPDATE t SET a = ?, b = ?2 WHERE id = +?3')).toEqual([])
  expect(bareLookups('SELECT * FROM t WHERE a >= ?1 AND b <= ?2 AND c != ?3')).toEqual([])
  expect(bareLookups('INSERT INTO t (a) VALUES (?1) ON CONFLICT (a) DO UPDATE SET a = ?1')).toEqual([])
})

test('no statement of the store plans on a bound value', () => {
  const statements = preparedDuring(() => {
    const store = openStore({ path: join(dir, 'duo.db') })
    // The log builds its filtered page queries on first use: ask for each shape once.
    store.log.page(0, 10)
    store.log.seqPage(0, 10, { type: 'MessageSent' }, 1024)
    store.log.page(0, 10, { type: 'MessageSent', conversation: 'c', partner: 'p' })
    store.db.close()
  })
  expect(statements.length).toBeGreaterThan(40)
  const offenders = statements.flatMap(bareLookups)
  expect(offenders).toEqual([])
})
