// `bun run replay`: the log as JSON Lines from a file, read-only, following a writer in another process.
import { Database } from 'bun:sqlite'
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type EventRow, parseRow } from '../../src/events/log.ts'
import type { Envelope } from '../../src/events/schema.ts'
import { openReadOnly, openStore } from '../../src/store.ts'
import { follow, generateLog, ROOT, runTool } from './run.ts'

const dir = mkdtempSync(join(tmpdir(), 'duo-replay-'))
const path = join(dir, 'log.db')
const EVENTS = 3000
let stored: Envelope[] = []

beforeAll(() => {
  generateLog(path, EVENTS)
  const db = openReadOnly(path)
  stored = db.query<EventRow, []>('SELECT seq, type, at, data, hash FROM events ORDER BY seq').all().map(parseRow)
  db.close()
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const replay = (...args: string[]) => runTool('src/cli/replay.ts', args)
const parseLines = (stdout: string) => stdout.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l))

describe('replay', () => {
  test('prints every event as one JSON line, oldest first, with the envelope keys in order', () => {
    const run = replay('--db', path)
    expect(run.exitCode).toBe(0)
    expect(run.stdout.endsWith('\n')).toBe(true)
    const lines = parseLines(run.stdout)
    expect(lines.length).toBe(EVENTS)
    expect(lines).toEqual(stored)
    for (const line of lines.slice(0, 50)) expect(Object.keys(line)).toEqual(['seq', 'type', 'at', 'data', 'hash'])
  })

  test('--after N prints exactly the events after N', () => {
    for (const args of [['--after', '2990'], ['--after=2990']]) {
      const run = replay('--db', path, ...args)
      expect(run.exitCode).toBe(0)
      expect(parseLines(run.stdout)).toEqual(stored.slice(2990))
    }
    expect(parseLines(replay('--db', path, '--after', '0').stdout).length).toBe(EVENTS)
    const atEnd = replay('--db', path, '--after', String(EVENTS))
    expect(atEnd.exitCode).toBe(0)
    expect(atEnd.stdout).toBe('')
  })

  test('reads the database named by DUO_DB when no --db is given', () => {
    const run = runTool('src/cli/replay.ts', ['--after', String(EVENTS - 1)], { DUO_DB: path })
    expect(parseLines(run.stdout)).toEqual(stored.slice(EVENTS - 1))
  })

  test('refuses bad arguments and a missing file with one line and exit 2, creating nothing', () => {
    const missing = join(dir, 'missing.db')
    const cases: Array<[string[], RegExp]> = [
      [['--db', path, '--after', 'abc'], /--after must be an integer/],
      [['--db', path, '--after', '-1'], /--after/],
      [['--db', path, '--bogus'], /unknown argument "--bogus"/],
      [['--db', path, '--after'], /--after needs a value/],
      [['--db', missing], /no database at .*missing\.db/],
    ]
    for (const [args, message] of cases) {
      const run = replay(...args)
      expect(run.exitCode).toBe(2)
      expect(run.stdout).toBe('')
      const errorLines = run.stderr.trim().split('\n')
      expect(errorLines).toHaveLength(1)
      expect(errorLines[0]).toMatch(message)
    }
    expect(existsSync(missing)).toBe(false)
  })

  test('refuses a file that holds no event log', () => {
    const junk = join(dir, 'junk.txt')
    writeFileSync(junk, 'not a database at all, just some text that is long enough to be read as a header')
    const run = replay('--db', junk)
    expect(run.exitCode).toBe(2)
    expect(run.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^replay: cannot read .*junk\.txt: /)])
  })

  test('refuses a SQLite file without an event log', () => {
    const other = join(dir, 'other.db')
    const db = new Database(other)
    db.run('CREATE TABLE notes (text TEXT)')
    db.close()
    const run = replay('--db', other)
    expect(run.exitCode).toBe(2)
    expect(run.stderr.trim().split('\n')).toEqual([`replay: ${other} holds no Duo event log (no events table)`])
  })

  test('exits quietly when its reader goes away (piped into head)', () => {
    const script = `"${process.execPath}" src/cli/replay.ts --db "${path}" | head -n 2 > /dev/null; echo "status \${PIPESTATUS[0]}" >&2`
    const proc = Bun.spawnSync(['bash', '-c', script], { cwd: ROOT, stdout: 'pipe', stderr: 'pipe' })
    expect(proc.stderr.toString().trim()).toBe('status 0')
  })
})

describe('replay --follow', () => {
  test('prints events that another process appends, and stops cleanly on SIGTERM', async () => {
    const followPath = join(dir, 'follow.db')
    generateLog(followPath, 100)
    const tail = follow('src/cli/replay.ts', ['--follow', '--db', followPath, '--after', '95'])
    try {
      await tail.waitFor((line) => line.startsWith('{"seq":100,'))
      // This test process is the writer; replay is another process reading the same file.
      const store = openStore({ path: followPath })
      await store.commands.execute({ kind: 'register', partnerId: 'late-comer' })
      await store.commands.execute({ kind: 'setStatus', partnerId: 'late-comer', message: 'just arrived' })
      await tail.waitFor((line) => line.startsWith('{"seq":102,'), 5000)
      await store.close()
      tail.proc.kill('SIGTERM')
      expect(await tail.ended()).toBe(0)
      expect(tail.partial()).toBe('')
      const lines = tail.lines.filter((l) => l !== '').map((l) => JSON.parse(l))
      expect(lines.map((e) => e.seq)).toEqual([96, 97, 98, 99, 100, 101, 102])
      expect(lines[5]).toMatchObject({ type: 'PartnerRegistered', data: { partnerId: 'late-comer' } })
      expect(lines[6]).toMatchObject({ type: 'PartnerStatusChanged', data: { message: 'just arrived' } })
    } finally {
      tail.proc.kill('SIGKILL')
    }
  })
})
