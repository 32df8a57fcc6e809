import { afterAll, describe, expect, test } from 'bun:test'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { auditFile } from '../../src/cli/audit-core.ts'
import { openStore } from '../../src/store.ts'

const dir = mkdtempSync(join(tmpdir(), 'duo-backup-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const backup = (...args: string[]) =>
  Bun.spawnSync(['bun', 'src/cli/backup.ts', ...args], { cwd: join(import.meta.dir, '../..'), stderr: 'pipe', stdout: 'pipe' })

describe('backup of a log in use', () => {
  test('copies every event and view while the writer keeps the file open, and the copy audits clean', async () => {
    const path = join(dir, 'live.db')
    const store = openStore({ path })
    await store.commands.execute({ kind: 'register', partnerId: 'alice' })
    await store.commands.execute({ kind: 'register', partnerId: 'bob' })
    await Promise.all(
      Array.from({ length: 50 }, (_, i) => store.commands.execute({ kind: 'talk', fromId: 'alice', to: 'bob', content: `m${i}` })),
    )
    const out = join(dir, 'copy.db')
    const run = backup('--db', path, '--out', out)
    expect(run.exitCode).toBe(0)
    expect(run.stdout.toString()).toContain(`${store.log.lastSeq()} events copied`)
    const report = await auditFile(out)
    expect(report.ok).toBe(true)
    expect(report.lastSeq).toBe(store.log.lastSeq())
    await store.close()
  })

  test('refuses to overwrite an existing file, and a missing source, with one line and exit 2', () => {
    const taken = backup('--db', join(dir, 'live.db'), '--out', join(dir, 'copy.db'))
    expect(taken.exitCode).toBe(2)
    expect(taken.stderr.toString().trim().split('\n')).toHaveLength(1)
    const missing = backup('--db', join(dir, 'nope.db'), '--out', join(dir, 'other.db'))
    expect(missing.exitCode).toBe(2)
    expect(existsSync(join(dir, 'nope.db'))).toBe(false)
    expect(existsSync(join(dir, 'other.db'))).toBe(false)
  })
})
