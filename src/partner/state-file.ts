// What a partner keeps between runs (its token and listen cursor), in `<project>/.duo/`, which ignores itself in git.
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { z } from 'zod'

/** Where `listen` resumes: every message with seq <= cursor was handed to the model, plus per-conversation marks above it. */
export const ListenPosition = z.object({
  cursor: z.number().int().nonnegative(),
  /** conversation id -> seq up to which a filtered `listen` delivered that conversation, when beyond `cursor`. */
  conversations: z.record(z.string(), z.number().int().nonnegative()),
})
export type ListenPosition = z.infer<typeof ListenPosition>

const BrokerState = z.object({
  token: z.string().optional(),
  position: ListenPosition.default({ cursor: 0, conversations: {} }),
})
export type BrokerState = z.infer<typeof BrokerState>

// Keyed by broker URL: a token and a cursor mean something only to the broker that issued them.
const StateFileContent = z.object({ brokers: z.record(z.string(), BrokerState).default({}) })

export type StateStore = {
  readonly path: string
  load(): BrokerState
  save(state: BrokerState): void
}

export const DUO_DIR = '.duo'

/** Creates `<project>/.duo/` with a `.gitignore` of `*`, so git ignores it without touching the project's own. */
export function ensureDuoDir(projectDir: string): string {
  const dir = join(projectDir, DUO_DIR)
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const ignore = join(dir, '.gitignore')
  if (!existsSync(ignore)) writeFileSync(ignore, '# Written by the Duo partner: nothing in here belongs in git.\n*\n')
  return dir
}

export function openStateStore(projectDir: string, partnerId: string, brokerUrl: string): StateStore {
  const path = join(projectDir, DUO_DIR, `${partnerId}.json`)
  const readAll = () => {
    try {
      return StateFileContent.parse(JSON.parse(readFileSync(path, 'utf8')))
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
        console.error(`duo partner: ignoring unreadable state file ${path}: ${(error as Error).message}`)
      }
      return StateFileContent.parse({})
    }
  }
  return {
    path,
    load: () => readAll().brokers[brokerUrl] ?? BrokerState.parse({}),
    save(state) {
      ensureDuoDir(projectDir)
      const all = readAll()
      all.brokers[brokerUrl] = state
      // Write then rename: a crash mid-write leaves the previous state, never half a file.
      const tmp = `${path}.${process.pid}.tmp`
      writeFileSync(tmp, `${JSON.stringify(all, null, 2)}\n`, { mode: 0o600 })
      chmodSync(tmp, 0o600)
      renameSync(tmp, path)
    },
  }
}
