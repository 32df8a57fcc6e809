// The log file itself: one broker per file, owner-only modes, the default place, the broker id, a damaged file.
import { afterAll, describe, expect, test } from 'bun:test'
import { chmodSync, existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { dbPathFrom } from '../../src/cli/args.ts'
import { configFromEnv } from '../../src/http/config.ts'
import { startBroker } from '../../src/http/server.ts'
import { DEFAULT_DB_PATH } from '../../src/store.ts'
import { eventually, tempDir } from './helpers.ts'

const ROOT = join(import.meta.dir, '..', '..')
const dirs: string[] = []
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})
const scratch = () => {
  const dir = tempDir('duo-file-')
  dirs.push(dir)
  return dir
}
const config = (dbPath: string) => ({ ...configFromEnv({}), host: '127.0.0.1', port: 0, dbPath, auth: 'open' as const, sync: 'normal' as const })
const mode = (path: string) => statSync(path).mode & 0o777

type Proc = Bun.Subprocess<'ignore', 'pipe', 'pipe'>

/** `bun src/broker.ts` on `db`; resolves with its URL once it listens, or with its exit and output if it stops. */
async function brokerProcess(db: string, cwd = ROOT): Promise<{ proc: Proc; url?: string; out: () => string; err: () => string }> {
  const proc = Bun.spawn([process.execPath, join(ROOT, 'src/broker.ts')], {
    cwd,
    env: { ...process.env, BROKER_PORT: '0', BROKER_HOST: '127.0.0.1', DUO_DB: db, DUO_AUTH: 'open' },
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
  })
  let out = ''
  let err = ''
  void (async () => {
    for await (const chunk of proc.stdout) out += new TextDecoder().decode(chunk)
  })()
  void (async () => {
    for await (const chunk of proc.stderr) err += new TextDecoder().decode(chunk)
  })()
  await eventually(() => /listening on http/.test(out) || proc.exitCode !== null, 15_000)
  await eventually(() => proc.exitCode === null || err.length > 0 || out.length > 0, 2000)
  return { proc, url: /listening on (http:\/\/\S+)/.exec(out)?.[1], out: () => out, err: () => err }
}

const tool = (script: string, ...args: string[]) =>
  Bun.spawnSync([process.execPath, script, ...args], { cwd: ROOT, stdout: 'pipe', stderr: 'pipe' })

describe('one broker per log file', () => {
  test('a second broker process refuses with one line; replay, audit and backup still read the file; the lock dies with the first', async () => {
    const dir = scratch()
    const db = join(dir, 'duo.db')
    const first = await brokerProcess(db)
    try {
      expect(first.url).toBeDefined()
      const registered = await fetch(`${first.url}/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ partnerId: 'alice' }),
      })
      expect(registered.status).toBe(200)

      const second = await brokerProcess(db)
      expect(await second.proc.exited).toBe(2)
      expect(second.url).toBeUndefined()
      const lines = second.err().trim().split('\n')
      expect(lines).toEqual([`duo broker: another broker (pid ${first.proc.pid}) is serving ${db}; stop it first (several brokers can share one log on PostgreSQL: DUO_DB=postgres://…)`])

      // The first one never noticed.
      expect((await fetch(`${first.url}/health`)).status).toBe(200)
      const replay = tool('src/cli/replay.ts', '--db', db)
      expect(replay.exitCode).toBe(0)
      expect(replay.stdout.toString()).toContain('"PartnerRegistered"')
      expect(tool('src/cli/audit.ts', '--db', db).exitCode).toBe(0)
      const copy = join(dir, 'copy.db')
      expect(tool('src/cli/backup.ts', '--db', db, '--out', copy).exitCode).toBe(0)
      expect(mode(copy)).toBe(0o600)
    } finally {
      first.proc.kill('SIGKILL')
      await first.proc.exited
    }
    // Killed without a chance to clean up: the OS released the lock with the process.
    const again = await brokerProcess(db)
    try {
      expect(again.url).toBeDefined()
      expect(((await (await fetch(`${again.url}/health`)).json()) as any).partners).toBe(1)
    } finally {
      again.proc.kill('SIGTERM')
      await again.proc.exited
    }
  })
})

describe('file modes', () => {
  test('the folder the broker creates is 0700; the database, WAL, SHM, lock and token files are 0600', async () => {
    const dir = join(scratch(), 'nested', 'data')
    const db = join(dir, 'duo.db')
    const broker = await startBroker({ ...config(db), auth: 'token' })
    try {
      const reply = await fetch(`${broker.url}/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ partnerId: 'alice' }),
      })
      expect(reply.status).toBe(200)
      expect(mode(dir)).toBe(0o700)
      for (const file of [db, `${db}-wal`, `${db}-shm`, `${db}.lock`, `${db}.admin-token`]) {
        expect(existsSync(file), file).toBe(true)
        expect(mode(file), file).toBe(0o600)
      }
    } finally {
      await broker.stop()
    }
  })

  test('files left with looser modes by an older version are tightened at start', async () => {
    const dir = scratch()
    const db = join(dir, 'duo.db')
    await (await startBroker(config(db))).stop()
    for (const file of [db, `${db}.lock`]) chmodSync(file, 0o644)
    const broker = await startBroker(config(db))
    try {
      for (const file of [db, `${db}-wal`, `${db}-shm`, `${db}.lock`]) expect(mode(file), file).toBe(0o600)
    } finally {
      await broker.stop()
    }
  })
})

describe('where the log is, and which log it is', () => {
  test('the default database is data/duo.db in the Duo repository, for the broker and the tools alike', () => {
    const previous = process.env.DUO_DB
    delete process.env.DUO_DB
    try {
      expect(DEFAULT_DB_PATH).toBe(join(ROOT, 'data', 'duo.db'))
      expect(configFromEnv({}).dbPath).toBe(DEFAULT_DB_PATH)
      expect(dbPathFrom(undefined)).toBe(DEFAULT_DB_PATH)
    } finally {
      if (previous !== undefined) process.env.DUO_DB = previous
    }
  })

  test('a relative DUO_DB still follows the working directory, as given', async () => {
    const cwd = scratch()
    const run = await brokerProcess('rel/duo.db', cwd)
    try {
      expect(run.url).toBeDefined()
      expect(existsSync(join(cwd, 'rel', 'duo.db'))).toBe(true)
    } finally {
      run.proc.kill('SIGTERM')
      await run.proc.exited
    }
  })

  test('each log has a broker id, fixed at creation: kept across restarts and in a backup, new for a new file', async () => {
    const dir = scratch()
    const db = join(dir, 'duo.db')
    const first = await startBroker(config(db))
    const id = first.brokerId
    const health = (await (await fetch(`${first.url}/health`)).json()) as any
    expect(health.broker_id).toBe(id)
    await first.stop()
    const restarted = await startBroker(config(db))
    expect(restarted.brokerId).toBe(id)
    await restarted.stop()

    const copy = join(dir, 'copy.db')
    expect(tool('src/cli/backup.ts', '--db', db, '--out', copy).exitCode).toBe(0)
    const fromCopy = await startBroker(config(copy))
    expect(fromCopy.brokerId).toBe(id)
    await fromCopy.stop()

    const other = await startBroker(config(join(dir, 'other.db')))
    expect(other.brokerId).not.toBe(id)
    expect(other.brokerId).toMatch(/^[0-9a-f]{32}$/)
    await other.stop()
  })
})

describe('audit on a damaged file', () => {
  test('a file that is not a database, or a log with overwritten pages, fails the audit with exit 1 and one line', async () => {
    const dir = scratch()
    const junk = join(dir, 'junk.db')
    writeFileSync(junk, Buffer.alloc(8192, 0x5a))
    const run = tool('src/cli/audit.ts', '--db', junk)
    expect(run.exitCode).toBe(1)
    expect(run.stderr.toString().trim().split('\n')).toEqual([`audit: ${junk} is damaged: file is not a database`])

    const db = join(dir, 'log.db')
    expect(tool('src/cli/generate.ts', '--db', db, '--events', '3000').exitCode).toBe(0)
    const bytes = readFileSync(db)
    for (let page = Math.floor(bytes.length / 4096 / 3); page < bytes.length / 4096 - 2; page += 3) bytes.fill(0xa5, page * 4096 + 100, page * 4096 + 300)
    writeFileSync(db, bytes)
    const damaged = tool('src/cli/audit.ts', '--db', db)
    expect(damaged.exitCode).toBe(1)
    expect(damaged.stderr.toString().trim().split('\n')).toHaveLength(1)
    expect(damaged.stderr.toString()).toContain('is damaged')
    // A missing file is still the caller's mistake.
    const missing = join(dir, 'none.db')
    expect(tool('src/cli/audit.ts', '--db', missing).exitCode).toBe(2)
  })
})
