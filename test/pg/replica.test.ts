// DUO_REPLICA: a broker's replica in a file, kept across restarts when it is a copy of the shared log, else rebuilt.
import { afterAll, beforeAll, expect, test } from 'bun:test'
import { Database } from 'bun:sqlite'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openPgStore } from '../../src/pg/store.ts'
import { freshDatabase, type TestDatabase } from './helpers.ts'

const dir = mkdtempSync(join(tmpdir(), 'duo-replica-'))
const file = join(dir, 'replica', 'broker-a.db')
let one: TestDatabase
let other: TestDatabase
beforeAll(async () => {
  one = await freshDatabase('duo_replica')
  other = await freshDatabase('duo_replica_other')
})
afterAll(async () => {
  await one.drop()
  await other.drop()
  rmSync(dir, { recursive: true, force: true })
})

/** A table of the test's own in the replica file: it survives only if the file is kept. */
const mark = () => {
  const db = new Database(file)
  db.run('CREATE TABLE IF NOT EXISTS test_marker (x INTEGER)')
  db.close()
}
const marked = () => {
  const db = new Database(file, { readonly: true })
  const found = db.query("SELECT 1 FROM sqlite_master WHERE name = 'test_marker'").get() !== null
  db.close()
  return found
}

test('a replica file is resumed where it ends, and a replica of another log is replaced', async () => {
  const first = await openPgStore({ url: one.url, replicaPath: file })
  await first.commands.execute({ kind: 'register', partnerId: 'alice' })
  await first.commands.execute({ kind: 'register', partnerId: 'bob' })
  await first.close()
  mark()

  // Meanwhile another broker (in memory) appends.
  const elsewhere = await openPgStore({ url: one.url })
  await elsewhere.commands.execute({ kind: 'talk', fromId: 'alice', to: 'bob', content: 'while a was down' })
  const head = elsewhere.log.lastSeq()
  await elsewhere.close()

  const again = await openPgStore({ url: one.url, replicaPath: file })
  try {
    expect(marked()).toBe(true)
    expect(again.log.lastSeq()).toBe(head)
    expect(again.log.readAfter(head - 1).map((e) => e.type)).toEqual(['MessageSent'])
    expect(again.views.partners.get('bob')).not.toBeNull()
  } finally {
    await again.close()
  }

  // The same file against another database: its last event is not that log's, so it is rebuilt.
  const foreign = await openPgStore({ url: other.url })
  await foreign.commands.execute({ kind: 'register', partnerId: 'zed' })
  await foreign.close()
  const rebuilt = await openPgStore({ url: other.url, replicaPath: file })
  try {
    expect(marked()).toBe(false)
    expect(rebuilt.log.lastSeq()).toBe(1)
    expect(rebuilt.views.partners.get('alice')).toBeNull()
    expect(rebuilt.views.partners.get('zed')).not.toBeNull()
  } finally {
    await rebuilt.close()
  }
})
