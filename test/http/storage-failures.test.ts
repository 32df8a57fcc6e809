// Storage failures under a running broker: a deleted, replaced or immutable database file, a full disk.
import { afterAll, describe, expect, test } from 'bun:test'
import { Database } from 'bun:sqlite'
import { chmodSync, existsSync, mkdirSync, renameSync, rmSync, statfsSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { LogInUseError } from '../../src/broker-lock.ts'
import { auditFile } from '../../src/cli/audit-core.ts'
import { configFromEnv } from '../../src/http/config.ts'
import { startBroker } from '../../src/http/server.ts'
import { eventually, LOAD, type TestBroker, startTestBroker, tempDir } from './helpers.ts'

const ROOT = join(import.meta.dir, '..', '..')
const dirs: string[] = []
const cleanups: Array<() => void> = []
afterAll(() => {
  for (const cleanup of cleanups) cleanup()
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

/** Talks once with an idempotency key; the answer's status, reason and seq. */
async function talk(broker: TestBroker, content: string) {
  const reply = await broker.post('/talk', { fromId: 'alice', to: 'bob', content }, { 'idempotency-key': content.slice(0, 60) })
  return { status: reply.status, reason: reply.body.reason as string | undefined, seq: reply.body.seq as number | undefined }
}

/** The message contents stored in the log file at `path`, read by another connection. */
function storedContents(path: string): string[] {
  const db = new Database(path, { readonly: true })
  const rows = db.query<{ data: string }, []>("SELECT data FROM events WHERE type = 'MessageSent' ORDER BY seq").all()
  db.close()
  return rows.map((r) => JSON.parse(r.data).content as string)
}

async function brokerWithPartners(dbPath?: string): Promise<TestBroker> {
  const broker = await startTestBroker({ ...LOAD, ...(dbPath ? { dbPath } : {}) })
  dirs.push(broker.dir)
  await broker.register('alice', 'bob')
  return broker
}

describe('a database file deleted under the running broker', () => {
  test('is restored from the open connection with every acknowledged message, and the broker goes on by itself', async () => {
    const broker = await brokerWithPartners()
    const acked: string[] = []
    try {
      for (let i = 0; i < 5; i++) {
        const sent = await talk(broker, `before ${i}`)
        expect(sent.status).toBe(200)
        acked.push(`before ${i}`)
      }
      for (const file of [broker.dbPath, `${broker.dbPath}-wal`, `${broker.dbPath}-shm`]) rmSync(file, { force: true })
      // Right after the deletion a write is refused (503) until the file is back, or stored once it is.
      const during = await talk(broker, 'during')
      expect([200, 503]).toContain(during.status)
      if (during.status === 503) expect(during.reason).toBe('storage_unavailable')
      expect(await eventually(() => existsSync(broker.dbPath), 10_000), 'the file should be restored').toBe(true)
      expect(statSync(broker.dbPath).mode & 0o777).toBe(0o600)
      // The retry of the same send is stored once, whatever the first answer was.
      expect(await eventually(async () => (await talk(broker, 'during')).status === 200, 10_000)).toBe(true)
      acked.push('during')
      for (let i = 0; i < 3; i++) {
        expect((await talk(broker, `after ${i}`)).status).toBe(200)
        acked.push(`after ${i}`)
      }
      const history = await broker.get('/conversations/direct_alice_bob/messages?limit=100')
      expect(history.body.messages.map((m: { content: string }) => m.content)).toEqual(acked)
    } finally {
      await broker.stop()
    }
    // On disk, in the restored file: everything acknowledged, once, and an audit that passes.
    expect(storedContents(broker.dbPath)).toEqual(acked)
    expect((await auditFile(broker.dbPath)).ok).toBe(true)
  })

  test('the real broker process logs one line for it, never a stack trace', async () => {
    const dir = tempDir('duo-deleted-')
    dirs.push(dir)
    const db = join(dir, 'duo.db')
    const proc = Bun.spawn([process.execPath, 'src/broker.ts'], {
      cwd: ROOT,
      env: { ...process.env, BROKER_PORT: '0', BROKER_HOST: '127.0.0.1', DUO_DB: db, DUO_AUTH: 'open', DUO_MAX_HOPS: '0', DUO_RATE_LIMITS: 'off' },
      stdout: 'pipe',
      stderr: 'pipe',
    })
    try {
      let out = ''
      for await (const chunk of proc.stdout) {
        out += new TextDecoder().decode(chunk)
        if (/listening on http/.test(out)) break
      }
      const url = /listening on (http:\/\/\S+)/.exec(out)![1]!
      const post = (path: string, body: unknown) =>
        fetch(url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
      for (const partnerId of ['alice', 'bob']) expect((await post('/register', { partnerId })).status).toBe(200)
      rmSync(db)
      const statuses: number[] = []
      for (let i = 0; i < 20; i++) statuses.push((await post('/talk', { fromId: 'alice', to: 'bob', content: `m${i}` })).status)
      expect(statuses.every((s) => s === 200 || s === 503)).toBe(true)
      expect(await eventually(() => existsSync(db), 10_000)).toBe(true)
      expect(await eventually(async () => (await post('/talk', { fromId: 'alice', to: 'bob', content: 'again' })).status === 200, 10_000)).toBe(true)
    } finally {
      proc.kill('SIGTERM')
      await proc.exited
    }
    const lines = (await new Response(proc.stderr).text()).trim().split('\n').filter(Boolean)
    expect(lines.filter((l) => /^\s+at /.test(l))).toEqual([])
    expect(lines.filter((l) => l.includes('and reopened'))).toHaveLength(1)
    expect(lines.length).toBeLessThanOrEqual(2)
  })
})

describe('the whole data folder removed under the running broker (rm -rf)', () => {
  test('is recreated (0700) with the restored file, and the file is locked again against a second broker', async () => {
    const folder = join(tempDir('duo-rmrf-'), 'data')
    dirs.push(folder)
    const db = join(folder, 'duo.db')
    const broker = await brokerWithPartners(db)
    try {
      expect((await talk(broker, 'kept')).status).toBe(200)
      rmSync(folder, { recursive: true, force: true })
      expect(await eventually(() => existsSync(db) && existsSync(`${db}.lock`), 10_000)).toBe(true)
      expect(statSync(folder).mode & 0o777).toBe(0o700)
      expect(await eventually(async () => (await talk(broker, 'after')).status === 200, 10_000)).toBe(true)
      const config = { ...configFromEnv({}), host: '127.0.0.1', port: 0, dbPath: db, auth: 'open' as const }
      await expect(startBroker(config)).rejects.toBeInstanceOf(LogInUseError)
    } finally {
      await broker.stop()
    }
    expect(storedContents(db)).toEqual(['kept', 'after'])
  })
})

describe('a database file replaced under the running broker', () => {
  test('refuses writes with 503 until the original is back, then goes on; nothing acknowledged is lost', async () => {
    const broker = await brokerWithPartners()
    const moved = `${broker.dbPath}.moved`
    try {
      expect((await talk(broker, 'first')).status).toBe(200)
      renameSync(broker.dbPath, moved)
      writeFileSync(broker.dbPath, 'someone else\'s file')
      const refused = await talk(broker, 'second')
      expect(refused).toMatchObject({ status: 503, reason: 'storage_unavailable' })
      // Reads still answer from the open file.
      expect((await broker.get('/health')).status).toBe(200)
      rmSync(broker.dbPath)
      renameSync(moved, broker.dbPath)
      expect(await eventually(async () => (await talk(broker, 'second')).status === 200, 10_000)).toBe(true)
    } finally {
      await broker.stop()
    }
    expect(storedContents(broker.dbPath)).toEqual(['first', 'second'])
  })
})

describe('an immutable database file (chattr +i)', () => {
  const canChattr = (() => {
    const probe = join(tempDir('duo-chattr-'), 'probe')
    writeFileSync(probe, '')
    const set = Bun.spawnSync(['chattr', '+i', probe])
    Bun.spawnSync(['chattr', '-i', probe])
    return set.exitCode === 0
  })()

  test.skipIf(!canChattr)('answers 503 while the files are immutable, never crashes, and recovers when they are not', async () => {
    const broker = await brokerWithPartners()
    const files = [broker.dbPath, `${broker.dbPath}-wal`, `${broker.dbPath}-shm`].filter(existsSync)
    try {
      expect((await talk(broker, 'one')).status).toBe(200)
      expect(Bun.spawnSync(['chattr', '+i', ...files]).exitCode).toBe(0)
      const during = await talk(broker, 'two')
      // WAL mode may still take a write while only the main file is immutable; a refusal is the documented 503.
      expect([200, 503]).toContain(during.status)
      if (during.status === 503) expect(during.reason).toBe('storage_unavailable')
    } finally {
      Bun.spawnSync(['chattr', '-i', ...files])
    }
    try {
      expect(await eventually(async () => (await talk(broker, 'two')).status === 200, 10_000)).toBe(true)
      expect((await talk(broker, 'three')).status).toBe(200)
    } finally {
      await broker.stop()
    }
    expect(storedContents(broker.dbPath)).toEqual(['one', 'two', 'three'])
  })
})

describe('a small filesystem that fills up (tmpfs)', () => {
  const mountPoint = tempDir('duo-tmpfs-')
  const mounted = Bun.spawnSync(['mount', '-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', mountPoint]).exitCode === 0
  // At the file's end, even when a filter skips this block (its own afterAll would not run then).
  cleanups.push(() => {
    if (mounted) Bun.spawnSync(['umount', '-l', mountPoint])
    rmSync(mountPoint, { recursive: true, force: true })
  })
  if (!mounted) console.error(`skipped: cannot mount a tmpfs at ${mountPoint} (needs root); the full-disk test did not run`)

  test.skipIf(!mounted)('answers 503 storage_unavailable while full, keeps every acknowledged message, recovers by itself once there is room', async () => {
    const data = join(mountPoint, 'data')
    mkdirSync(data)
    const broker = await brokerWithPartners(join(data, 'duo.db'))
    const filler = join(mountPoint, 'filler')
    const acked: string[] = []
    try {
      // Leave the log little room (a few messages' worth, whatever the new file's schema took): the rest is taken
      // by a file that can be removed later.
      const { bavail, bsize } = statfsSync(mountPoint)
      writeFileSync(filler, Buffer.alloc(bavail * bsize - 192 * 1024))
      const statuses: number[] = []
      for (let i = 0; i < 40 && !statuses.includes(503); i++) {
        const content = `${String(i).padStart(3, '0')}${'x'.repeat(40 * 1024)}`
        const sent = await talk(broker, content)
        statuses.push(sent.status)
        if (sent.status === 200) acked.push(content)
        else expect(sent, `talk #${i} on a full disk`).toMatchObject({ status: 503, reason: 'storage_unavailable' })
      }
      expect(statuses).toContain(503)
      expect(statuses.every((s) => s === 200 || s === 503)).toBe(true)
      // Reads still work while the disk is full.
      expect((await broker.get('/conversations/direct_alice_bob/messages?limit=1')).status).toBe(200)
      rmSync(filler)
      expect(await eventually(async () => (await talk(broker, 'room again')).status === 200, 10_000)).toBe(true)
      acked.push('room again')
      // (A read-only remount is refused while the broker holds its files open for writing; the immutable-file
      // test above covers a file that cannot be written.)
    } finally {
      await broker.stop()
    }
    expect(storedContents(join(data, 'duo.db'))).toEqual(acked)
    expect((await auditFile(join(data, 'duo.db'))).ok).toBe(true)
    chmodSync(data, 0o700)
  })
})
