// One broker per SQLite file: a second one refuses to start with one line; a killed broker's lock is taken over.
import { afterAll, expect, test } from 'bun:test'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { LogInUseError } from '../../src/broker-lock.ts'
import { configFromEnv } from '../../src/http/config.ts'
import { startBroker } from '../../src/http/server.ts'
import { tempDir } from './helpers.ts'

const ROOT = join(import.meta.dir, '..', '..')
const dir = tempDir('duo-lock-')
const db = join(dir, 'duo.db')
const children: Bun.Subprocess[] = []
afterAll(() => {
  for (const child of children) child.kill('SIGKILL')
  rmSync(dir, { recursive: true, force: true })
})

function spawn() {
  const proc = Bun.spawn([process.execPath, 'src/broker.ts'], {
    cwd: ROOT,
    env: { ...process.env, BROKER_PORT: '0', BROKER_HOST: '127.0.0.1', DUO_DB: db, DUO_AUTH: 'open' },
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
  })
  children.push(proc)
  return proc
}

/** Waits for the start-up line, then for an answer: by then the broker's signal handlers are installed. */
async function started(proc: Bun.Subprocess): Promise<void> {
  let out = ''
  const decoder = new TextDecoder()
  for await (const chunk of proc.stdout as ReadableStream<Uint8Array>) {
    out += decoder.decode(chunk, { stream: true })
    const url = /listening on (http:\/\/\S+)/.exec(out)?.[1]
    if (url && (await fetch(`${url}/health`)).ok) return
  }
  throw new Error(`the broker did not start: ${out}${await new Response(proc.stderr as ReadableStream).text()}`)
}

test('a second broker on the same SQLite file refuses to start with one line; after a SIGKILL the file is served again', async () => {
  const first = spawn()
  await started(first)

  const second = spawn()
  expect(await second.exited).toBe(2)
  const stderr = await new Response(second.stderr as ReadableStream).text()
  expect(stderr.trim().split('\n')).toEqual([
    `duo broker: another broker (pid ${first.pid}) is serving ${db}; stop it first (several brokers can share one log on PostgreSQL: DUO_DB=postgres://…)`,
  ])

  // In the same process too: the lock is per file, not per process.
  const config = { ...configFromEnv({}), host: '127.0.0.1', port: 0, dbPath: db, auth: 'open' as const }
  await expect(startBroker(config)).rejects.toBeInstanceOf(LogInUseError)

  first.kill('SIGKILL')
  await first.exited
  const third = spawn()
  await started(third)
  third.kill('SIGTERM')
  expect(await third.exited).toBe(0)
  // A clean stop leaves no lock behind: the next start needs no take-over.
  const broker = await startBroker(config)
  await broker.stop()
})
