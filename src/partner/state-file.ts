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

/**
 * A token and a cursor mean something only to the log that issued them, so they are kept per broker id (the
 * log's identity, from `/health`): reaching a broker with another log at the same URL (started elsewhere, or
 * reset) never overwrites what is held for the first one. Files from before broker ids kept one state per
 * URL in `brokers`: such an entry is read for the first log found at its URL and moved under that log's id
 * once the broker accepts its token (a token it does not know stays where it was).
 */
const StateFileContent = z.object({
  logs: z.record(z.string(), BrokerState).default({}),
  /** The broker id last reached at each URL: a different one there is news for the model. */
  urls: z.record(z.string(), z.string()).default({}),
  /** By URL: files written before broker ids, and brokers that do not tell theirs. */
  brokers: z.record(z.string(), BrokerState).default({}),
})

/** What `load` found: the state, and whether it is a by-URL entry whose log is not known yet. */
export type LoadedState = { state: BrokerState; legacy: boolean }

export type StateStore = {
  readonly path: string
  /** The broker id this project last reached at its broker URL, if any. */
  lastBrokerId(): string | undefined
  /** The state kept for `brokerId` (null: a broker that does not say), else the by-URL entry, else a fresh one. */
  load(brokerId: string | null): LoadedState
  /** Keeps `state` for `brokerId`; `dropLegacy` removes the by-URL entry it was moved from. */
  save(brokerId: string | null, state: BrokerState, options?: { dropLegacy?: boolean }): void
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

export function openStateStore(
  projectDir: string,
  partnerId: string,
  brokerUrl: string,
  options: { /** Say nothing about an unreadable file (hooks print nothing). */ quiet?: boolean } = {},
): StateStore {
  const path = join(projectDir, DUO_DIR, `${partnerId}.json`)
  const readAll = () => {
    try {
      return StateFileContent.parse(JSON.parse(readFileSync(path, 'utf8')))
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' && !options.quiet) {
        console.error(`duo partner: ignoring unreadable state file ${path}: ${(error as Error).message}`)
      }
      return StateFileContent.parse({})
    }
  }
  const fresh = (): BrokerState => BrokerState.parse({})
  return {
    path,
    lastBrokerId: () => readAll().urls[brokerUrl],
    load(brokerId) {
      const all = readAll()
      const kept = brokerId === null ? all.brokers[brokerUrl] : all.logs[brokerId]
      if (kept) return { state: kept, legacy: false }
      const legacy = brokerId === null ? undefined : all.brokers[brokerUrl]
      return legacy ? { state: legacy, legacy: true } : { state: fresh(), legacy: false }
    },
    save(brokerId, state, options = {}) {
      ensureDuoDir(projectDir)
      const all = readAll()
      if (brokerId === null) all.brokers[brokerUrl] = state
      else {
        all.logs[brokerId] = state
        all.urls[brokerUrl] = brokerId
        if (options.dropLegacy) delete all.brokers[brokerUrl]
      }
      // Write then rename: a crash mid-write leaves the previous state, never half a file.
      const tmp = `${path}.${process.pid}.tmp`
      writeFileSync(tmp, `${JSON.stringify(all, null, 2)}\n`, { mode: 0o600 })
      chmodSync(tmp, 0o600)
      renameSync(tmp, path)
    },
  }
}
