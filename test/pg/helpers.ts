// PostgreSQL test helpers: a database of the test's own on the machine's server, created and dropped by it.
import { SQL } from 'bun'

const SERVER = process.env.DUO_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432'

export type TestDatabase = { url: string; name: string; sql: SQL; drop(): Promise<void> }

/** A new empty database; `drop()` closes `sql` and removes the database even while brokers still hold connections. */
export async function freshDatabase(label = 'duo'): Promise<TestDatabase> {
  const name = `${label}_${process.pid}_${Math.random().toString(36).slice(2, 8)}`
  const admin = new SQL(`${SERVER}/postgres`)
  await admin.unsafe(`CREATE DATABASE ${name}`)
  await admin.close()
  const url = `${SERVER}/${name}`
  const sql = new SQL({ url, max: 2 })
  return {
    url,
    name,
    sql,
    async drop() {
      await sql.close()
      const again = new SQL(`${SERVER}/postgres`)
      await again.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      await again.close()
    },
  }
}
